"""Step activities doing real work: tickets in the store, jobs on BullMQ, asset records, and
signed, retried HTTP calls to an integration configured by URL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from bullmq import Queue
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from live_server import serving
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from protocol_lab.domain import load_catalog
from protocol_lab.domain.history import build_timeline
from protocol_lab.domain.wire import PlanInput, SignalInput
from service.jobs.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from service.settings import Settings
from service.stack import EmbeddedRedis
from service.state import Resources
from service.store.assets import assets_of_workflow, release_assets, reserve_asset
from service.store.tickets import create_ticket, get_ticket
from service.temporal import search_attributes as sa
from service.temporal.ids import new_workflow_id, order_of
from service.temporal.plan_workflow import PlanWorkflow
from service.temporal.queues import temporal_queue
from service.temporal.worker import build_workers

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


async def test_ticket_update_and_job_through_a_real_run(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
    wait_for: Any,
    app_state: Resources,
    embedded_redis: EmbeddedRedis,
) -> None:
    async with app_state.sessionmaker() as session:
        ticket, _ = await create_ticket(
            session, fields={"title": "Forgot my password", "category": "access"}, actor="test"
        )
    created = await api.post(
        "/v1/workflows",
        headers=write_headers,
        json={
            "name": "Password Reset",
            "task_queue": "itsm-workflows",
            "trigger_type": "event_based",
            "input": {"ticket_id": ticket["id"]},
            "time_scale": 100,
        },
    )
    wf = created.json()["id"]
    response = await api.post(
        f"/v1/workflows/{wf}/signal",
        headers=write_headers,
        json={"signal_name": "identity_verified", "payload": {"method": "sms"}},
    )
    assert response.status_code == 200, response.text
    await wait_for(wf, "completed")
    async with app_state.sessionmaker() as session:
        after = await get_ticket(session, ticket_id=ticket["id"])
    assert after is not None
    assert after["status"] == "resolved"

    queue = Queue("email", {"connection": embedded_redis.url})
    try:
        job = await queue.getJob(f"{wf}.email_user")
        assert job is not None
        assert job.name == "password_reset"
        assert job.data["ticket_id"] == ticket["id"]
    finally:
        await queue.close()
    timeline = (await api.get(f"/v1/workflows/{wf}", headers=write_headers)).json()["timeline"]
    assert timeline[0]["detail"] == f"Triggered by ticket {ticket['id']}"
    assert [e["detail"] for e in timeline if e["event"] == "activity_completed"][-2:] == [
        "User e-mailed",
        "Ticket resolved",
    ]


async def test_asset_operations_are_idempotent(app_state: Resources) -> None:
    first, second = new_workflow_id(), new_workflow_id()
    async with app_state.sessionmaker() as session:
        a = await reserve_asset(session, workflow_id=first, asset_type="token")
        again = await reserve_asset(session, workflow_id=first, asset_type="token")
        assert again["id"] == a["id"]
        assert [x["id"] for x in await release_assets(session, workflow_id=first)] == [a["id"]]
        assert await release_assets(session, workflow_id=first) == []
        b = await reserve_asset(session, workflow_id=second, asset_type="token")
        assert b["status"] == "reserved"
        assert await assets_of_workflow(session, workflow_id=first) == []
        await release_assets(session, workflow_id=second)


# -- an integration configured by URL -------------------------------------------------------------


class FakeIntegration:
    """An HTTP server that checks signatures, fails each operation's first call with 503 and
    refuses operations named in ``refuse``."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.calls: list[tuple[str, str, bool]] = []  # (operation, idempotency key, signed ok)
        self.refuse: set[str] = set()
        self.app = FastAPI()

        @self.app.post("/{operation}")
        async def call(operation: str, request: Request) -> JSONResponse:
            body = await request.body()
            signed = (
                verify(
                    body,
                    secret=self.secret,
                    timestamp=request.headers.get(TIMESTAMP_HEADER),
                    signature=request.headers.get(SIGNATURE_HEADER),
                )
                is None
            )
            key = request.headers.get("Idempotency-Key", "")
            first = all(k != key for _, k, _ in self.calls)
            self.calls.append((operation, key, signed))
            if not signed:
                return JSONResponse({"error": "bad signature"}, status_code=401)
            if operation in self.refuse:
                return JSONResponse({"error": "no"}, status_code=400)
            if first:
                return JSONResponse({"error": "busy"}, status_code=503)
            return JSONResponse({"ok": True})


