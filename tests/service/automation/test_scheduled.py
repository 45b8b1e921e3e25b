"""Scheduled rules: one Temporal Schedule per rule; a run fires once per ticket per episode."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from automation_helpers import eventually, executions
from sqlalchemy import update
from temporalio.client import Client
from temporalio.service import RPCError

from service.automation.schedules import schedule_id
from service.state import Resources
from service.store.tickets import TicketRow, parse_ticket_id

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


async def _make_stale(app_state: Resources, ticket_id: str, *, hours: float = 25.0) -> None:
    async with app_state.sessionmaker() as session:
        await session.execute(
            update(TicketRow)
            .where(TicketRow.number == parse_ticket_id(ticket_id))
            .values(last_activity_at=time.time() - hours * 3600)
        )
        await session.commit()


async def _run_once(temporal_client: Client, rule_id: str) -> None:
    """Trigger the rule's schedule and wait for that run to finish."""
    handle = temporal_client.get_schedule_handle(schedule_id(rule_id))
    before = len((await handle.describe()).info.recent_actions)
    await handle.trigger()

    async def started() -> str | None:
        actions = (await handle.describe()).info.recent_actions
        if len(actions) > before:
            return actions[-1].action.workflow_id
        return None

    workflow_id = await eventually(started)
    await temporal_client.get_workflow_handle(workflow_id).result()


async def test_stale_tickets_escalate_once_per_episode(
    api: httpx.AsyncClient,
    worker: None,
    app_state: Resources,
    temporal_client: Client,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    tickets = []
    for title in ("stale A", "stale B", "fresh C"):
        r = await api.post(
            "/v1/tickets",
            headers=write_headers,
            json={"title": title, "category": "stale-test", "assignee": "agent"},
        )
        tickets.append(r.json()["id"])
    a, b, c = tickets
    await _make_stale(app_state, a)
    await _make_stale(app_state, b)
    r = await api.post(
        "/v1/automation/rules",
        headers=write_headers,
        json={
            "name": "Escalate stale tickets after 24h",
            "trigger": "scheduled",
            "conditions": {"status": "open", "idle_hours": 24, "category": "stale-test"},
            "action": {
                "type": "send_notification",
                "recipient": "assignee",
                "message": "{ticket_id} has been idle for a day",
            },
            "schedule_interval_s": 1800,
        },
    )
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["schedule_interval_s"] == 1800
    desc = await temporal_client.get_schedule_handle(schedule_id(rule["id"])).describe()
    assert desc.schedule.spec.intervals[0].every.total_seconds() == 1800
    assert desc.schedule.state.paused is False

    await _run_once(temporal_client, rule["id"])
    fired = await executions(api, rule["id"], write_headers)
    assert sorted(e["ticket_id"] for e in fired) == sorted([a, b])
    assert all(e["outcome"] == "succeeded" for e in fired)
    assert c not in {e["ticket_id"] for e in fired}

    # Still stale at the next run: no second escalation.
    await _run_once(temporal_client, rule["id"])
    assert len(await executions(api, rule["id"], write_headers)) == 2

    # Touched, the episode ends; stale again, a new episode fires once more.
    r = await api.patch(f"/v1/tickets/{a}", headers=write_headers, json={"assignee": "other"})
    assert r.status_code == 200
    await _run_once(temporal_client, rule["id"])
    assert len(await executions(api, rule["id"], write_headers)) == 2
    await _make_stale(app_state, a)
    await _run_once(temporal_client, rule["id"])
    fired = await executions(api, rule["id"], write_headers)
    assert [e["ticket_id"] for e in fired].count(a) == 2
    assert len(fired) == 3
    assert fired[0]["event"] == f"scheduled:{a}:2"

    # The schedule follows the rule: paused when disabled, gone when deleted.
    await api.post(f"/v1/automation/rules/{rule['id']}/toggle", headers=write_headers)
    desc = await temporal_client.get_schedule_handle(schedule_id(rule["id"])).describe()
    assert desc.schedule.state.paused is True
    r = await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)
    assert r.status_code == 200
    with pytest.raises(RPCError):
        await temporal_client.get_schedule_handle(schedule_id(rule["id"])).describe()


async def test_spec_example_starts_sla_escalation_as_scheduled(
    api: httpx.AsyncClient,
    worker: None,
    app_state: Resources,
    temporal_client: Client,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    ticket = (
        await api.post(
            "/v1/tickets", headers=write_headers, json={"title": "Stale", "category": "spec-ex"}
        )
    ).json()
    await _make_stale(app_state, ticket["id"], hours=30)
    r = await api.post(
        "/v1/automation/rules",
        headers=write_headers,
        json={
            "name": "Escalate stale tickets after 24h",
            "trigger": "scheduled",
            "conditions": {"status": "open", "idle_hours": 24, "category": "spec-ex"},
            "action": {
                "type": "start_workflow",
                "workflow_name": "SLA Escalation",
                "task_queue": "itsm-high-priority",
            },
        },
    )
    assert r.status_code == 201, r.text
    rule = r.json()
    # The page's answer exactly: what was sent, with id, state and times; the schedule is hourly.
    sent = json.loads(r.request.content)
    assert set(rule) == {*sent, "id", "enabled", "created_at", "updated_at"}
    assert {k: rule[k] for k in sent} == sent
    assert rule["enabled"] is True
    desc = await temporal_client.get_schedule_handle(schedule_id(rule["id"])).describe()
    assert desc.schedule.spec.intervals[0].every.total_seconds() == 3600
    await _run_once(temporal_client, rule["id"])
    [fired] = await executions(api, rule["id"], write_headers)
    assert fired["ticket_id"] == ticket["id"]
    assert fired["outcome"] == "succeeded", fired
    wf = (await api.get(f"/v1/workflows/{fired['workflow_id']}", headers=write_headers)).json()
    assert wf["name"] == "SLA Escalation"
    assert wf["trigger_type"] == "scheduled"
    assert wf["task_queue"] == "itsm-high-priority"
    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)
