"""Richer rules through the real service: ``all`` / ``any`` condition groups, several actions run
in order with an execution each, and ``{{ticket.<field>}}`` placeholders checked on save."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from automation_helpers import eventually, executions, settled
from sqlalchemy import func, select

from service.state import Resources
from service.store.outbox import OutboxRow, get_event

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

GROUPED = {
    "category": "grouped",
    "any": [
        {"priority": "P1"},
        {"all": [{"priority": "P2"}, {"title": {"contains": "outage"}}]},
    ],
}


async def _ticket(api: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> Any:
    r = await api.post("/v1/tickets", headers=headers, json=fields)
    assert r.status_code == 201, r.text
    return r.json()


async def _rule(api: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    r = await api.post("/v1/automation/rules", headers=headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def _notes(
    api: httpx.AsyncClient, ticket_id: str, rule_id: str, headers: dict[str, str]
) -> Any:
    """The ticket's notifications from the rule: rules of other tests of the session, still
    enabled, may notify on the same ticket."""

    async def found() -> list[dict[str, Any]] | None:
        r = await api.get(f"/v1/tickets/{ticket_id}/notifications", headers=headers)
        return [note for note in r.json()["data"] if note["rule_id"] == rule_id] or None

    return await eventually(found)


async def _events_done(app_state: Resources) -> None:
    """Wait until the newest outbox event (and so every older one) is processed."""
    async with app_state.sessionmaker() as session:
        last = int((await session.execute(select(func.max(OutboxRow.id)))).scalar() or 0)

    async def done() -> bool:
        async with app_state.sessionmaker() as session:
            row = await get_event(session, event_id=last)
        return row is not None and row.status == "done"

    await eventually(done)


@pytest.mark.parametrize(
    ("conditions", "fragment"),
    [
        ({"any": [{"priority": "P1"}, {"shoe_size": 9}]}, "conditions.any[1].shoe_size"),
        ({"any": []}, "conditions.any: needs at least one"),
        ({"all": ["P1"]}, "conditions.all[0]: needs a conditions object"),
        ({"any": [{}]}, "conditions.any[0]: empty conditions object"),
        (
            {"any": [{"all": [{"any": [{"all": [{"any": [{"priority": "P1"}]}]}]}]}]},
            "nest at most 4",
        ),
        ({"any": [{"priority": f"P{i}"} for i in range(101)]}, "more than 100"),
        ({"all": [{"status": {"changed_to": "open"}}]}, "only meaningful for on_ticket_updated"),
    ],
)
async def test_malformed_groups_are_refused_naming_where(
    api: httpx.AsyncClient,
    write_headers: dict[str, str],
    conditions: dict[str, Any],
    fragment: str,
) -> None:
    r = await api.post(
        "/v1/automation/rules",
        headers=write_headers,
        json={
            "name": "bad group",
            "trigger": "on_ticket_created",
            "conditions": conditions,
            "action": {"type": "send_notification", "recipient": "ops", "message": "x"},
        },
    )
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "invalid_request"
    assert fragment in r.json()["message"]


async def test_groups_fire_when_every_all_and_one_any_alternative_hold(
    api: httpx.AsyncClient,
    worker: None,
    app_state: Resources,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    rule = await _rule(
        api,
        write_headers,
        {
            "name": "Grouped alerts",
            "trigger": "on_ticket_created",
            "conditions": GROUPED,
            "action": {
                "type": "send_notification",
                "recipient": "ops",
                "message": "{{ticket.title}} is {{ ticket.priority }} ({{rule.name}})",
            },
        },
    )
    assert rule["conditions"] == GROUPED
    p1 = await _ticket(api, write_headers, title="Disk full", priority="P1", category="grouped")
    p2_outage = await _ticket(
        api, write_headers, title="Mail outage", priority="P2", category="grouped"
    )
    p2_other = await _ticket(api, write_headers, title="Slow", priority="P2", category="grouped")
    p3_outage = await _ticket(
        api, write_headers, title="VPN outage", priority="P3", category="grouped"
    )
    p1_elsewhere = await _ticket(api, write_headers, title="Down", priority="P1", category="other")

    await settled(api, rule["id"], read_headers, 2)
    await _events_done(app_state)
    fired = await executions(api, rule["id"], read_headers)
    assert {e["ticket_id"] for e in fired} == {p1["id"], p2_outage["id"]}
    assert all(e["outcome"] == "succeeded" for e in fired)
    assert not {p2_other["id"], p3_outage["id"], p1_elsewhere["id"]} & {
        e["ticket_id"] for e in fired
    }
    # The execution says where in the groups each check was made.
    on_p1 = next(e for e in fired if e["ticket_id"] == p1["id"])
    groups = {(c.get("group"), c["field"], c["passed"]) for c in on_p1["conditions"]}
    assert ("any[0]", "priority", True) in groups
    assert ("any[1].all[0]", "priority", False) in groups
    [note] = await _notes(api, p1["id"], rule["id"], read_headers)
    assert note["message"] == "Disk full is P1 (Grouped alerts)"

    # A dry run explains the same verdicts.
    r = await api.post(
        f"/v1/automation/rules/{rule['id']}/test",
        headers=read_headers,
        json={"ticket": {"category": "grouped", "priority": "P2", "title": "Slow"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["would_fire"] is False
    assert "any[1].all[1]: title contains 'outage' fails" in r.json()["reason"]
    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)


async def test_several_actions_run_in_order_each_with_its_execution(
    api: httpx.AsyncClient,
    worker: None,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    actions = [
        {
            "type": "update_field",
            "field": "description",
            "value": "Escalated: {{ticket.title}} ({{ticket.priority}})",
        },
        {"type": "send_notification", "recipient": "requester", "message": "{{ticket.id}} seen"},
        {
            "type": "start_workflow",
            "workflow_name": "Password Reset",
            "task_queue": "itsm-workflows",
        },
    ]
    rule = await _rule(
        api,
        write_headers,
        {
            "name": "Triage several ways",
            "trigger": "on_ticket_created",
            "conditions": {"category": "several"},
            "actions": actions,
        },
    )
    assert rule["actions"] == actions
    assert "action" not in rule
    ticket = await _ticket(
        api, write_headers, title="Locked out", priority="P2", category="several", requester="ann"
    )
    done = await settled(api, rule["id"], read_headers, 3)
    by_index = sorted(done, key=lambda e: e["action_index"])
    assert [e["action_index"] for e in by_index] == [0, 1, 2]
    assert [e["action"] for e in by_index] == actions
    assert all(e["outcome"] == "succeeded" for e in by_index), by_index
    assert {e["event"] for e in by_index} == {by_index[0]["event"]}
    assert by_index[1]["job_id"]
    workflow_id = by_index[2]["workflow_id"]

    shown = (await api.get(f"/v1/tickets/{ticket['id']}", headers=read_headers)).json()
    assert shown["description"] == "Escalated: Locked out (P2)"
    [note] = await _notes(api, ticket["id"], rule["id"], read_headers)
    assert note["message"] == f"{ticket['id']} seen"
    r = await api.get(f"/v1/workflows/{workflow_id}", headers=read_headers)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Password Reset"

    # A dry run describes each action, the template rendered.
    r = await api.post(
        f"/v1/automation/rules/{rule['id']}/test",
        headers=read_headers,
        json={
            "ticket": {"id": "TKT-9", "title": "Printer", "priority": "P3", "category": "several"}
        },
    )
    assert [a["type"] for a in r.json()["actions"]] == [a["type"] for a in actions]
    assert r.json()["actions"][0]["to"] == "Escalated: Printer (P3)"
    assert r.json()["action"] == r.json()["actions"][0]
    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)


async def test_a_failed_action_stops_the_actions_after_it(
    api: httpx.AsyncClient,
    worker: None,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    rule = await _rule(
        api,
        write_headers,
        {
            "name": "Tell the assignee, then demote",
            "trigger": "on_ticket_created",
            "conditions": {"category": "stops"},
            "actions": [
                {"type": "send_notification", "recipient": "assignee", "message": "yours"},
                {"type": "update_field", "field": "priority", "value": "P4"},
            ],
        },
    )
    ticket = await _ticket(api, write_headers, title="Nobody's", priority="P2", category="stops")
    done = sorted(await settled(api, rule["id"], read_headers, 2), key=lambda e: e["action_index"])
    assert [e["outcome"] for e in done] == ["failed", "failed"]
    assert "no assignee" in done[0]["detail"]
    assert done[1]["detail"].startswith("not run")
    shown = (await api.get(f"/v1/tickets/{ticket['id']}", headers=read_headers)).json()
    assert shown["priority"] == "P2"
    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)


async def test_a_templated_value_is_cut_to_what_the_field_takes(
    api: httpx.AsyncClient,
    worker: None,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    rule = await _rule(
        api,
        write_headers,
        {
            "name": "Title from the description",
            "trigger": "on_ticket_created",
            "conditions": {"category": "retitle"},
            "action": {"type": "update_field", "field": "title", "value": "{{ticket.description}}"},
        },
    )
    ticket = await _ticket(
        api, write_headers, title="Short", category="retitle", description="word " * 100
    )
    [done] = await settled(api, rule["id"], read_headers, 1)
    assert done["outcome"] == "succeeded", done
    title = (await api.get(f"/v1/tickets/{ticket['id']}", headers=read_headers)).json()["title"]
    assert len(title) == 200
    assert title == ("word " * 100)[:199] + "…"
    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            {
                "action": {"type": "send_notification", "recipient": "ops", "message": "a"},
                "actions": [{"type": "send_notification", "recipient": "ops", "message": "b"}],
            },
            "not both",
        ),
        ({"actions": []}, "actions"),
        (
            {"actions": [{"type": "send_notification", "recipient": "o", "message": "m"}] * 11},
            "actions",
        ),
        (
            {
                "actions": [
                    {"type": "send_notification", "recipient": "o", "message": "m"},
                    {"type": "start_workflow", "workflow_name": "Nope", "task_queue": "itsm-fleet"},
                ]
            },
            "no workflow named 'Nope'",
        ),
        (
            {"actions": [{"type": "update_field", "field": "title", "value": "{{ticket.nope}}"}]},
            "actions.0.value: unknown placeholder '{{ticket.nope}}'",
        ),
        (
            {
                "action": {
                    "type": "update_field",
                    "field": "priority",
                    "value": "{{ticket.priority}}",
                }
            },
            "value for priority must be one of",
        ),
        (
            {"action": {"type": "send_notification", "recipient": "o", "message": "{{ticket}}"}},
            "action.message: unknown placeholder '{{ticket}}'",
        ),
        (
            {"action": {"type": "update_field", "field": "title", "value": "x" * 201}},
            "value for title: at most 200 characters",
        ),
    ],
)
async def test_malformed_actions_and_templates_are_refused_naming_them(
    api: httpx.AsyncClient, write_headers: dict[str, str], body: dict[str, Any], fragment: str
) -> None:
    r = await api.post(
        "/v1/automation/rules",
        headers=write_headers,
        json={"name": "bad actions", "trigger": "on_ticket_created", **body},
    )
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "invalid_request"
    assert fragment in r.json()["message"]
