"""Rules end to end through the API, the real worker, Temporal and Redis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from automation_helpers import P1_RULE, eventually, executions, settled

from service.state import Resources
from service.store.outbox import get_event

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


async def _event_done(app_state: Resources, event_id: int) -> bool:
    async with app_state.sessionmaker() as session:
        row = await get_event(session, event_id=event_id)
    return row is not None and row.status == "done"


async def _latest_event_id(app_state: Resources) -> int:
    from sqlalchemy import func, select

    from service.store.outbox import OutboxRow

    async with app_state.sessionmaker() as session:
        return int((await session.execute(select(func.max(OutboxRow.id)))).scalar() or 0)


async def test_p1_incident_starts_incident_response_until_toggled_off(
    api: httpx.AsyncClient,
    worker: None,
    app_state: Resources,
    write_headers: dict[str, str],
    read_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    r = await api.post("/v1/automation/rules", headers=write_headers, json=P1_RULE)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["id"].startswith("rule_")
    assert len(rule["id"]) == 19
    assert rule["enabled"] is True
    assert rule["conditions"] == P1_RULE["conditions"]
    assert rule["action"]["workflow_name"] == "P1 Incident Response"

    r = await api.post(
        "/v1/tickets",
        headers=write_headers,
        json={"title": "Checkout down", "priority": "P1", "category": "incident"},
    )
    assert r.status_code == 201, r.text
    ticket = r.json()
    assert ticket["id"].startswith("TKT-")

    [execution] = await settled(api, rule["id"], read_headers, 1)
    assert execution["outcome"] == "succeeded", execution
    assert execution["ticket_id"] == ticket["id"]
    assert all(check["passed"] for check in execution["conditions"])
    workflow_id = execution["workflow_id"]
    assert workflow_id.startswith("wf_")

    r = await api.get(f"/v1/workflows/{workflow_id}", headers=read_headers)
    assert r.status_code == 200, r.text
    wf = r.json()
    assert wf["name"] == "P1 Incident Response"
    assert wf["task_queue"] == "itsm-high-priority"
    assert wf["trigger_type"] == "automatic"
    assert ticket["id"] in wf["timeline"][0]["detail"]

    async def listed() -> bool:
        r = await api.get(
            "/v1/workflows",
            headers=read_headers,
            params={"task_queue": "itsm-high-priority", "limit": 100},
        )
        return any(w["id"] == workflow_id for w in r.json()["data"])

    await eventually(listed)

    # Toggling the rule off stops the firing.
    r = await api.post(f"/v1/automation/rules/{rule['id']}/toggle", headers=write_headers)
    assert r.status_code == 200, r.text
    toggled = r.json()
    assert set(toggled) == {"id", "name", "enabled", "toggled_at"}
    assert toggled["enabled"] is False
    r = await api.post(
        "/v1/tickets",
        headers=write_headers,
        json={"title": "Payments down", "priority": "P1", "category": "incident"},
    )
    assert r.status_code == 201
    event_id = await _latest_event_id(app_state)
    await eventually(lambda: _event_done(app_state, event_id))
    assert len(await executions(api, rule["id"], read_headers)) == 1

    # And on again: it fires for the next ticket.
    r = await api.post(f"/v1/automation/rules/{rule['id']}/toggle", headers=write_headers)
    assert r.json()["enabled"] is True
    r = await api.post(
        "/v1/tickets",
        headers=write_headers,
        json={"title": "Login down", "priority": "P1", "category": "incident"},
    )
    done = await settled(api, rule["id"], read_headers, 2)
    assert done[0]["ticket_id"] == r.json()["id"]
    await api.delete(
        f"/v1/automation/rules/{rule['id']}", headers={"Authorization": "Bearer test-admin-token"}
    )


async def test_non_matching_ticket_fires_nothing(
    api: httpx.AsyncClient,
    worker: None,
    app_state: Resources,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    rule = (await api.post("/v1/automation/rules", headers=write_headers, json=P1_RULE)).json()
    r = await api.post(
        "/v1/tickets",
        headers=write_headers,
        json={"title": "Printer jam", "priority": "P4", "category": "incident"},
    )
    assert r.status_code == 201
    event_id = await _latest_event_id(app_state)
    await eventually(lambda: _event_done(app_state, event_id))
    assert await executions(api, rule["id"], write_headers) == []
    r = await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)
    assert r.status_code == 200


def _chain_rule(i: int) -> dict[str, Any]:
    return {
        "name": f"chain step {i}",
        "trigger": "on_ticket_updated",
        "conditions": {"category": {"changed_to": f"c{i}"}},
        "action": {"type": "update_field", "field": "category", "value": f"c{i + 1}"},
    }


async def test_update_field_chain_stops_at_depth_and_records_loop(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    rules = []
    for i in range(1, 8):
        r = await api.post("/v1/automation/rules", headers=write_headers, json=_chain_rule(i))
        assert r.status_code == 201, r.text
        rules.append(r.json())
    ticket = (await api.post("/v1/tickets", headers=write_headers, json={"title": "Chain"})).json()
    r = await api.patch(
        f"/v1/tickets/{ticket['id']}", headers=write_headers, json={"category": "c1"}
    )
    assert r.status_code == 200

    # Rules 1..5 apply (depths 0..4); rule 6 sees depth 5 and is stopped; rule 7 never matches.
    for rule in rules[:5]:
        [done] = await settled(api, rule["id"], write_headers, 1)
        assert done["outcome"] == "succeeded", done
    [stopped] = await settled(api, rules[5]["id"], write_headers, 1)
    assert stopped["outcome"] == "loop_stopped"
    assert stopped["depth"] == 5
    assert "loop" in stopped["detail"]
    r = await api.get(f"/v1/tickets/{ticket['id']}", headers=write_headers)
    assert r.json()["category"] == "c6"
    assert await executions(api, rules[6]["id"], write_headers) == []
    for rule in rules:
        await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)


async def test_resolved_ticket_emails_the_requester_through_the_email_queue(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    rule = (
        await api.post(
            "/v1/automation/rules",
            headers=write_headers,
            json={
                "name": "Tell the requester when resolved",
                "trigger": "on_ticket_updated",
                "conditions": {"status": {"changed_to": "resolved"}, "category": "email-test"},
                "action": {
                    "type": "send_notification",
                    "channel": "email",
                    "recipient": "requester",
                    "subject": "{ticket_id} is resolved",
                    "message": "Your ticket {title} has been resolved.",
                },
            },
        )
    ).json()
    ticket = (
        await api.post(
            "/v1/tickets",
            headers=write_headers,
            json={"title": "Mouse", "category": "email-test", "requester": "eve@example.com"},
        )
    ).json()
    await api.patch(
        f"/v1/tickets/{ticket['id']}", headers=write_headers, json={"status": "in_progress"}
    )
    await api.patch(
        f"/v1/tickets/{ticket['id']}", headers=write_headers, json={"status": "resolved"}
    )
    [fired] = await settled(api, rule["id"], write_headers, 1)
    assert fired["outcome"] == "succeeded"
    assert fired["conditions"][0] == {
        "field": "status",
        "op": "changed_to",
        "expected": "resolved",
        "actual": "resolved",
        "passed": True,
    }
    # The execution names its job; the job is inspectable (this test service has no SMTP host,
    # so the email fails for good and is kept).
    url = f"/v1/jobs/queues/email/jobs/{fired['job_id']}"

    async def failed() -> dict[str, Any] | None:
        job = (await api.get(url, headers=write_headers)).json()
        return job if job.get("state") == "failed" else None

    job = await eventually(failed)
    assert job["data"]["to"] == "eve@example.com"
    assert job["data"]["subject"] == f"{ticket['id']} is resolved"
    assert job["data"]["body"] == "Your ticket Mouse has been resolved."
    assert "SMTP_HOST" in job["failed_reason"]
    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)


async def test_an_action_that_cannot_succeed_is_recorded_as_failed(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    rule = (
        await api.post(
            "/v1/automation/rules",
            headers=write_headers,
            json={
                "name": "Acknowledge to the requester",
                "trigger": "on_ticket_created",
                "conditions": {"category": "no-requester"},
                "action": {
                    "type": "send_notification",
                    "recipient": "requester",
                    "message": "We got {ticket_id}",
                },
            },
        )
    ).json()
    ticket = (
        await api.post(
            "/v1/tickets", headers=write_headers, json={"title": "Anon", "category": "no-requester"}
        )
    ).json()
    [fired] = await settled(api, rule["id"], write_headers, 1)
    assert fired["outcome"] == "failed"
    assert fired["detail"] == f"ticket {ticket['id']} has no requester"
    assert fired["job_id"] is None
    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)
