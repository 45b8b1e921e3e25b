"""The rule engine: evaluates events against enabled rules and performs the actions, exactly once.

An event (ticket created or updated, a signed webhook delivery) is read from the outbox under a
claim. For each enabled rule of its trigger whose conditions match, one execution row is recorded
(unique per event and rule) *before* the action runs, with the ids the action will use (workflow
id, job id). The action is then performed idempotently: Temporal refuses a second start of the
workflow id, BullMQ a second job with the job id, and an ``update_field`` commits the ticket
change, its new event and the execution's outcome in one transaction. A crash at any point
therefore repeats nothing and loses nothing: the event's lease expires, it is claimed again, and
only executions still ``pending`` are performed again.

``update_field`` chains are bounded: an update made by a rule carries the depth of its cause plus
one, and a rule that would update a ticket again at :data:`MAX_CHAIN_DEPTH` is recorded as a
``loop_stopped`` execution instead.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Final

from protocol_lab.domain import (
    DERIVED_FIELDS,
    JobQueue,
    MatchResult,
    Priority,
    Rule,
    SendNotificationAction,
    StartWorkflowAction,
    Trigger,
    UpdateFieldAction,
    match_conditions,
)
from protocol_lab.domain.templates import render_template
from service.automation.context import AutomationContext
from service.automation.starting import ActionError, start_rule_workflow
from service.jobs.sla import priority_target_s
from service.store.executions import ExecutionRow, claim_execution, finish_execution
from service.store.outbox import OutboxEvent, claim_event, finish_event, pending_event_ids
from service.store.outbox import release_event as _release
from service.store.rules import RuleRow, enabled_rules, get_rule, rule_model, rules_version
from service.store.tickets import apply_ticket_update, get_ticket
from service.temporal.ids import new_workflow_id

__all__ = [
    "MAX_CHAIN_DEPTH",
    "MAX_EVENT_ATTEMPTS",
    "ActionError",
    "describe_action",
    "dry_run",
    "fire",
    "process_event",
    "process_pending",
]

log = logging.getLogger("service.automation")

MAX_CHAIN_DEPTH: Final = 5
MAX_EVENT_ATTEMPTS: Final = 5


def _render(template: str, ticket: Mapping[str, Any] | None) -> str:
    values = dict(ticket or {})
    if ticket:
        values.setdefault("ticket_id", ticket.get("id"))
    return render_template(template, values)


def _checks(result: MatchResult) -> list[dict[str, Any]]:
    return [
        {
            "field": c.field,
            "op": c.op,
            "expected": c.expected,
            "actual": c.actual,
            "passed": c.passed,
        }
        for c in result.checks
    ]


def _recipient(action: SendNotificationAction, ticket: Mapping[str, Any] | None) -> str | None:
    if action.recipient in ("requester", "assignee"):
        value = (ticket or {}).get(action.recipient)
        return str(value) if value else None
    return action.recipient


def describe_action(
    rule: Rule, *, ticket: Mapping[str, Any] | None, depth: int = 0
) -> dict[str, Any]:
    """What the rule's action would do for this ticket, without doing it."""
    action = rule.action
    ticket_id = (ticket or {}).get("id")
    if isinstance(action, StartWorkflowAction):
        return {
            "type": action.type,
            "summary": f"start {action.workflow_name!r} on {action.task_queue.value}"
            + (f" for {ticket_id}" if ticket_id else ""),
            "workflow_name": action.workflow_name,
            "task_queue": action.task_queue.value,
            "trigger_type": rule.trigger_type.value,
            "input": {**action.input, **({"ticket_id": ticket_id} if ticket_id else {})},
        }
    if isinstance(action, SendNotificationAction):
        to = _recipient(action, ticket)
        return {
            "type": action.type,
            "summary": f"queue a {action.channel} job to {to or action.recipient!r}",
            "queue": action.channel,
            "recipient": to,
            "subject": _render(action.subject, ticket) if action.subject else None,
            "message": _render(action.message, ticket),
        }
    assert isinstance(action, UpdateFieldAction)
    current = (ticket or {}).get(action.field)
    if depth >= MAX_CHAIN_DEPTH:
        summary = f"stop: update chain reached depth {MAX_CHAIN_DEPTH} (loop)"
    elif current == action.value:
        summary = f"nothing: {action.field} is already {action.value!r}"
    else:
        summary = f"set {action.field} from {current!r} to {action.value!r}"
    return {
        "type": action.type,
        "summary": summary,
        "field": action.field,
        "from": current,
        "to": action.value,
    }


