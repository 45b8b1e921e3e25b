"""The timeline archive: a closed workflow moves from Temporal to the store and reads as archived.

On the real dev server and worker; the store on SQLite (the app's) and on PostgreSQL. The app and
the worker of this module have a task queue prefix and a store of their own (``archive_settings``):
archiving takes the closed workflows of this module, not every one the session's tests left.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from bullmq import Job
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stores import empty_store
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from waiting import eventually

from protocol_lab.domain import Catalog, TimelineEvent
from service.app import create_app
from service.executions import (
    archive_closed_workflows,
    get_status,
    get_workflow,
    list_workflows,
    start_workflow,
)
from service.jobs.sync import process_maintenance
from service.settings import Settings
from service.state import Resources
from service.store.archive import (
    ArchivedWorkflow,
    archived_rows,
    archived_timeline,
    get_archived,
    list_archived,
    upsert_archived,
)
from service.temporal.ids import new_workflow_id, order_of
from service.temporal.worker import build_workers

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

Sessions = async_sessionmaker[AsyncSession]
VPN = {
    "name": "VPN Access Revocation",
    "task_queue": "itsm-network",
    "trigger_type": "automatic",
    "input": {"ticket_id": "TKT-4829"},
    "time_scale": 100_000,
}


@pytest.fixture(scope="module")
def archive_settings(
    service_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """The session's service settings with a task queue prefix and a store of this module's."""
    folder: Path = tmp_path_factory.mktemp("archive-service")
    return service_settings.model_copy(
        update={
            "task_queue_prefix": f"archive-{uuid.uuid4().hex[:8]}-",
            "database_url": f"sqlite+aiosqlite:///{folder / 'service.db'}",
            "state_dir": folder,
        }
    )


@pytest.fixture(scope="module")
async def service_app(archive_settings: Settings) -> AsyncIterator[FastAPI]:
    """The app on ``archive_settings``, its lifespan entered."""
    app = create_app(archive_settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
async def api(service_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on this module's app."""
    transport = httpx.ASGITransport(app=service_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", timeout=60.0
    ) as client:
        yield client


@pytest.fixture(scope="module")
def app_state(service_app: FastAPI) -> Resources:
    """This module's app's resources."""
    state: Resources = service_app.state.protocol
    return state


@pytest.fixture(scope="module")
async def worker(app_state: Resources, temporal_client: Client) -> AsyncIterator[None]:
    """Workers of the plan workflow on this module's task queues (the five), on its store."""
    async with contextlib.AsyncExitStack() as stack:
        for each in build_workers(temporal_client, app_state):
            await stack.enter_async_context(each)
        yield


@pytest.fixture(scope="module")
def wait_for(api: httpx.AsyncClient, read_headers: dict[str, str]) -> Any:
    """The session's ``wait_for`` on this module's app: ``await wait_for(workflow_id, *statuses,
    steps_completed=None)`` polls GET /status until the workflow reaches one of ``statuses`` (and
    that many completed steps); returns the last status body."""

    async def wait(
        workflow_id: str, *statuses: str, steps_completed: int | None = None
    ) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            response = await api.get(f"/v1/workflows/{workflow_id}/status", headers=read_headers)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            done = steps_completed is None or body["steps_completed"] >= steps_completed
            return body if body["status"] in statuses and done else None

        return await eventually(reached, within_s=60)

    return wait


async def completed(ctx: Any, workflow_id: str) -> bool:
    """Whether the workflow's status reads completed."""
    return bool((await get_status(ctx, workflow_id))["status"] == "completed")


async def gone_from_temporal(client: Client, workflow_id: str, *, within: float = 30.0) -> bool:
    """Wait until describe answers NOT_FOUND (deletion completes asynchronously). A describe that
    runs out of time (a busy server, mid-deletion) is asked again; any other error fails."""

    async def gone() -> bool:
        try:
            handle = client.get_workflow_handle(workflow_id)
            await handle.describe(rpc_timeout=timedelta(seconds=10))
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return True
            if exc.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
                return False
            raise
        return False

    return await eventually(gone, within_s=within, every_s=0.2)


