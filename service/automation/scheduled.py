"""One run of a scheduled rule: find the tickets that match now, fire once per condition episode.

An episode starts when a ticket comes to match the rule's conditions and ends at the first run
where it no longer does. The firing is keyed by (rule, ticket, episode), so a stale ticket is
escalated once while it stays stale, and again only after it was touched and went stale anew.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from protocol_lab.domain import TICKET_FIELDS, Trigger, match_conditions
from protocol_lab.domain.rule_index import compile_conditions
from service.automation.context import AutomationContext
from service.automation.engine import fire
from service.store.executions import close_episodes, open_episode
from service.store.rules import get_rule, rule_model
from service.store.tickets import TicketRow, ticket_dict

__all__ = ["run_scheduled_rule"]

_BATCH = 500


async def run_scheduled_rule(
    ctx: AutomationContext, *, rule_id: str, now: float | None = None, final: bool = True
) -> dict[str, Any]:
    """Evaluate a scheduled rule over the tickets; return counts of matched and fired tickets."""
    stamp = time.time() if now is None else now
    async with ctx.sessionmaker() as session:
        row = await get_rule(session, rule_id=rule_id)
    if row is None or not row.enabled or row.trigger != Trigger.SCHEDULED.value:
        return {"rule_id": rule_id, "skipped": True, "matched": 0, "fired": 0}
    rule = rule_model(row)
    # Plain equality conditions on stored columns narrow the scan in SQL.
    stmt = select(TicketRow)
    for name, spec in rule.conditions.items():
        if (
            name in TICKET_FIELDS
            and name != "id"
            and isinstance(spec, str)
            and hasattr(TicketRow, name)
        ):
            stmt = stmt.where(getattr(TicketRow, name) == spec)
    # compiled once per run: every ticket is checked, only the matching ones are explained
    holds = compile_conditions(rule.conditions)
    matching: list[tuple[dict[str, Any], Any]] = []
    last = 0
    while True:
        async with ctx.sessionmaker() as session:
            rows = list(
                (
                    await session.execute(
                        stmt.where(TicketRow.number > last).order_by(TicketRow.number).limit(_BATCH)
                    )
                ).scalars()
            )
        if not rows:
            break
        last = rows[-1].number
        for ticket_row in rows:
            ticket = ticket_dict(ticket_row)
            # Derived fields need the precise stamps, not the rounded API ones.
            record = {
                **ticket,
                "last_activity_at": ticket_row.last_activity_at,
                "created_at": ticket_row.created_at,
            }
            if holds(record, None, stamp):
                matching.append((ticket, match_conditions(rule.conditions, record, now=stamp)))
    fired = 0
    for ticket, result in matching:
        async with ctx.sessionmaker() as session:
            episode = await open_episode(session, rule_id=rule_id, ticket_id=ticket["id"])
        _, created = await fire(
            ctx,
            rule_id=rule_id,
            rule=rule,
            event_key=f"scheduled:{ticket['id']}:{episode}",
            result=result,
            ticket=ticket,
            final=final,
        )
        fired += int(created)
    async with ctx.sessionmaker() as session:
        await close_episodes(
            session, rule_id=rule_id, still_matching={t["id"] for t, _ in matching}
        )
    return {"rule_id": rule_id, "skipped": False, "matched": len(matching), "fired": fired}
