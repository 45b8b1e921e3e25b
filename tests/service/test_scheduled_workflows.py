"""Scheduled workflows against the real service, Temporal and worker: a draft (scheduled, no
start time) started by POST /start with the definition version it was made with, a cancelled
draft, and recurring workflows on Temporal Schedules (interval and cron), with their bounds."""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from test_definitions_api import DEFINITION
from waiting import eventually

from service.executions import drafts
from service.executions.schedules import recurring_schedule_id

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

VPN = {
    "name": "VPN Access Revocation",
    "task_queue": "itsm-network",
    "trigger_type": "scheduled",
    "input": {"ticket_id": "TKT-7001"},
}


async def create(api: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    response = await api.post("/v1/workflows", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def listed_ids(api: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[str]:
    response = await api.get("/v1/workflows", headers=headers, params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return [w["id"] for w in response.json()["data"]]


async def test_a_draft_waits_for_start_then_runs(
    api: httpx.AsyncClient,
    worker: None,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
    wait_for: Any,
) -> None:
    draft = await create(api, write_headers, VPN)
    assert (draft["status"], draft["trigger_type"], draft["started_at"]) == (
        "draft",
        "scheduled",
        None,
    )
    assert draft["timeline"] == []
    assert len(draft["id"]) == 17
    got = (await api.get(f"/v1/workflows/{draft['id']}", headers=read_headers)).json()
    assert got == draft
    status = (await api.get(f"/v1/workflows/{draft['id']}/status", headers=read_headers)).json()
    assert (status["status"], status["steps_completed"], status["started_at"]) == ("draft", 0, None)
    assert status["current_step"]
    for params in ({"status": "draft"}, {"trigger_type": "scheduled"}, {"ticket_id": "TKT-7001"}):
        assert draft["id"] in await listed_ids(api, read_headers, **params)
    assert draft["id"] not in await listed_ids(api, read_headers, status="active")
    assert draft["id"] not in await listed_ids(api, read_headers, trigger_type="manual")

    for action in ("signal", "pause"):
        early = await api.post(
            f"/v1/workflows/{draft['id']}/{action}",
            headers=write_headers,
            json={"signal_name": "approval_received"} if action == "signal" else None,
        )
        assert early.status_code == 409, early.text
        assert "/start" in early.json()["message"]

    started = await api.post(f"/v1/workflows/{draft['id']}/start", headers=write_headers)
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "active"
    assert started.json()["timeline"][0]["event"] == "workflow_started"
    await wait_for(draft["id"], "completed", within=60)
    assert (await listed_ids(api, read_headers, trigger_type="scheduled")).count(draft["id"]) == 1

    again = await api.post(f"/v1/workflows/{draft['id']}/start", headers=write_headers)
    assert again.status_code == 409
    assert "completed" in again.json()["message"]
    unknown = await api.post("/v1/workflows/wf_00000000000000/start", headers=write_headers)
    assert unknown.status_code == 404


async def test_a_draft_runs_the_version_it_was_made_with(
    api: httpx.AsyncClient,
    worker: None,
    admin_headers: dict[str, str],
    wait_for: Any,
) -> None:
    name = f"Draft Mailbox {uuid.uuid4().hex[:8]}"
    defined = await api.post(
        f"/v1/workflow-definitions/{name}", headers=admin_headers, json=DEFINITION
    )
    assert defined.status_code == 201, defined.text
    draft = await create(
        api,
        admin_headers,
        {"name": name, "task_queue": "itsm-workflows", "trigger_type": "scheduled"},
    )
    longer = copy.deepcopy(DEFINITION)
    longer["steps"].append({**longer["steps"][1], "id": "audit"})
    assert (
        await api.put(f"/v1/workflow-definitions/{name}", headers=admin_headers, json=longer)
    ).status_code == 201
    started = await api.post(f"/v1/workflows/{draft['id']}/start", headers=admin_headers)
    assert started.status_code == 200, started.text
    status = await wait_for(draft["id"], "active")
    assert status["steps_total"] == 2
    await api.post(f"/v1/workflows/{draft['id']}/cancel", headers=admin_headers)


async def test_a_cancelled_draft_never_starts(
    api: httpx.AsyncClient,
    worker: None,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
) -> None:
    draft = await create(api, write_headers, VPN)
    cancelled = await api.post(
        f"/v1/workflows/{draft['id']}/cancel", headers=write_headers, json={"reason": "Not needed"}
    )
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "failed"
    [event] = body["timeline"]
    assert (event["event"], event["timestamp"], event["detail"]) == (
        "workflow_cancelled",
        body["cancelled_at"],
        "Not needed",
    )
    got = (await api.get(f"/v1/workflows/{draft['id']}", headers=read_headers)).json()
    assert (got["status"], got["started_at"]) == ("failed", None)
    refused = await api.post(f"/v1/workflows/{draft['id']}/start", headers=write_headers)
    assert refused.status_code == 409


async def test_drafts_honour_the_idempotency_key(
    api: httpx.AsyncClient, worker: None, write_headers: dict[str, str]
) -> None:
    headers = {**write_headers, "Idempotency-Key": f"draft-{uuid.uuid4().hex}"}
    first = await create(api, headers, VPN)
    second = await create(api, headers, VPN)
    assert first == second
    await api.post(f"/v1/workflows/{first['id']}/start", headers=write_headers)
    third = await create(api, headers, VPN)
    assert (third["id"], third["status"]) == (first["id"], "active")
    await api.post(f"/v1/workflows/{first['id']}/cancel", headers=write_headers)


async def _schedule_exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_schedule_handle(recurring_schedule_id(workflow_id)).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_a_recurring_workflow_starts_runs_on_its_schedule(
    api: httpx.AsyncClient,
    worker: None,
    temporal_client: Client,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
) -> None:
    name = "Password Reset"
    ticket = f"TKT-{int(time.time() * 1000) % 10**9}"
    recurring = await create(
        api,
        write_headers,
        {
            "name": name,
            "task_queue": "itsm-workflows",
            "trigger_type": "scheduled",
            "input": {"ticket_id": ticket},
            "schedule": {"interval_s": 3600},
        },
    )
    assert recurring["status"] == "draft"
    handle = temporal_client.get_schedule_handle(recurring_schedule_id(recurring["id"]))
    described = await handle.describe()
    assert described.schedule.spec.intervals[0].every.total_seconds() == 3600
    refused = await api.post(f"/v1/workflows/{recurring['id']}/start", headers=write_headers)
    assert refused.status_code == 409
    assert "recurring" in refused.json()["message"]

    await handle.trigger()

    async def runs(count: int) -> list[str] | None:
        ids = [
            i
            for i in await listed_ids(api, read_headers, ticket_id=ticket, trigger_type="scheduled")
            if i != recurring["id"]
        ]
        return ids if len(ids) >= count else None

    [first] = await eventually(lambda: runs(1), within_s=60)
    run = (await api.get(f"/v1/workflows/{first}", headers=read_headers)).json()
    assert (run["name"], run["trigger_type"], run["task_queue"]) == (
        name,
        "scheduled",
        "itsm-workflows",
    )
    await handle.trigger()
    both = await eventually(lambda: runs(2), within_s=60)
    assert len(set(both)) == 2
    assert recurring["id"] in await listed_ids(api, read_headers, ticket_id=ticket)

    cancelled = await api.post(f"/v1/workflows/{recurring['id']}/cancel", headers=write_headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "failed"
    assert not await _schedule_exists(temporal_client, recurring["id"])
    for wf in both:
        await api.post(f"/v1/workflows/{wf}/cancel", headers=write_headers)


async def test_a_cron_schedule_is_created_and_bad_ones_refused(
    api: httpx.AsyncClient,
    worker: None,
    temporal_client: Client,
    write_headers: dict[str, str],
) -> None:
    body = {"name": "Password Reset", "task_queue": "itsm-workflows", "trigger_type": "scheduled"}
    recurring = await create(api, write_headers, {**body, "schedule": {"cron": "*/5 * * * *"}})
    handle = temporal_client.get_schedule_handle(recurring_schedule_id(recurring["id"]))
    upcoming = (await handle.describe()).info.next_action_times
    assert upcoming
    assert all(t.minute % 5 == 0 and t.second == 0 for t in upcoming)
    await api.post(f"/v1/workflows/{recurring['id']}/cancel", headers=write_headers)

    bad = await api.post(
        "/v1/workflows", headers=write_headers, json={**body, "schedule": {"cron": "99 * * * *"}}
    )
    assert bad.status_code == 400, bad.text
    assert "schedule.cron" in bad.json()["message"]


async def test_recurring_workflows_are_bounded_per_caller(
    api: httpx.AsyncClient,
    worker: None,
    temporal_client: Client,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(drafts, "MAX_SCHEDULES_PER_CALLER", 1)
    body = {
        "name": "Password Reset",
        "task_queue": "itsm-workflows",
        "trigger_type": "scheduled",
        "schedule": {"interval_s": 86400},
    }
    first = await create(api, admin_headers, body)
    refused = await api.post("/v1/workflows", headers=admin_headers, json=body)
    assert refused.status_code == 409
    assert "recurring" in refused.json()["message"]
    other = await create(api, write_headers, body)  # another token has its own bound
    for wf in (first, other):
        await api.post(f"/v1/workflows/{wf['id']}/cancel", headers=admin_headers)
        assert not await _schedule_exists(temporal_client, wf["id"])