def _rule_of(ctx: AutomationContext, row: RuleRow) -> Rule:
    cached = ctx.rule_cache.get(row.id)
    if cached is not None and cached[0] == row.updated_at:
        return cached[1]
    rule = rule_model(row)
    ctx.rule_cache[row.id] = (row.updated_at, rule)
    return rule


async def _perform(
    ctx: AutomationContext,
    *,
    execution: ExecutionRow,
    rule_id: str,
    rule: Rule,
    ticket: Mapping[str, Any] | None,
    depth: int,
) -> None:
    """Perform the action of a pending execution and record its outcome."""
    action = rule.action
    ticket_id = (ticket or {}).get("id")
    if isinstance(action, StartWorkflowAction):
        if action.workflow_name not in ctx.catalog:
            raise ActionError(f"no workflow named {action.workflow_name!r} in the catalog")
        assert execution.workflow_id is not None
        payload = {**action.input, "rule_id": rule_id, "execution_id": execution.id}
        if ticket_id:
            payload["ticket_id"] = ticket_id
        await start_rule_workflow(
            ctx,
            workflow_id=execution.workflow_id,
            name=action.workflow_name,
            task_queue=action.task_queue.value,
            trigger_type=rule.trigger_type.value,
            input=payload,
        )
        async with ctx.sessionmaker() as session:
            await finish_execution(
                session,
                execution_id=execution.id,
                outcome="succeeded",
                detail=f"started {action.workflow_name!r} on {action.task_queue.value}",
            )
        return
    if isinstance(action, SendNotificationAction):
        to = _recipient(action, ticket)
        if to is None:
            raise ActionError(f"ticket {ticket_id} has no {action.recipient}")
        message = _render(action.message, ticket)
        subject = _render(action.subject, ticket) if action.subject else None
        data: dict[str, Any] = {
            "ticket_id": ticket_id,
            "rule_id": rule_id,
            "execution_id": execution.id,
            "recipient": to,
            "message": message,
            "subject": subject,
        }
        if action.channel == "email":
            data.update(
                to=to,
                subject=subject or f"[{ticket_id or 'Protocol'}] {rule.name}",
                body=message,
            )
        job_id = f"{action.channel}-{execution.id}"
        await ctx.jobs.enqueue(JobQueue(action.channel), "rule_notification", data, job_id=job_id)
        async with ctx.sessionmaker() as session:
            await finish_execution(
                session,
                execution_id=execution.id,
                outcome="succeeded",
                detail=f"queued {action.channel} job to {to}",
                job_id=job_id,
            )
        return
    assert isinstance(action, UpdateFieldAction)
    if not ticket_id:
        raise ActionError("update_field needs a ticket; the event names none")
    async with ctx.sessionmaker() as session:
        after, event_id = await apply_ticket_update(
            session,
            ticket_id=str(ticket_id),
            fields={action.field: action.value},
            actor=f"rule:{rule_id}",
            depth=depth + 1,
            cause=execution.id,
        )
        if after is None:
            await session.rollback()
            raise ActionError(f"ticket {ticket_id} no longer exists")
        detail = (
            f"set {action.field} to {action.value!r}"
            if event_id is not None
            else f"{action.field} was already {action.value!r}; nothing changed"
        )
        await finish_execution(
            session, execution_id=execution.id, outcome="succeeded", detail=detail, commit=False
        )
        await session.commit()


