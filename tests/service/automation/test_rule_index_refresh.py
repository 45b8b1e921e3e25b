"""The dispatcher's rule index follows the stored rules: an edit, a disable, a new rule and a
deletion are in force from the next batch; rules fire in their order; the dry run agrees."""

from __future__ import annotations

from typing import Any

import pytest
from outbox_helpers import NOTIFY_RULE, add_rule, event_rows, executions_of
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protocol_lab.domain import Rule
from service.automation.context import AutomationContext
from service.automation.engine import dry_run, process_pending
from service.store.rules import delete_rule, get_rule, save_rule
from service.store.tickets import create_ticket

pytestmark = [pytest.mark.redis]

Sessions = async_sessionmaker[AsyncSession]


async def _ticket(sessionmaker: Sessions, **fields: Any) -> tuple[dict[str, Any], int]:
    async with sessionmaker() as session:
        ticket, event_id = await create_ticket(
            session, fields={"title": "t", "requester": "ana", **fields}, actor="test"
        )
    return ticket, event_id


async def _fired(ctx: AutomationContext, **fields: Any) -> list[str]:
    """The rules that fired, in order, on a new ticket with ``fields``."""
    _, event_id = await _ticket(ctx.sessionmaker, **fields)
    while await process_pending(ctx):
        pass
    [row] = await event_rows(ctx.sessionmaker, [event_id])
    assert row.status == "done"
    executions = sorted(
        await executions_of(ctx.sessionmaker, [event_id]), key=lambda e: (e.created_at, e.id)
    )
    return [e.rule_id for e in executions]


async def _edit(ctx: AutomationContext, rule_id: str, **changes: Any) -> None:
    async with ctx.sessionmaker() as session:
        row = await get_rule(session, rule_id=rule_id)
        assert row is not None
        raw = {**NOTIFY_RULE, **changes}
        await save_rule(
            session, row=row, rule=Rule.model_validate(raw), toggled="enabled" in changes
        )


async def test_rule_changes_are_in_force_from_the_next_batch(ctx: AutomationContext) -> None:
    first = await add_rule(ctx.sessionmaker, NOTIFY_RULE)
    assert await _fired(ctx, category="incident") == [first]
    assert await _fired(ctx, category="request") == []

    await _edit(ctx, first, conditions={"category": {"in": ["request", "access"]}})
    assert await _fired(ctx, category="incident") == []
    assert await _fired(ctx, category="access") == [first]

    second = await add_rule(ctx.sessionmaker, {**NOTIFY_RULE, "conditions": {}})
    third = await add_rule(
        ctx.sessionmaker, {**NOTIFY_RULE, "conditions": {"priority": "P1", "category": "access"}}
    )
    assert await _fired(ctx, category="access", priority="P1") == [first, second, third]

    await _edit(ctx, first, enabled=False)
    assert await _fired(ctx, category="access", priority="P1") == [second, third]

    async with ctx.sessionmaker() as session:
        assert await delete_rule(session, rule_id=second)
    assert await _fired(ctx, category="access", priority="P1") == [third]

    # The dry run answers as the dispatcher does, and explains a miss.
    async with ctx.sessionmaker() as session:
        row = await get_rule(session, rule_id=third)
    assert row is not None
    ticket = {"category": "access", "priority": "P1", "requester": "ana"}
    hit = await dry_run(ctx, row=row, ticket=ticket)
    assert (hit["would_fire"], hit["matched"]) == (True, True)
    miss = await dry_run(ctx, row=row, ticket={**ticket, "priority": "P2"})
    assert (miss["would_fire"], miss["matched"]) == (False, False)
    assert "priority eq 'P1' fails" in miss["reason"]
