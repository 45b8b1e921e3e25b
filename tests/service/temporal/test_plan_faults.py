"""Faults, on a Temporal dev server of their own (the session's is not disturbed):

- the worker process is killed with SIGKILL while 120 workflows are mid-flight, each inside its
  call to the directory (a server of the test's that holds every call until the kill); a new
  worker takes over, retries each call once, every workflow completes and no timeline misses or
  repeats a step;
- the Temporal server is killed with SIGKILL and restarted on the same state file (a SQLite
  write-ahead log); running workflows go on, and while it is down the API answers 503 with a
  JSON error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from live_server import serving
from temporalio.client import Client
from waiting import eventually

from protocol_lab.domain.history import build_timeline
from service.app import create_app
from service.errors import ServiceError
from service.executions import get_status, signal_workflow, start_workflow
from service.settings import Settings
from service.stack import ChildProcess, EmbeddedRedis, EmbeddedTemporal
from service.state import Resources, open_resources
from service.temporal.worker import build_workers

# bounded: each fault test gives up after 7 minutes even on a crowded machine
pytestmark = [pytest.mark.temporal, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(420)]

TOKEN = "fault-token"


@pytest.fixture(scope="module")
def fault_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def fault_server(fault_dir: Path) -> Iterator[EmbeddedTemporal]:
    server = EmbeddedTemporal(state_dir=fault_dir / "temporal", ui=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fault_settings(
    fault_server: EmbeddedTemporal, embedded_redis: EmbeddedRedis, fault_dir: Path
) -> Settings:
    return Settings(
        temporal_address=fault_server.address,
        redis_url=embedded_redis.url,
        database_url=f"sqlite+aiosqlite:///{fault_dir / 'service.db'}",
        state_dir=fault_dir,
        api_tokens={TOKEN: ["admin"]},
    )


@pytest.fixture
async def ctx(fault_server: EmbeddedTemporal, fault_settings: Settings) -> AsyncIterator[Resources]:
    """The test's service resources, on the fault server's Temporal, with a task queue prefix of
    their own (no worker of another test takes their tasks)."""
    client = await Client.connect(fault_server.address)
    own = fault_settings.model_copy(update={"task_queue_prefix": f"fault-{uuid.uuid4().hex[:8]}-"})
    async with open_resources(own, temporal=client) as resources:
        yield resources


async def wait_closed(client: Client, *, within: float) -> None:
    async def none_running() -> bool:
        return (await client.count_workflows("ExecutionStatus = 'Running'")).count == 0

    await eventually(none_running, within_s=within, every_s=0.5)


class HeldDirectory:
    """The directory integration: every call is held unanswered until :meth:`release`, then
    answered; calls after that are answered at once. Records the idempotency keys of both."""

    def __init__(self) -> None:
        self.held: set[str] = set()  # a held call may be made again when its caller times out
        self.answered: list[str] = []  # the calls answered at once, after the release
        self._loop: asyncio.AbstractEventLoop | None = None
        self._released: asyncio.Event | None = None

        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            # the server's own loop (uvicorn runs in a thread): release() sets it from outside
            self._loop = asyncio.get_running_loop()
            self._released = asyncio.Event()
            yield

        self.app = FastAPI(lifespan=lifespan)

        @self.app.post("/{operation}")
        async def call(operation: str, request: Request) -> dict[str, bool]:
            assert self._released is not None
            key = request.headers.get("Idempotency-Key", "")
            if self._released.is_set():
                self.answered.append(key)
            else:
                self.held.add(key)
                await self._released.wait()
            return {"ok": True}

    def release(self) -> None:
        """Answer the held calls (their callers may be gone) and every call from now on."""
        assert self._loop is not None
        assert self._released is not None
        self._loop.call_soon_threadsafe(self._released.set)


@pytest.fixture
def directory() -> Iterator[tuple[HeldDirectory, str]]:
    held = HeldDirectory()
    with serving(held.app, name="directory-uvicorn", lifespan="on") as url:
        yield held, url
        held.release()  # a failed test leaves no call held at the server's shutdown


def worker_process(
    settings: Settings, name: str, queue: str, *, integrations: str = ""
) -> ChildProcess:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.temporal_address or "",
        "REDIS_URL": settings.redis_url or "",
        "DATABASE_URL": settings.database_url or "",
        "STATE_DIR": str(settings.state_dir),
        "WORKER_TASK_QUEUES": queue,
        "TASK_QUEUE_PREFIX": settings.task_queue_prefix,
        "INTEGRATION_URLS": integrations,
    }
    # the same main() as `protocol-lab worker`
    argv = [sys.executable, "-m", "service.temporal.worker"]
    return ChildProcess(name, argv, settings.state_dir / "logs" / f"{name}.log", env)


async def test_worker_killed_mid_flight(
    ctx: Resources, directory: tuple[HeldDirectory, str]
) -> None:
    assert ctx.temporal is not None
    client = ctx.temporal
    held, url = directory
    plan = ctx.catalog["Password Reset"]
    reset = next(step for step in plan.steps if step.id == "reset_password")
    assert reset.integration == "directory"
    integrations = f"directory={url}"
    gate = asyncio.Semaphore(16)

    async def launch(i: int) -> str:
        async with gate:
            wf = await start_workflow(
                ctx,
                name=plan.name,
                task_queue="itsm-workflows",
                input={"ticket_id": f"TKT-{i}"},
                time_scale=1.0,
            )
        return str(wf["id"])

    async def verify(wf: str) -> None:
        # may be in flight when the worker dies: retried with the same update id, answered once
        async def answered() -> bool:
            try:
                await signal_workflow(
                    ctx,
                    wf,
                    signal_name="identity_verified",
                    payload={"method": "sms"},
                    update_id=f"verify-{wf}",
                )
            except ServiceError:
                return False
            return True

        await eventually(answered, within_s=150, every_s=0.1)

    ids = await asyncio.gather(*(launch(i) for i in range(120)))
    resets = {f"{wf}.{reset.id}" for wf in ids}  # the idempotency keys of their reset calls
    first = worker_process(ctx.settings, "worker-1", "itsm-workflows", integrations=integrations)
    first.start()
    verifying = asyncio.gather(*(verify(wf) for wf in ids))
    try:
        # kill the worker once every workflow is inside its password reset
        def all_resetting() -> bool:
            first.check_alive()
            return held.held == resets

        await eventually(all_resetting, within_s=150, every_s=0.2)
        first.kill()
        running = await client.count_workflows("ExecutionStatus = 'Running'")
        assert running.count == len(ids)
    finally:
        first.stop()
        held.release()

    second = worker_process(ctx.settings, "worker-2", "itsm-workflows", integrations=integrations)
    second.start()
    try:
        await verifying
        await wait_closed(client, within=180)
    finally:
        second.stop()

    # each reset: the call the dead worker made, then the new worker's retry with the same key
    assert set(held.answered) == resets
    expected = [step.detail for step in plan.steps]
    for wf in ids:
        status = await get_status(ctx, wf)
        assert status["status"] == "completed", wf
        history = await client.get_workflow_handle(wf).fetch_history()
        timeline = await build_timeline(wf, list(history.events), converter=client.data_converter)
        started = [e.detail for e in timeline.events if e.event == "activity_started"]
        assert started == expected, wf
        done = Counter(
            e.step for e in timeline.events if e.event in ("activity_completed", "signal_received")
        )
        assert done == Counter(step.id for step in plan.steps), wf


async def test_temporal_crash_keeps_workflows_running(
    ctx: Resources, fault_server: EmbeddedTemporal
) -> None:
    [worker] = build_workers(ctx.temporal, ctx, task_queues=["itsm-accessories"])
    app = create_app(ctx.settings)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with worker, app.router.lifespan_context(app):
        api = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", timeout=60
        )
        ids = []
        for _ in range(10):
            created = await api.post(
                "/v1/workflows",
                headers=headers,
                json={
                    "name": "Laptop Provisioning - New Hire",
                    "task_queue": "itsm-accessories",
                    "time_scale": 3600,
                },
            )
            ids.append(created.json()["id"])
        for wf in ids:

            async def first_step_done(wf: str = wf) -> bool:
                return bool((await get_status(ctx, wf))["steps_completed"] == 1)

            await eventually(first_step_done, within_s=60)

        with contextlib.closing(sqlite3.connect(fault_server.db_file)) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        await asyncio.to_thread(fault_server.child.kill)
        # at once: each answers only when the service's own patience with Temporal runs out
        down: list[Any] = await asyncio.gather(
            api.get("/v1/workflows", headers=headers),
            api.get(f"/v1/workflows/{ids[0]}/status", headers=headers),
            api.post(
                "/v1/workflows",
                headers=headers,
                json={"name": "Password Reset", "task_queue": "itsm-workflows"},
            ),
        )
        for response in down:
            assert response.status_code == 503
            assert response.json()["type"] == "api_error"
            assert "Temporal" in response.json()["message"]

        await asyncio.to_thread(fault_server.start)
        for wf in ids:

            async def approved(wf: str = wf) -> bool:
                try:
                    # one update id: a retry after an answer that came too late is the same
                    # approval, not a second one
                    await signal_workflow(
                        ctx,
                        wf,
                        signal_name="approval_received",
                        payload={"decision": "approved"},
                        update_id=f"approval-{wf}",
                    )
                except Exception:  # Temporal is still coming back
                    return False
                return True

            await eventually(approved, within_s=60, every_s=0.2)
        await wait_closed(ctx.temporal, within=60)
        for wf in ids:
            got = (await api.get(f"/v1/workflows/{wf}", headers=headers)).json()
            assert got["status"] == "completed"
            events = [e["event"] for e in got["timeline"]]
            assert events.count("activity_started") == 5
        await api.aclose()
