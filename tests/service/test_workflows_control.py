"""Signals, cancellation with compensation, pause and resume, on the real dev server and worker."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from waiting import eventually

from service.state import Resources
from service.store.assets import assets_of_workflow

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

LAPTOP = {"name": "Laptop Provisioning - New Hire", "task_queue": "itsm-accessories"}
APPROVAL = {
    "signal_name": "approval_received",
    "payload": {"approved_by": "usr_3mKpLq", "decision": "approved"},
}


async def start(api: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> str:
    response = await api.post("/v1/workflows", headers=headers, json=body)
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["id"]
    return workflow_id


async def timeline(api: httpx.AsyncClient, headers: dict[str, str], wf: str) -> list[Any]:
    response = await api.get(f"/v1/workflows/{wf}", headers=headers)
    assert response.status_code == 200
    events: list[Any] = response.json()["timeline"]
    return events


async def held_assets(app_state: Resources, wf: str) -> list[dict[str, Any]]:
    async with app_state.sessionmaker() as session:
        return await assets_of_workflow(session, workflow_id=wf)


async def test_signal_accepted_moves_the_workflow_on(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
    wait_for: Any,
    app_state: Resources,
) -> None:
    wf = await start(api, write_headers, **LAPTOP, input={"ticket_id": "TKT-4829"})
    await wait_for(wf, "active", steps_completed=1)
    assert [a["status"] for a in await held_assets(app_state, wf)] == ["reserved"]

    response = await api.post(f"/v1/workflows/{wf}/signal", headers=write_headers, json=APPROVAL)
    assert response.status_code == 200, response.text
    # answered at once from the recorded state: the workflow takes the signal afterwards
    assert response.json() == {
        "id": wf,
        "signal_name": "approval_received",
        "accepted": True,
        "reason": None,
        "status": "active",
        "current_step": "Awaiting manager approval",
    }
    await wait_for(wf, "active", steps_completed=2)
    again = await api.post(f"/v1/workflows/{wf}/signal", headers=write_headers, json=APPROVAL)
    assert again.status_code == 200
    assert again.json()["accepted"] is False
    assert "no longer awaited" in again.json()["reason"]
    unknown = await api.post(
        f"/v1/workflows/{wf}/signal", headers=write_headers, json={"signal_name": "bribe"}
    )
    assert unknown.status_code == 200
    assert unknown.json()["accepted"] is False
    assert "approval_received" in unknown.json()["reason"]

    await wait_for(wf, "completed")
    events = await timeline(api, write_headers, wf)
    received = [e for e in events if e["event"] == "signal_received"]
    assert received == [
        {
            "event": "signal_received",
            "timestamp": received[0]["timestamp"],
            "detail": "Manager approval received",
            "step": "manager_approval",
            "attempt": None,
            "outcome": "completed",
            "actor": "usr_3mKpLq",
        }
    ]
    details = [e["detail"] for e in events if e["event"] == "activity_completed"]
    assert details == [
        "Asset availability checked",
        "Asset provisioned",
        "Asset shipped",
        "Ticket resolved",
    ]
    closed = await api.post(f"/v1/workflows/{wf}/signal", headers=write_headers, json=APPROVAL)
    assert closed.status_code == 409
    assert "completed" in closed.json()["message"]


async def test_a_signal_for_a_later_step_is_kept_until_then(
    api: httpx.AsyncClient, worker: None, write_headers: dict[str, str], wait_for: Any
) -> None:
    wf = await start(
        api,
        write_headers,
        name="Device Enrollment",
        task_queue="itsm-fleet",
        time_scale=100_000,
    )
    early = await api.post(
        f"/v1/workflows/{wf}/signal",
        headers=write_headers,
        json={"signal_name": "user_responded", "payload": {"confirmed": True}},
    )
    assert early.status_code == 200
    assert early.json()["accepted"] is True
    await wait_for(wf, "completed")
    events = [(e["event"], e["detail"]) for e in await timeline(api, write_headers, wf)]
    assert ("activity_started", "Awaiting user confirmation") in events
    assert ("signal_received", "User confirmed enrollment") in events
    assert not any("no response in time" in (d or "") for _, d in events)


async def test_a_rejection_fails_the_workflow_and_compensates(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
    wait_for: Any,
    app_state: Resources,
) -> None:
    wf = await start(api, write_headers, **LAPTOP)
    await wait_for(wf, "active", steps_completed=1)
    response = await api.post(
        f"/v1/workflows/{wf}/signal",
        headers=write_headers,
        json={
            "signal_name": "approval_received",
            "payload": {"approved_by": "usr_boss", "decision": "rejected"},
        },
    )
    assert response.status_code == 200
    assert response.json()["accepted"] is True
    await wait_for(wf, "failed")
    events = await timeline(api, write_headers, wf)
    assert [(e["event"], e["detail"]) for e in events[-3:]] == [
        ("compensation_started", "Reserved asset released"),
        ("compensation_completed", "Reserved asset released"),
        ("workflow_failed", "approval_received: rejected by usr_boss"),
    ]
    assert await held_assets(app_state, wf) == []


async def test_pause_then_cancel_compensates_in_reverse(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
    read_headers: dict[str, str],
    wait_for: Any,
    app_state: Resources,
) -> None:
    wf = await start(api, write_headers, **LAPTOP)
    await wait_for(wf, "active", steps_completed=1)
    await api.post(f"/v1/workflows/{wf}/signal", headers=write_headers, json=APPROVAL)
    await wait_for(wf, "active", steps_completed=2)
    paused = await api.post(f"/v1/workflows/{wf}/pause", headers=write_headers)
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    # the running step finishes, the next one waits for resume
    status = await wait_for(wf, "paused", steps_completed=3)
    assert status["current_step"] == "Shipping asset"

    cancelled = await api.post(
        f"/v1/workflows/{wf}/cancel", headers=write_headers, json={"reason": "New hire withdrew"}
    )
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert set(body) == {"id", "status", "cancelled_at", "timeline"}
    assert (body["id"], body["status"]) == (wf, "failed")
    assert body["timeline"][-1] == {
        "event": "workflow_cancelled",
        "timestamp": body["cancelled_at"],
        "detail": "New hire withdrew",
        "step": None,
        "attempt": None,
        "outcome": "cancelled",
        "actor": None,
    }
    compensations = [
        e["detail"] for e in body["timeline"] if e["event"].startswith("compensation_")
    ]
    assert compensations == [
        "Asset wiped and returned to stock",
        "Asset wiped and returned to stock",
        "Reserved asset released",
        "Reserved asset released",
    ]
    assert ("workflow_paused", "Paused by user") in [
        (e["event"], e["detail"]) for e in body["timeline"]
    ]
    assert await held_assets(app_state, wf) == []
    status = (await api.get(f"/v1/workflows/{wf}/status", headers=read_headers)).json()
    assert status["status"] == "failed"
    again = await api.post(f"/v1/workflows/{wf}/cancel", headers=write_headers)
    assert again.status_code == 409


async def test_pause_and_resume(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
    read_headers: dict[str, str],
    wait_for: Any,
) -> None:
    wf = await start(
        api, write_headers, name="SLA Escalation", task_queue="itsm-high-priority", time_scale=1
    )
    paused = await api.post(f"/v1/workflows/{wf}/pause", headers=write_headers)
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused"
    twice = await api.post(f"/v1/workflows/{wf}/pause", headers=write_headers)
    assert twice.status_code == 409
    assert twice.json()["type"] == "conflict"

    async def listed_paused() -> bool:
        listed = await api.get("/v1/workflows", headers=read_headers, params={"status": "paused"})
        return wf in {w["id"] for w in listed.json()["data"]}

    await eventually(listed_paused, within_s=10)

    resumed = await api.post(
        f"/v1/workflows/{wf}/resume", headers=write_headers, json={"reason": "Maintenance over"}
    )
    assert resumed.status_code == 200
    assert resumed.json()["status"] == "active"
    not_paused = await api.post(f"/v1/workflows/{wf}/resume", headers=write_headers)
    assert not_paused.status_code == 409
    await wait_for(wf, "active", steps_completed=2)
    picked = await api.post(
        f"/v1/workflows/{wf}/signal",
        headers=write_headers,
        json={"signal_name": "ticket_picked_up", "payload": {"agent": "usr_1"}},
    )
    assert picked.status_code == 200
    await wait_for(wf, "completed")
    events = [(e["event"], e["detail"]) for e in await timeline(api, read_headers, wf)]
    assert ("workflow_paused", "Paused by user") in events
    assert ("workflow_resumed", "Maintenance over") in events
    assert events.index(("workflow_paused", "Paused by user")) < events.index(
        ("workflow_resumed", "Maintenance over")
    )


async def test_cancel_during_a_running_step(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
    wait_for: Any,
    app_state: Resources,
) -> None:
    wf = await start(api, write_headers, **LAPTOP, time_scale=1)
    await wait_for(wf, "active", steps_completed=1)
    moved = await api.post(f"/v1/workflows/{wf}/signal", headers=write_headers, json=APPROVAL)
    assert moved.json()["accepted"] is True
    await wait_for(wf, "active", steps_completed=2)  # provisioning: ~30 minutes at time_scale 1
    cancelled = await api.post(f"/v1/workflows/{wf}/cancel", headers=write_headers)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "failed"
    assert [(e["event"], e["detail"]) for e in body["timeline"][-3:]] == [
        ("compensation_started", "Reserved asset released"),
        ("compensation_completed", "Reserved asset released"),
        ("workflow_cancelled", "Cancelled by user"),
    ]
    assert ("activity_completed", "Asset provisioned") not in [
        (e["event"], e["detail"]) for e in body["timeline"]
    ]
    assert await held_assets(app_state, wf) == []