async def walk(api: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[str]:
    """Every id of a list, page by page forward (limit 50)."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        query = dict(params, limit=50) | ({"starting_after": cursor} if cursor else {})
        response = await api.get("/v1/workflows", headers=headers, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [w["id"] for w in page["data"]]
        if not page["has_more"]:
            return ids
        cursor = ids[-1]


async def test_a_closed_workflow_is_archived_and_still_readable(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
    wait_for: Any,
    app_state: Resources,
) -> None:
    created = await api.post("/v1/workflows", headers=write_headers, json=VPN)
    assert created.status_code == 201, created.text
    wf = created.json()["id"]
    status_before = await wait_for(wf, "completed")
    before = (await api.get(f"/v1/workflows/{wf}", headers=write_headers)).json()
    assert before["status"] == "completed"

    refused = await api.post("/v1/workflows/archive", headers=write_headers, json={})
    assert refused.status_code == 403

    # Visibility lags a little behind the close: run until the workflow has been taken.
    async def archived() -> bool:
        response = await api.post(
            "/v1/workflows/archive", headers=admin_headers, json={"older_than_s": 0}
        )
        assert response.status_code == 200, response.text
        assert isinstance(response.json()["archived"], int)  # others may be archived too
        got = (await api.get(f"/v1/workflows/{wf}", headers=write_headers)).json()
        return bool(got["status"] == "archived")

    await eventually(archived, within_s=30, every_s=0.2)

    # The workflow object is the original one, status archived, with the full timeline.
    got = (await api.get(f"/v1/workflows/{wf}", headers=write_headers)).json()
    assert got == before | {"status": "archived"}
    assert got["timeline"][-1]["event"] == "workflow_completed"
    assert got["completed_at"] is not None
    status = (await api.get(f"/v1/workflows/{wf}/status", headers=write_headers)).json()
    assert status == status_before | {"status": "archived"}
    assert (status["steps_completed"], status["steps_total"]) == (6, 6)

    # Lists: in status=archived (with its task queue, not with another), once in the full list.
    archived = await walk(api, write_headers, status="archived")
    assert archived.count(wf) == 1
    assert wf in await walk(api, write_headers, status="archived", task_queue="itsm-network")
    assert wf not in await walk(api, write_headers, status="archived", task_queue="itsm-workflows")
    assert wf not in await walk(api, write_headers, status="completed")
    everything = await walk(api, write_headers)
    assert everything.count(wf) == 1
    assert len(everything) == len(set(everything))
    orders = [order_of(i) for i in everything]
    assert orders == sorted(orders, reverse=True)
    assert set(archived) <= set(everything)

    # Backwards from the next older workflow, the archived one comes back first.
    older = (
        await api.get(
            "/v1/workflows", headers=write_headers, params={"limit": 1, "starting_after": wf}
        )
    ).json()
    if older["data"]:
        newer = (
            await api.get(
                "/v1/workflows",
                headers=write_headers,
                params={"limit": 1, "ending_before": older["data"][0]["id"]},
            )
        ).json()
        assert [w["id"] for w in newer["data"]] == [wf]

    # Acting on it is a conflict.
    signal = await api.post(
        f"/v1/workflows/{wf}/signal",
        headers=write_headers,
        json={"signal_name": "approval_received", "payload": {}},
    )
    cancel = await api.post(f"/v1/workflows/{wf}/cancel", headers=write_headers, json={})
    pause = await api.post(f"/v1/workflows/{wf}/pause", headers=write_headers, json={})
    keyed = write_headers | {"Idempotency-Key": f"cancel-{wf}"}
    retried = [await api.post(f"/v1/workflows/{wf}/cancel", headers=keyed) for _ in range(2)]
    for answer in (signal, cancel, pause, *retried):
        assert answer.status_code == 409, answer.text
        assert "archived" in answer.json()["message"]

    # Archiving again changes nothing.
    again = await api.post("/v1/workflows/archive", headers=admin_headers, json={"older_than_s": 0})
    assert again.status_code == 200, again.text
    assert (await api.get(f"/v1/workflows/{wf}", headers=write_headers)).json() == got
    async with app_state.sessionmaker() as session:
        rows = await session.scalar(
            select(func.count()).select_from(ArchivedWorkflow).where(ArchivedWorkflow.id == wf)
        )
    assert rows == 1

    missing = await api.get("/v1/workflows/wf_00000000000/status", headers=write_headers)
    assert missing.status_code == 404

    # Temporal deletes asynchronously; once it has, the reads are the same, from the archive.
    assert await gone_from_temporal(app_state.temporal, wf, within=90)
    assert (await api.get(f"/v1/workflows/{wf}", headers=write_headers)).json() == got
    status = (await api.get(f"/v1/workflows/{wf}/status", headers=write_headers)).json()
    assert status == status_before | {"status": "archived"}
    assert (await walk(api, write_headers)).count(wf) == 1


async def test_archiving_spares_running_and_recent_workflows(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
    wait_for: Any,
) -> None:
    running = await api.post(
        "/v1/workflows",
        headers=write_headers,
        json={"name": "Laptop Provisioning - New Hire", "task_queue": "itsm-accessories"},
    )
    done = await api.post("/v1/workflows", headers=write_headers, json=VPN)
    await wait_for(done.json()["id"], "completed")
    await wait_for(running.json()["id"], "active", steps_completed=1)
    response = await api.post(
        "/v1/workflows/archive", headers=admin_headers, json={"older_than_s": 3600}
    )
    assert response.status_code == 200, response.text
    assert (await wait_for(done.json()["id"], "completed"))["status"] == "completed"
    assert (await wait_for(running.json()["id"], "active"))["status"] == "active"
    negative = await api.post(
        "/v1/workflows/archive", headers=admin_headers, json={"older_than_s": -1}
    )
    assert negative.status_code == 400
    await api.post(f"/v1/workflows/{running.json()['id']}/cancel", headers=write_headers)


# -- the store on both backends ------------------------------------------------------------------


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres_url: str
) -> AsyncIterator[Sessions]:
    """A fresh, empty store on each backend (PostgreSQL: a schema of its own, dropped after)."""
    async with empty_store(
        request.param, folder=tmp_path_factory.mktemp("archive"), postgres_url=postgres_url
    ) as sessions:
        yield sessions


def _event(workflow_id: str, event: str, at: float, *, queue: str) -> TimelineEvent:
    return TimelineEvent(
        workflow_id=workflow_id,
        workflow_name="Password Reset",
        task_queue=queue,
        trigger_type="manual",
        event=event,
        timestamp=at,
        detail=f"{event} detail",
        step="s1" if event.startswith("activity") else None,
    )


async def test_archive_store_upserts_and_pages(store: Sessions) -> None:
    base = 1_800_000_000.0
    ids = [new_workflow_id(now=base + i) for i in range(6)]
    queues = ["itsm-workflows", "itsm-network"] * 3
    async with store() as session:
        for wid, queue in zip(ids, queues, strict=True):
            events = [
                _event(wid, "workflow_started", base, queue=queue),
                _event(wid, "activity_started", base + 0.5, queue=queue),
                _event(wid, "workflow_failed", base + 1.5, queue=queue),
            ]
            for archived_at in (base + 10, base + 20):  # the second write is an upsert
                await upsert_archived(
                    session,
                    workflow_id=wid,
                    name="Password Reset",
                    task_queue=queue,
                    trigger_type="manual",
                    status="failed",
                    reason="Cancelled by user",
                    started_at=base,
                    completed_at=base + 1.5,
                    protocol_order=order_of(wid),
                    steps_completed=1,
                    steps_total=4,
                    timeline=events,
                    archived_at=archived_at,
                )
        count = await session.scalar(select(func.count()).select_from(ArchivedWorkflow))
        assert count == 6
        row = await get_archived(session, workflow_id=ids[0])
        assert row is not None
        assert row.archived_at == base + 10  # the first archiving time is kept
        assert (row.status, row.reason, row.protocol_order) == (
            "failed",
            "Cancelled by user",
            order_of(ids[0]),
        )
        assert [e.to_dict() for e in archived_timeline(row)] == [
            _event(ids[0], e, t, queue="itsm-workflows").to_dict()
            for e, t in (
                ("workflow_started", base),
                ("activity_started", base + 0.5),
                ("workflow_failed", base + 1.5),
            )
        ]
        assert await get_archived(session, workflow_id="wf_00000000000") is None
        found = await archived_rows(session, workflow_ids=[ids[1], "wf_00000000000"])
        assert list(found) == [ids[1]]

        newest = await list_archived(session, limit=4)
        assert [r.id for r in newest] == ids[::-1][:4]
        older = await list_archived(session, below=order_of(ids[3]), limit=10)
        assert [r.id for r in older] == [ids[2], ids[1], ids[0]]
        newer = await list_archived(session, above=order_of(ids[1]), limit=2, newest_first=False)
        assert [r.id for r in newer] == [ids[2], ids[3]]
        network = await list_archived(session, task_queue="itsm-network", limit=10)
        assert [r.id for r in network] == [ids[5], ids[3], ids[1]]


@dataclass
class _StoreContext:
    """The service functions' context with a store of the test's choosing."""

    settings: Settings
    temporal: Client
    catalog: Catalog
    sessionmaker: Sessions


@pytest.mark.postgres
async def test_archiving_into_postgresql(
    worker: None, app_state: Resources, postgres_url: str
) -> None:
    async with empty_store("postgres", postgres_url=postgres_url) as sessions:
        ctx = _StoreContext(
            settings=app_state.settings,
            temporal=app_state.temporal,
            catalog=app_state.catalog,
            sessionmaker=sessions,
        )
        started = await start_workflow(
            ctx,
            name="VPN Access Revocation",
            task_queue="itsm-network",
            trigger_type="automatic",
            input={"ticket_id": "TKT-4829"},
            time_scale=100_000,
        )
        wf = started["id"]
        await eventually(lambda: completed(ctx, wf), within_s=60)
        before = await get_workflow(ctx, wf)

        async def archived() -> ArchivedWorkflow | None:
            await archive_closed_workflows(ctx, older_than_s=0)
            async with ctx.sessionmaker() as session:
                return await get_archived(session, workflow_id=wf)

        row = await eventually(archived, within_s=60)
        assert row.status == "completed"
        assert row.task_queue == "itsm-network"
        assert await get_workflow(ctx, wf) == before | {"status": "archived"}
        assert (await get_status(ctx, wf))["status"] == "archived"
        page, _ = await list_workflows(ctx, status="archived", limit=100)
        assert [w["id"] for w in page].count(wf) == 1
        await archive_closed_workflows(ctx, older_than_s=0)  # again: nothing twice
        async with ctx.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(ArchivedWorkflow)) >= 1
            assert list(await archived_rows(session, workflow_ids=[wf])) == [wf]


async def test_daily_maintenance_archives_closed_workflows(
    worker: None,
    app_state: Resources,
    archive_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("maintenance")
    settings = archive_settings.model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{folder / 'm.db'}", "archive_after_s": 0.0}
    )
    resources = await Resources.open(settings, temporal=app_state.temporal)
    try:
        started = await start_workflow(
            resources,
            name="VPN Access Revocation",
            task_queue="itsm-network",
            input={"ticket_id": "TKT-5102"},
            time_scale=100_000,
        )
        wf = started["id"]
        await eventually(lambda: completed(resources, wf), within_s=60)
        job = cast(Job, SimpleNamespace(id="maintenance-test", name="prune", data={}))

        async def archived_by_maintenance() -> ArchivedWorkflow | None:
            outcome = await process_maintenance(resources, job)
            assert "archive_error" not in outcome
            assert isinstance(outcome["archived_workflows"], int)
            async with resources.sessionmaker() as session:
                return await get_archived(session, workflow_id=wf)

        await eventually(archived_by_maintenance, within_s=60)
        assert (await get_status(resources, wf))["status"] == "archived"
    finally:
        await resources.close()


async def test_ids_of_the_older_11_character_form_read_and_list_in_order(
    api: httpx.AsyncClient,
    worker: None,
    app_state: Resources,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
) -> None:
    ticket = f"TKT-{order_of(new_workflow_id()) % 10**9}"
    now = time.time()
    # The older form is the 11 ordering characters alone.
    in_temporal = new_workflow_id(now=now - 2)[:14]
    in_archive = new_workflow_id(now=now - 1)[:14]
    assert len(in_temporal) == len(in_archive) == 14
    await start_workflow(
        app_state,
        name="VPN Access Revocation",
        task_queue="itsm-network",
        input={"ticket_id": ticket},
        workflow_id=in_temporal,
        time_scale=100_000,
    )
    async with app_state.sessionmaker() as session:
        await upsert_archived(
            session,
            workflow_id=in_archive,
            name="VPN Access Revocation",
            task_queue="itsm-network",
            trigger_type="manual",
            status="completed",
            reason=None,
            started_at=now - 1,
            completed_at=now - 0.5,
            protocol_order=order_of(in_archive),
            steps_completed=1,
            steps_total=1,
            timeline=[],
            archived_at=now,
            ticket_id=ticket,
        )
    created = await api.post(
        "/v1/workflows", headers=write_headers, json={**VPN, "input": {"ticket_id": ticket}}
    )
    assert created.status_code == 201, created.text
    newest = created.json()["id"]
    assert len(newest) == 17

    async def page(**params: Any) -> dict[str, Any]:
        query = {"ticket_id": ticket, "limit": 1, **params}
        response = await api.get("/v1/workflows", headers=read_headers, params=query)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def all_three_listed() -> bool:
        listed = await page(limit=10)
        return [w["id"] for w in listed["data"]] == [newest, in_archive, in_temporal]

    await eventually(all_three_listed)
    forward = [newest]
    while len(forward) < 3:
        forward += [w["id"] for w in (await page(starting_after=forward[-1]))["data"]]
    assert forward == [newest, in_archive, in_temporal]
    back = await page(ending_before=in_temporal)
    assert [w["id"] for w in back["data"]] == [in_archive]
    assert back["has_more"] is True
    for workflow_id, status in ((in_temporal, None), (in_archive, "archived")):
        got = await api.get(f"/v1/workflows/{workflow_id}", headers=read_headers)
        assert got.status_code == 200, got.text
        assert got.json()["id"] == workflow_id
        if status is not None:
            assert got.json()["status"] == status


async def test_the_archive_orders_old_and_new_ids_together(store: Sessions) -> None:
    base = 1_750_000_000.0  # a second of its own in the module's store
    # alternately the older 11-character form and the 14-character one, one second apart
    ids = [new_workflow_id(now=base + i)[: 14 if i % 2 == 0 else 17] for i in range(4)]
    assert [len(i) for i in ids] == [14, 17, 14, 17]
    async with store() as session:
        for wid in ids:
            await upsert_archived(
                session,
                workflow_id=wid,
                name="Password Reset",
                task_queue="itsm-workflows",
                trigger_type="manual",
                status="completed",
                reason=None,
                started_at=base,
                completed_at=base + 1,
                protocol_order=order_of(wid),
                steps_completed=1,
                steps_total=1,
                timeline=[],
                archived_at=base + 10,
            )
        mine = await list_archived(
            session, above=order_of(ids[0]) - 1, below=order_of(ids[-1]) + 1, limit=10
        )
        assert [r.id for r in mine] == ids[::-1]
        older = await list_archived(
            session, above=order_of(ids[0]) - 1, below=order_of(ids[2]), limit=10
        )
        assert [r.id for r in older] == [ids[1], ids[0]]
        for wid in ids:
            row = await get_archived(session, workflow_id=wid)
            assert row is not None
            assert row.protocol_order == order_of(wid)
