"""A dispatcher that dies mid-event: the event is claimed again, nothing is lost or repeated."""

from __future__ import annotations

import time

import httpx
import pytest
from automation_helpers import P1_RULE, eventually, executions
from sqlalchemy import update
from temporalio.client import Client

from protocol_lab.domain import Rule, match_conditions
from service.automation.context import AutomationContext
from service.automation.engine import fire
from service.state import Resources
from service.store.executions import claim_execution
from service.store.outbox import OutboxRow, add_event, get_event
from service.store.tickets import TicketRow, ticket_dict
from service.temporal.ids import new_workflow_id
from service.temporal.queues import temporal_queue

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


async def _ticket_claimed_by_a_dead_dispatcher(
    app_state: Resources,
) -> tuple[dict[str, object], int]:
    """A P1 incident whose event a dispatcher claimed (lease running) before dying."""
    now = time.time()
    async with app_state.sessionmaker() as session:
        row = TicketRow(
            title="Crash test",
            priority="P1",
            category="incident",
            status="open",
            created_at=now,
            updated_at=now,
            last_activity_at=now,
        )
        session.add(row)
        await session.flush()
        ticket = ticket_dict(row)
        event_id = await add_event(
            session,
            kind="on_ticket_created",
            ticket_id=ticket["id"],
            payload={"ticket": ticket, "previous": None, "changed": [], "actor": "test"},
        )
        await session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == event_id)
            .values(status="processing", lease_until=now + 3600, attempts=1)
        )
        await session.commit()
    return ticket, event_id


async def _expire_lease(app_state: Resources, event_id: int) -> None:
    async with app_state.sessionmaker() as session:
        await session.execute(
            update(OutboxRow).where(OutboxRow.id == event_id).values(lease_until=0.0)
        )
        await session.commit()


async def _done(app_state: Resources, event_id: int) -> bool:
    async with app_state.sessionmaker() as session:
        row = await get_event(session, event_id=event_id)
    return row is not None and row.status == "done"


async def test_crash_after_recording_the_firing_starts_the_workflow_once(
    api: httpx.AsyncClient,
    worker: None,
    app_state: Resources,
    temporal_client: Client,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    rule = (await api.post("/v1/automation/rules", headers=write_headers, json=P1_RULE)).json()
    ticket, event_id = await _ticket_claimed_by_a_dead_dispatcher(app_state)
    # The dead dispatcher had recorded the firing (with its workflow id), not yet started it.
    workflow_id = new_workflow_id()
    async with app_state.sessionmaker() as session:
        await claim_execution(
            session,
            rule_id=rule["id"],
            rule_name=rule["name"],
            event_key=f"event:{event_id}",
            trigger="on_ticket_created",
            action=rule["action"],
            conditions=[],
            event_id=event_id,
            ticket_id=str(ticket["id"]),
            workflow_id=workflow_id,
        )
    await _expire_lease(app_state, event_id)
    await eventually(lambda: _done(app_state, event_id))
    [execution] = await executions(api, rule["id"], write_headers)
    assert execution["outcome"] == "succeeded", execution
    assert execution["workflow_id"] == workflow_id
    described = await temporal_client.get_workflow_handle(workflow_id).describe()
    assert described.id == workflow_id
    assert described.task_queue == temporal_queue(app_state.settings, "itsm-high-priority")
    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)


async def test_crash_after_the_action_repeats_nothing(
    api: httpx.AsyncClient,
    worker: None,
    app_state: Resources,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    rule = (await api.post("/v1/automation/rules", headers=write_headers, json=P1_RULE)).json()
    ticket, event_id = await _ticket_claimed_by_a_dead_dispatcher(app_state)
    # The dead dispatcher had fired the rule completely, but not marked the event done.
    parsed = Rule.model_validate({k: rule[k] for k in ("name", "trigger", "conditions", "action")})
    execution, created = await fire(
        AutomationContext.of(app_state),
        rule_id=rule["id"],
        rule=parsed,
        event_key=f"event:{event_id}",
        result=match_conditions(parsed.conditions, ticket, now=time.time()),
        ticket=ticket,
        event_id=event_id,
    )
    assert created is True
    assert execution.outcome == "succeeded"
    await _expire_lease(app_state, event_id)
    await eventually(lambda: _done(app_state, event_id))
    [only] = await executions(api, rule["id"], write_headers)
    assert only["id"] == execution.id
    assert only["workflow_id"] == execution.workflow_id
    r = await api.get(
        "/v1/workflows",
        headers=write_headers,
        params={"task_queue": "itsm-high-priority", "limit": 100},
    )
    started = [w for w in r.json()["data"] if w["id"] == execution.workflow_id]
    assert len(started) == 1
    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)
