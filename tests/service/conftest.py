"""Shared fixtures of the service tests, all on the session's real Temporal dev server and Redis.

- ``service_settings``: Settings pointing at the session's ``temporal_server`` and
  ``embedded_redis``, a fresh SQLite store in a temporary folder, tokens for each scope
  (``READ_TOKEN``, ``WRITE_TOKEN``, ``ADMIN_TOKEN``), ``time_scale`` 3600 (an hour of plan
  time per second) and a task queue prefix of the session's own (no other worker on the server
  takes its tasks; tests that start workflows on Temporal directly use ``temporal_queue``);
- ``worker``: the real worker (``service.temporal.worker.main``) running in the test session's
  event loop on the five task queues, until the session ends;
- ``api``: an ``httpx.AsyncClient`` on the FastAPI app through ``httpx.ASGITransport``, with the
  app's lifespan entered (so the app holds its own Temporal client, store and job producer);
- ``app_state``: that app's :class:`~service.state.Resources`, for calling service functions;
- ``read_headers`` / ``write_headers`` / ``admin_headers``: Authorization headers per scope;
- ``wait_for``: polls GET /status until a workflow reaches a status.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client
from waiting import eventually

from protocol_lab.polling import polled
from service.app import create_app
from service.settings import Settings
from service.stack import EmbeddedRedis, EmbeddedTemporal
from service.state import Resources
from service.temporal.queues import temporal_queues
from service.temporal.worker import main as worker_main

READ_TOKEN = "test-read-token"
WRITE_TOKEN = "test-write-token"
ADMIN_TOKEN = "test-admin-token"
TIME_SCALE = 3600.0


@pytest.fixture(scope="session")
def service_settings(
    temporal_server: EmbeddedTemporal,
    embedded_redis: EmbeddedRedis,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    """Settings for the service under test (see the module docstring)."""
    state: Path = tmp_path_factory.mktemp("service")
    return Settings(
        temporal_address=temporal_server.address,
        temporal_namespace=temporal_server.namespace,
        redis_url=embedded_redis.url,
        database_url=f"sqlite+aiosqlite:///{state / 'service.db'}",
        state_dir=state,
        api_tokens={READ_TOKEN: ["read"], WRITE_TOKEN: ["write"], ADMIN_TOKEN: ["admin"]},
        time_scale=TIME_SCALE,
        task_queue_prefix=f"test-{uuid.uuid4().hex[:8]}-",
    )


@pytest.fixture(scope="session")
async def worker(service_settings: Settings, temporal_client: Client) -> AsyncIterator[None]:
    """The worker, in-process, on the five task queues for the whole session."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker_main(temporal_client, settings=service_settings, stop=stop))

    async def polling() -> bool:
        if task.done():
            task.result()  # the worker failed to start: raise its error
        return await polled(temporal_client, temporal_queues(service_settings), ["workflow"])

    await eventually(polling, within_s=60, every_s=0.2)
    yield
    stop.set()
    # not wait_for: if the worker ignored the stop, cancelling it and waiting would hang too
    stopped, _ = await asyncio.wait({task}, timeout=30)
    assert stopped, "the worker did not stop within 30 s of its stop event"
    task.result()


@pytest.fixture(scope="session")
async def service_app(service_settings: Settings) -> AsyncIterator[FastAPI]:
    """The FastAPI app with its lifespan entered."""
    app = create_app(service_settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="session")
async def api(service_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app (in-process ASGI transport)."""
    transport = httpx.ASGITransport(app=service_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", timeout=60.0
    ) as client:
        yield client


@pytest.fixture(scope="session")
def app_state(service_app: FastAPI) -> Resources:
    """The app's state (Temporal client, store, catalog)."""
    state: Resources = service_app.state.protocol
    return state


@pytest.fixture(scope="session")
def read_headers() -> dict[str, str]:
    """Authorization with the read scope."""
    return {"Authorization": f"Bearer {READ_TOKEN}"}


@pytest.fixture(scope="session")
def write_headers() -> dict[str, str]:
    """Authorization with the write scope (implies read)."""
    return {"Authorization": f"Bearer {WRITE_TOKEN}"}


@pytest.fixture(scope="session")
def admin_headers() -> dict[str, str]:
    """Authorization with the admin scope (implies write and read)."""
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


WaitFor = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture(scope="session")
def wait_for(api: httpx.AsyncClient, read_headers: dict[str, str]) -> WaitFor:
    """``await wait_for(workflow_id, *statuses, steps_completed=None, within=60)``: poll
    GET /status until the workflow reaches one of ``statuses`` (and, if given, that many
    completed steps); return the last status body. Fails the test after ``within`` seconds."""

    async def wait(
        workflow_id: str,
        *statuses: str,
        steps_completed: int | None = None,
        within: float = 60.0,
    ) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            response = await api.get(f"/v1/workflows/{workflow_id}/status", headers=read_headers)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if body["status"] in statuses and (
                steps_completed is None or body["steps_completed"] >= steps_completed
            ):
                return body
            return None

        return await eventually(reached, within_s=within)

    return wait
