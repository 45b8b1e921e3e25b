"""Control endpoints answer within a bounded wait, and a retried cancel really cancels.

The service runs in uvicorn on loopback ports (in threads), so the client's timeout is a real
bound on the answer: one server on the test stack, one whose Temporal address has nobody
listening. Both share the test service's store.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from live_server import serving
from temporalio.client import Client
from waiting import eventually

from protocol_lab.domain.history import build_timeline
from protocol_lab.domain.wire import MEMO_STATE, PlanInput
from service.app import create_app
from service.executions.starter import initial_state
from service.settings import Settings
from service.stack import free_port
from service.state import Resources
from service.temporal.ids import new_workflow_id
from service.temporal.plan_workflow import PlanWorkflow
from service.temporal.queues import temporal_queue
from service.temporal.worker import build_workers

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

# Well above the service's bounded wait plus a few RPCs; well below the old 30 s waits.
ANSWER_WITHIN_S = 15.0
LAPTOP = {"name": "Laptop Provisioning - New Hire", "task_queue": "itsm-accessories"}
APPROVAL = {"signal_name": "approval_received", "payload": {"decision": "approved"}}


@pytest.fixture(scope="module")
def live_url(service_settings: Settings) -> Iterator[str]:
    """The service on the test stack, over real HTTP."""
    with serving(create_app(service_settings), name="control-live") as url:
        yield url


@pytest.fixture(scope="module")
def temporal_down_url(service_settings: Settings) -> Iterator[str]:
    """The service on the same store, with a Temporal address nobody listens on."""
    settings = service_settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    with serving(create_app(settings), name="control-temporal-down") as url:
        yield url


async def _unserved_workflow(app_state: Resources, temporal_client: Client, queue: str) -> str:
    """A running laptop provisioning on the test's own ``queue``, which no worker polls yet."""
    plan = app_state.catalog.get(LAPTOP["name"])
    assert plan is not None
    workflow_id = new_workflow_id()
    await temporal_client.start_workflow(
        PlanWorkflow.run,
        PlanInput(
            name=plan.name,
            task_queue=queue,
            trigger_type="manual",
            plan=plan.model_dump(mode="json"),
        ),
        id=workflow_id,
        task_queue=temporal_queue(app_state.settings, queue),
        memo={MEMO_STATE: initial_state(plan, status="active")},
    )
    return workflow_id


async def test_control_without_a_worker_answers_within_the_bound(
    app_state: Resources,
    temporal_client: Client,
    live_url: str,
    write_headers: dict[str, str],
) -> None:
    wf = await _unserved_workflow(app_state, temporal_client, f"unserved-{uuid.uuid4()}")
    async with httpx.AsyncClient(
        base_url=live_url, headers=write_headers, timeout=ANSWER_WITHIN_S
    ) as client:
        # concurrently: each is bounded on its own
        signal, paused, resumed, cancelled = await asyncio.gather(
            client.post(f"/v1/workflows/{wf}/signal", json=APPROVAL),
            client.post(f"/v1/workflows/{wf}/pause"),
            client.post(f"/v1/workflows/{wf}/resume"),
            client.post(f"/v1/workflows/{wf}/cancel"),
        )
    # a signal is durable: accepted although no worker runs (see the test below)
    assert signal.status_code == 200, signal.text
    assert signal.json() == {
        "id": wf,
        "signal_name": "approval_received",
        "accepted": True,
        "reason": None,
        "status": "active",
        "current_step": "Checking asset availability",
    }
    for answer in (paused, resumed, cancelled):
        assert answer.status_code == 202, answer.text
        assert (answer.json()["id"], answer.json()["status"]) == (wf, "active")
    await temporal_client.get_workflow_handle(wf).terminate(reason="test over")


async def test_a_cancel_retried_after_a_failed_attempt_cancels(
    api: httpx.AsyncClient,
    worker: None,
    live_url: str,
    temporal_down_url: str,
    write_headers: dict[str, str],
    wait_for: Any,
) -> None:
    started = await api.post("/v1/workflows", headers=write_headers, json=LAPTOP)
    wf = started.json()["id"]
    await wait_for(wf, "active", steps_completed=1)
    headers = {**write_headers, "Idempotency-Key": f"cancel-{uuid.uuid4().hex}"}

    async with httpx.AsyncClient(
        base_url=temporal_down_url, headers=headers, timeout=ANSWER_WITHIN_S
    ) as down:
        failed = await down.post(f"/v1/workflows/{wf}/cancel", json={"reason": "Withdrawn"})
    assert failed.status_code == 503
    assert failed.json()["type"] == "api_error"

    async with httpx.AsyncClient(
        base_url=live_url, headers=headers, timeout=ANSWER_WITHIN_S
    ) as live:
        retried = await live.post(f"/v1/workflows/{wf}/cancel", json={"reason": "Withdrawn"})
        assert retried.status_code in (200, 202), retried.text
        await wait_for(wf, "failed")
        again = await live.post(f"/v1/workflows/{wf}/cancel", json={"reason": "Withdrawn"})
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "failed"
    assert again.json()["timeline"][-1]["event"] == "workflow_cancelled"
    assert again.json()["timeline"][-1]["detail"] == "Withdrawn"


async def test_a_signal_sent_while_no_worker_runs_is_taken_when_one_comes(
    app_state: Resources,
    temporal_client: Client,
    service_settings: Settings,
    live_url: str,
    write_headers: dict[str, str],
) -> None:
    queue = f"unserved-{uuid.uuid4()}"
    wf = await _unserved_workflow(app_state, temporal_client, queue)
    async with httpx.AsyncClient(
        base_url=live_url, headers=write_headers, timeout=ANSWER_WITHIN_S
    ) as client:
        sent = await client.post(f"/v1/workflows/{wf}/signal", json=APPROVAL)
        assert sent.status_code == 200, sent.text
        assert sent.json()["accepted"] is True
        unknown = await client.post(f"/v1/workflows/{wf}/signal", json={"signal_name": "bribe"})
        assert unknown.status_code == 200
        assert unknown.json()["accepted"] is False
        assert "approval_received" in unknown.json()["reason"]
        resources = await Resources.open(service_settings, temporal=temporal_client)
        try:
            workers = build_workers(temporal_client, resources, task_queues=[queue])
            async with contextlib.AsyncExitStack() as stack:
                for worker in workers:
                    await stack.enter_async_context(worker)

                async def past_the_approval() -> bool:
                    status = (await client.get(f"/v1/workflows/{wf}/status")).json()
                    return int(status["steps_completed"]) >= 2

                await eventually(past_the_approval, within_s=60, every_s=0.2)
        finally:
            await resources.close()
    handle = temporal_client.get_workflow_handle(wf)
    history = await handle.fetch_history()
    timeline = await build_timeline(wf, history.events)
    received = [e for e in timeline.events if e.event == "signal_received"]
    assert [(e.step, e.outcome) for e in received] == [("manager_approval", "completed")]
    await handle.terminate(reason="test over")
