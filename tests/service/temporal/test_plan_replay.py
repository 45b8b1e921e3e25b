"""Replaying histories through ``temporalio.worker.Replayer`` catches non-determinism.

Two sets: histories recorded earlier and committed beside this file (``histories/*.json``: they
guard running executions against incompatible changes of the workflow code), and histories made
now by runs that go through every path of the plan workflow (signals, a signal kept for later,
timeouts, pause and resume, cancellation with compensation, a rejection). Set
``PROTOCOL_LAB_RECORD_HISTORIES=1`` to (re)write the committed set from the fresh runs.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from service.temporal.plan_workflow import PlanWorkflow
from service.temporal.worker import workflow_runner

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

HISTORIES = Path(__file__).parent / "histories"


def replayer() -> Replayer:
    return Replayer(workflows=[PlanWorkflow], workflow_runner=workflow_runner())


@pytest.fixture(scope="module")
async def fresh_histories(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
    wait_for: Any,
    temporal_client: Client,
) -> dict[str, WorkflowHistory]:
    async def start(name: str, queue: str, **extra: Any) -> str:
        body = {"name": name, "task_queue": queue, **extra}
        response = await api.post("/v1/workflows", headers=write_headers, json=body)
        assert response.status_code == 201, response.text
        workflow_id: str = response.json()["id"]
        return workflow_id

    async def post(wf: str, action: str, body: dict[str, Any] | None = None) -> None:
        response = await api.post(f"/v1/workflows/{wf}/{action}", headers=write_headers, json=body)
        assert response.status_code == 200, response.text

    runs: dict[str, str] = {}
    runs["completed_with_timeout_continue"] = await start(
        "VPN Access Revocation", "itsm-network", time_scale=100_000
    )
    runs["failed_on_timeout"] = await start("Password Reset", "itsm-workflows")
    early = await start("Device Enrollment", "itsm-fleet", time_scale=100_000)
    await post(early, "signal", {"signal_name": "user_responded"})
    runs["signal_kept_for_later"] = early

    laptop = await start("Laptop Provisioning - New Hire", "itsm-accessories")
    await wait_for(laptop, "active", steps_completed=1)
    await post(laptop, "pause")
    await post(laptop, "resume", {"reason": "go on"})
    await post(
        laptop, "signal", {"signal_name": "approval_received", "payload": {"decision": "ok"}}
    )
    runs["signal_pause_resume"] = laptop

    cancelled = await start("Laptop Provisioning - New Hire", "itsm-accessories")
    await wait_for(cancelled, "active", steps_completed=1)
    await post(cancelled, "cancel", {"reason": "no longer needed"})
    runs["cancelled_with_compensation"] = cancelled

    rejected = await start("P1 Incident Response", "itsm-high-priority", time_scale=100_000)
    await post(rejected, "signal", {"signal_name": "incident_acknowledged"})
    runs["paged_and_acknowledged"] = rejected

    for wf in runs.values():
        await wait_for(wf, "completed", "failed")
    histories = await asyncio.gather(
        *(temporal_client.get_workflow_handle(wf).fetch_history() for wf in runs.values())
    )
    result = dict(zip(runs, histories, strict=True))
    if os.environ.get("PROTOCOL_LAB_RECORD_HISTORIES") == "1":
        HISTORIES.mkdir(exist_ok=True)
        for name, history in result.items():
            (HISTORIES / f"{name}.json").write_text(history.to_json())
    return result


async def test_fresh_histories_replay(fresh_histories: dict[str, WorkflowHistory]) -> None:
    assert len(fresh_histories) == 6
    replay = replayer()
    for history in fresh_histories.values():
        result = await replay.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, history.workflow_id


def test_committed_histories_exist() -> None:
    assert len(RECORDED) >= 6


RECORDED = {path.stem: path.read_text() for path in sorted(HISTORIES.glob("*.json"))}


@pytest.mark.parametrize("name", sorted(RECORDED))
async def test_committed_history_replays(name: str) -> None:
    history = WorkflowHistory.from_json(name, RECORDED[name])
    await replayer().replay_workflow(history)