async def fire(
    ctx: AutomationContext,
    *,
    rule_id: str,
    rule: Rule,
    event_key: str,
    result: MatchResult,
    ticket: Mapping[str, Any] | None,
    depth: int = 0,
    event_id: int | None = None,
    final: bool = True,
) -> tuple[ExecutionRow, bool]:
    """Record one firing and perform its action (once, however often this is called).

    Returns the execution and whether this call recorded it. An existing execution that
    already ended is returned as it is. An action failing with
    :class:`ActionError` is recorded as failed; other errors are re-raised (the execution stays
    pending and the caller retries) unless ``final``, then recorded as failed.
    """
    ticket_id = (ticket or {}).get("id")
    stopped = isinstance(rule.action, UpdateFieldAction) and depth >= MAX_CHAIN_DEPTH
    async with ctx.sessionmaker() as session:
        execution, created = await claim_execution(
            session,
            rule_id=rule_id,
            rule_name=rule.name,
            event_key=event_key,
            trigger=rule.trigger.value,
            action=rule.action.model_dump(mode="json"),
            conditions=_checks(result),
            event_id=event_id,
            ticket_id=str(ticket_id) if ticket_id else None,
            depth=depth,
            workflow_id=new_workflow_id() if isinstance(rule.action, StartWorkflowAction) else None,
            outcome="loop_stopped" if stopped else "pending",
            detail=(
                f"update chain reached depth {MAX_CHAIN_DEPTH}: not applied (loop)"
                if stopped
                else None
            ),
        )
    if execution.outcome != "pending":
        return execution, created
    try:
        await _perform(
            ctx, execution=execution, rule_id=rule_id, rule=rule, ticket=ticket, depth=depth
        )
    except ActionError as exc:
        async with ctx.sessionmaker() as session:
            await finish_execution(
                session, execution_id=execution.id, outcome="failed", detail=str(exc)
            )
    except Exception as exc:
        if not final:
            raise
        log.exception("rule %s failed on %s", rule_id, event_key)
        async with ctx.sessionmaker() as session:
            await finish_execution(
                session,
                execution_id=execution.id,
                outcome="failed",
                detail=f"{type(exc).__name__}: {exc}",
            )
    async with ctx.sessionmaker() as session:
        row = await session.get(ExecutionRow, execution.id, populate_existing=True)
    return row or execution, created


async def _side_jobs(ctx: AutomationContext, event: OutboxEvent) -> None:
    """The background work every ticket event causes: audit, and on creation AI and SLA timer."""
    ticket = event.payload.get("ticket") or {}
    await ctx.jobs.enqueue(
        JobQueue.AUDIT,
        event.kind,
        {
            "kind": event.kind,
            "subject": event.ticket_id,
            "event_id": event.id,
            "changed": event.payload.get("changed"),
            "actor": event.payload.get("actor"),
        },
        job_id=f"audit-event-{event.id}",
    )
    if event.kind == Trigger.ON_TICKET_CREATED.value and event.ticket_id:
        await ctx.jobs.enqueue(
            JobQueue.AI_INFERENCE,
            "suggest",
            {"ticket_id": event.ticket_id},
            job_id=f"ai-{event.ticket_id}",
        )
        priority = str(ticket.get("priority", Priority.P3.value))
        target_s = priority_target_s(priority)
        if target_s is not None:
            # The timer fires when the target is due (scaled like the workflows' timers).
            delay_s = max(0.0, event.created_at + target_s / ctx.settings.time_scale - time.time())
            await ctx.jobs.enqueue(
                JobQueue.SLA_TIMER,
                "response_check",
                {"ticket_id": event.ticket_id, "priority": priority},
                job_id=f"sla-{event.ticket_id}",
                delay_ms=int(delay_s * 1000) + 1,
            )


def _surely_misses(rule: Rule, record: Mapping[str, Any]) -> bool:
    """A cheap pre-check: a plain equality condition on a field the record has, that differs.

    Exactly what :func:`match_conditions` would conclude for that condition, without building
    the explanation; most rules of a large set are ruled out here.
    """
    for name, spec in rule.conditions.items():
        if (
            name not in DERIVED_FIELDS
            and name in record
            and not isinstance(spec, Mapping)
            and record[name] != spec
        ):
            return True
    return False


async def _enabled(ctx: AutomationContext, trigger: Trigger) -> list[tuple[str, Rule]]:
    """The enabled rules of a trigger, re-read only when the stored set changed."""
    async with ctx.sessionmaker() as session:
        version = await rules_version(session, trigger=trigger)
        cache: dict[Trigger, tuple[tuple[int, float], list[tuple[str, Rule]]]]
        cache = ctx.extras.setdefault("enabled_rules", {})
        cached = cache.get(trigger)
        if cached is not None and cached[0] == version:
            return cached[1]
        rows = await enabled_rules(session, trigger=trigger)
    rules = [(row.id, _rule_of(ctx, row)) for row in rows]
    cache[trigger] = (version, rules)
    return rules


