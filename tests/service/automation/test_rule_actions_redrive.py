"""Several actions of one rule, on the engine directly (SQLite and PostgreSQL, the session's
Temporal and Redis): performed in order, one execution each; a permanent failure records the
actions after it as not run, and a re-drive runs them again in order, under the same ids."""

from __future__ import annotations

import dataclasses

import pytest
from outbox_helpers import NOTIFY_RULE, WORKFLOW_RULE, add_rule, executions_of, new_tickets

from protocol_lab.domain import Catalog, JobQueue
from service.automation.context import AutomationContext, RuleCaches
from service.automation.engine import action_event_key, process_event
from service.store.executions import execution_dict
from service.store.outbox import redrive_events

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

START_THEN_NOTIFY = {
    "name": "Start the response, then tell the requester",
    "trigger": "on_ticket_created",
    "conditions": {"category": "incident"},
    "actions": [WORKFLOW_RULE["action"], NOTIFY_RULE["action"]],
}


async def test_a_failed_action_blocks_the_next_until_a_redrive_runs_both_in_order(
    ctx: AutomationContext,
) -> None:
    rule_id = await add_rule(ctx.sessionmaker, START_THEN_NOTIFY)
    [event_id] = await new_tickets(ctx.sessionmaker, 1, title="Router down")
    without = Catalog({k: v for k, v in ctx.catalog.items() if k != "P1 Incident Response"})
    lacking = dataclasses.replace(ctx, catalog=without, caches=RuleCaches())
    assert await process_event(lacking, event_id=event_id) is True

    rows = sorted(await executions_of(ctx.sessionmaker, [event_id]), key=lambda r: r.event_key)
    assert [r.event_key for r in rows] == [
        action_event_key(f"event:{event_id}", 0),
        action_event_key(f"event:{event_id}", 1),
    ]
    first, second = (execution_dict(r) for r in rows)
    assert (first["action_index"], first["outcome"]) == (0, "failed")
    assert "no workflow named 'P1 Incident Response'" in str(first["detail"])
    assert (second["action_index"], second["outcome"]) == (1, "failed")
    assert str(second["detail"]).startswith("not run")
    assert second["job_id"] is None
    assert first["event"] == second["event"] == f"event:{event_id}"
    assert all(r.rule_id == rule_id for r in rows)

    async with ctx.sessionmaker() as session:
        assert await redrive_events(session, event_ids=[event_id]) == [event_id]
    assert await process_event(ctx, event_id=event_id) is True
    again = sorted(await executions_of(ctx.sessionmaker, [event_id]), key=lambda r: r.event_key)
    assert [(r.id, r.outcome) for r in again] == [
        (rows[0].id, "succeeded"),
        (rows[1].id, "succeeded"),
    ]
    assert again[0].workflow_id == rows[0].workflow_id
    assert again[0].finished_at is not None
    assert again[1].finished_at is not None
    assert again[0].finished_at <= again[1].finished_at
    assert await ctx.jobs.queue(JobQueue.NOTIFICATION).getJob(str(again[1].job_id)) is not None
    handle = ctx.temporal.get_workflow_handle(str(again[0].workflow_id))
    assert (await handle.describe()).id == again[0].workflow_id