@pytest.fixture(scope="module")
async def integration(service_settings: Settings) -> AsyncIterator[tuple[FakeIntegration, str]]:
    fake = FakeIntegration(service_settings.integration_secret.get_secret_value())
    with serving(fake.app, name="integration-uvicorn", lifespan="off") as url:
        yield fake, url


async def _run_plan(
    client: Client,
    settings: Settings,
    *,
    name: str,
    signals: list[str],
) -> tuple[str, BaseException | None]:
    """Run a plan on a private task queue served by a worker with these settings."""
    queue = f"integration-{uuid.uuid4()}"
    resources = await Resources.open(settings, temporal=client)
    [worker] = build_workers(client, resources, task_queues=[queue])
    plan = load_catalog()[name]
    workflow_id = new_workflow_id()
    error: BaseException | None = None
    async with worker:
        handle = await client.start_workflow(
            PlanWorkflow.run,
            PlanInput(
                name=name,
                task_queue=queue,
                trigger_type="manual",
                plan=plan.model_dump(mode="json"),
                time_scale=100_000,
            ),
            id=workflow_id,
            task_queue=temporal_queue(settings, queue),
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(sa.ORDER, order_of(workflow_id))]
            ),
        )
        for signal in signals:
            await handle.execute_update("signal", SignalInput(signal_name=signal))
        try:
            await handle.result()
        except WorkflowFailureError as exc:
            error = exc
    await resources.close()
    return workflow_id, error


async def test_integration_calls_are_signed_and_retried(
    temporal_client: Client,
    service_settings: Settings,
    integration: tuple[FakeIntegration, str],
) -> None:
    fake, url = integration
    settings = service_settings.model_copy(
        update={"integration_urls": {"directory": url, "vpn_gateway": url}}
    )
    workflow_id, error = await _run_plan(
        temporal_client, settings, name="VPN Access Revocation", signals=["revocation_confirmed"]
    )
    assert error is None
    mine = [c for c in fake.calls if c[1].startswith(workflow_id)]
    # each operation: a 503 first, then the retry with the same idempotency key succeeds
    assert [c[0] for c in mine] == [
        "lookup",
        "lookup",
        "revoke",
        "revoke",
        "terminate_sessions",
        "terminate_sessions",
    ]
    assert all(signed for _, _, signed in mine)
    assert len({key for _, key, _ in mine}) == 3
    history = await temporal_client.get_workflow_handle(workflow_id).fetch_history()
    timeline = await build_timeline(
        workflow_id, list(history.events), converter=temporal_client.data_converter
    )
    completed = [e.detail for e in timeline.events if e.event == "activity_completed"]
    assert completed[:3] == [
        "User found in directory",
        "VPN access revoked",
        "Active sessions terminated",
    ]


async def test_a_refused_call_fails_the_step_and_compensates(
    temporal_client: Client,
    service_settings: Settings,
    integration: tuple[FakeIntegration, str],
) -> None:
    fake, url = integration
    fake.refuse = {"terminate_sessions"}
    settings = service_settings.model_copy(
        update={"integration_urls": {"directory": url, "vpn_gateway": url}}
    )
    try:
        workflow_id, error = await _run_plan(
            temporal_client, settings, name="VPN Access Revocation", signals=[]
        )
    finally:
        fake.refuse = set()
    assert isinstance(error, WorkflowFailureError)
    mine = [c[0] for c in fake.calls if c[1].startswith(workflow_id)]
    # a 400 is final: no retry of terminate_sessions; then the revoke is undone
    assert mine.count("terminate_sessions") == 1
    assert mine[-2:] == ["restore", "restore"]
    history = await temporal_client.get_workflow_handle(workflow_id).fetch_history()
    timeline = await build_timeline(
        workflow_id, list(history.events), converter=temporal_client.data_converter
    )
    tail = [(e.event, e.detail) for e in timeline.events][-4:]
    assert tail == [
        (
            "activity_failed",
            "Terminating active sessions failed: vpn_gateway refused terminate_sessions: 400",
        ),
        ("compensation_started", "VPN access restored"),
        ("compensation_completed", "VPN access restored"),
        (
            "workflow_failed",
            "Terminating active sessions failed: vpn_gateway refused terminate_sessions: 400",
        ),
    ]