async def _evaluate(ctx: AutomationContext, event: OutboxEvent, *, final: bool) -> int:
    """Fire every matching enabled rule for a claimed event; return how many fired."""
    if event.kind == Trigger.WEBHOOK.value:
        async with ctx.sessionmaker() as session:
            row = await get_rule(session, rule_id=event.rule_id or "")
        rules = [(row.id, _rule_of(ctx, row))] if row is not None and row.enabled else []
    else:
        rules = await _enabled(ctx, Trigger(event.kind))
    if event.kind == Trigger.WEBHOOK.value:
        record: Mapping[str, Any] = event.payload.get("payload") or {}
        ticket: Mapping[str, Any] | None = None
        if event.ticket_id:
            async with ctx.sessionmaker() as session:
                ticket = await get_ticket(session, ticket_id=event.ticket_id)
        event_key = f"webhook:{event.payload.get('delivery', event.id)}"
        previous = None
    else:
        record = ticket = event.payload.get("ticket") or {}
        previous = event.payload.get("previous")
        event_key = f"event:{event.id}"
    fired = 0
    for rule_id, rule in rules:
        if _surely_misses(rule, record):
            continue
        result = match_conditions(rule.conditions, record, previous=previous, now=event.created_at)
        if not result.matched:
            continue
        fired += 1
        await fire(
            ctx,
            rule_id=rule_id,
            rule=rule,
            event_key=event_key,
            result=result,
            ticket=ticket,
            depth=event.depth,
            event_id=event.id,
            final=final,
        )
    return fired


async def process_event(ctx: AutomationContext, *, event_id: int) -> bool:
    """Claim one outbox event and process it; False when another dispatcher holds it or it is done.

    A transient failure (Temporal or Redis unreachable) leaves the event to be claimed again
    with backoff; after :data:`MAX_EVENT_ATTEMPTS` its pending executions are recorded as failed.
    """
    async with ctx.sessionmaker() as session:
        event = await claim_event(session, event_id=event_id)
    if event is None:
        return False
    final = event.attempts >= MAX_EVENT_ATTEMPTS
    try:
        await _evaluate(ctx, event, final=final)
        # After the rules: a retry caused by Redis re-evaluates harmlessly (executions are
        # unique), and the rules' work does not wait for the bookkeeping jobs.
        if event.kind != Trigger.WEBHOOK.value:
            await _side_jobs(ctx, event)
    except Exception as exc:
        if not final:
            retry_in = min(60.0, 0.5 * 2 ** (event.attempts - 1))
            log.warning("event %s failed (attempt %s): %s", event_id, event.attempts, exc)
            async with ctx.sessionmaker() as session:
                await _release(session, event_id=event_id, retry_in_s=retry_in)
            return False
        log.exception("event %s failed for good", event_id)
        async with ctx.sessionmaker() as session:
            await finish_event(session, event_id=event_id, error=f"{type(exc).__name__}: {exc}")
        return True
    async with ctx.sessionmaker() as session:
        await finish_event(session, event_id=event_id)
    return True


async def process_pending(ctx: AutomationContext, *, limit: int = 100) -> int:
    """Process the pending (or abandoned) events, oldest first; return how many were processed."""
    async with ctx.sessionmaker() as session:
        ids = await pending_event_ids(session, limit=limit)
    done = 0
    for event_id in ids:
        if await process_event(ctx, event_id=event_id):
            done += 1
    return done


async def dry_run(
    ctx: AutomationContext,
    *,
    row: RuleRow,
    ticket: Mapping[str, Any] | None,
    previous: Mapping[str, Any] | None = None,
    payload: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Would the rule fire on this ticket (or webhook payload), why or why not, what it would do.

    Nothing is recorded and nothing is done.
    """
    rule = _rule_of(ctx, row)
    record: Mapping[str, Any] = (
        payload if rule.trigger is Trigger.WEBHOOK and payload is not None else (ticket or {})
    )
    stamp = time.time() if now is None else now
    result = match_conditions(rule.conditions, record, previous=previous, now=stamp)
    reasons = []
    if not row.enabled:
        reasons.append("the rule is disabled")
    if not result.matched:
        reasons.append(result.explain())
    would_fire = row.enabled and result.matched
    return {
        "rule_id": row.id,
        "would_fire": would_fire,
        "matched": result.matched,
        "enabled": row.enabled,
        "reason": "; ".join(reasons) if reasons else result.explain(),
        "checks": json.loads(json.dumps(_checks(result), default=str)),
        "action": describe_action(rule, ticket=ticket),
        "ticket_id": (ticket or {}).get("id"),
    }
