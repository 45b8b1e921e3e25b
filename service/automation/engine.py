"""The rule engine: evaluates events against enabled rules and performs the actions, exactly once.

An event (ticket created or updated, a signed webhook delivery) is read from the outbox under a
claim. For each enabled rule of its trigger whose conditions match, one execution row is recorded
(unique per event and rule) *before* the action runs, with the ids the action will use (workflow
id, job id). The action is then performed idempotently: Temporal refuses a second start of the
workflow id, BullMQ a second job with the job id, and an ``update_field`` commits the ticket
change, its new event and the execution's outcome in one transaction. A crash at any point
therefore repeats nothing and loses nothing: the event's lease expires, it is claimed again, and
only executions still ``pending`` are performed again.

The dispatcher (:func:`process_pending`) works in batches: it claims up to a hundred events in
one statement (dispatchers in several processes take different ones), matches each against a
:class:`~protocol_lab.domain.rule_index.RuleIndex` of the enabled rules (rebuilt when the stored
set's version changes, checked once per batch), fires the matching rules in order, sends the
batch's side jobs (audit, AI suggestion, SLA timer) to Redis in one pipeline per queue and
finishes the events that went through in one statement. The API's :func:`process_event` is the
same for a batch of one.

Failures of a dependency (Temporal, Redis, the store unreachable or slow: see
:mod:`service.automation.transient`) leave the event to be claimed again with capped exponential
backoff (:data:`RETRY_FIRST_S` doubling up to :data:`RETRY_CAP_S`) for as long as
``Settings.event_retry_hours`` from its creation (or its last re-drive); only then is it recorded
``failed``, with its unfinished executions. Permanent failures (an :class:`ActionError`, bad data)
end the execution as failed at once. A failed event is re-driven with
:func:`service.store.outbox.redrive_events` (``POST /v1/automation/events/redrive``,
``protocol-lab events redrive``): its failed executions are performed again, nothing that
succeeded is. While a dispatcher works on an event it renews the event's lease, so a slow event
(a dependency answering late) is not claimed by a second dispatcher.

A rule with several actions performs them in order, each with an execution of its own (keyed
by the event and the action's position, :func:`action_event_key`): a transient failure leaves
the rest for the retry, which finds what already succeeded; a permanent failure records the
actions after it as failed, not run, and a re-drive runs them again in order. Notification
texts and templated field values are rendered from the ticket as the event saw it.

``update_field`` chains are bounded: an update made by a rule carries the depth of its cause plus
one, and a rule that would update a ticket again at :data:`MAX_CHAIN_DEPTH` is recorded as a
``loop_stopped`` execution instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final, Literal

from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from protocol_lab.domain import (
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
from protocol_lab.domain.rule_index import RuleIndex, surely_misses
from protocol_lab.domain.templates import MAX_RENDERED_CHARS, render_template, template_values
from service.automation.context import AutomationContext
from service.automation.starting import ActionError, start_rule_workflow, workflow_defined
from service.automation.transient import is_temporal_outage, is_transient
from service.jobs.producer import DEFAULT_ATTEMPTS
from service.jobs.sla import priority_target_s
from service.observability.tracing import (
    continued_span,
    continued_span_async,
    job_telemetry,
    record_failure,
)
from service.store.executions import (
    ExecutionRow,
    claim_execution,
    fail_pending_executions,
    finish_execution,
)
from service.store.outbox import (
    LEASE_SECONDS,
    OutboxEvent,
    audit_job_id,
    claim_event,
    claim_events,
    fail_event,
    finish_events,
    release_event,
    renew_leases,
    sla_timer_job_id,
    suggestion_job_id,
    unclaim_events,
)
from service.store.rules import RuleRow, enabled_rules, get_rule, rule_model, rules_version
from service.store.tickets import apply_ticket_update, get_ticket
from service.temporal.ids import new_workflow_id

__all__ = [
    "MAX_CHAIN_DEPTH",
    "RETRY_CAP_S",
    "RETRY_FIRST_S",
    "ActionError",
    "action_event_key",
    "describe_action",
    "dry_run",
    "fire",
    "process_event",
    "process_pending",
    "retry_delay_s",
    "rule_index",
]

log = logging.getLogger("service.automation")

MAX_CHAIN_DEPTH: Final = 5
# An event that failed transiently is tried again after 0.5, 1, 2, 4 ... seconds, at most a
# minute apart, until Settings.event_retry_hours have passed.
RETRY_FIRST_S: Final = 0.5
RETRY_CAP_S: Final = 60.0


def retry_delay_s(attempts: int) -> float:
    """Seconds to wait before the next claim of an event that failed ``attempts`` times."""
    return min(RETRY_CAP_S, RETRY_FIRST_S * 2.0 ** min(max(attempts - 1, 0), 32))


AnyAction = StartWorkflowAction | SendNotificationAction | UpdateFieldAction


def action_event_key(event_key: str, position: int) -> str:
    """The key of the execution of a rule's action at ``position`` (0-based) for an event.

    The first action keeps the event's key, so a one-action rule's executions are keyed as
    they always were.
    """
    return event_key if position == 0 else f"{event_key}/action-{position}"


def _render(
    template: str,
    ticket: Mapping[str, Any] | None,
    *,
    rule_id: str | None,
    rule: Rule,
    limit: int = MAX_RENDERED_CHARS,
) -> str:
    values = template_values(ticket, rule_id=rule_id, rule_name=rule.name)
    return render_template(template, values, limit=limit)


def _checks(result: MatchResult) -> list[dict[str, Any]]:
    return [
        {
            "field": c.field,
            "op": c.op,
            "expected": c.expected,
            "actual": c.actual,
            "passed": c.passed,
            **({"group": c.group} if c.group else {}),
        }
        for c in result.checks
    ]


def _recipient(action: SendNotificationAction, ticket: Mapping[str, Any] | None) -> str | None:
    if action.recipient in ("requester", "assignee"):
        value = (ticket or {}).get(action.recipient)
        return str(value) if value else None
    return action.recipient


def describe_action(
    rule: Rule,
    *,
    ticket: Mapping[str, Any] | None,
    depth: int = 0,
    action: AnyAction | None = None,
    rule_id: str | None = None,
) -> dict[str, Any]:
    """What one action of the rule (the first by default) would do for this ticket, without
    doing it."""
    action = action if action is not None else rule.steps[0]
    ticket_id = (ticket or {}).get("id")
    if isinstance(action, StartWorkflowAction):
        return {
            "type": action.type,
            "summary": f"start {action.workflow_name!r} on {action.task_queue.value}"
            + (f" for {ticket_id}" if ticket_id else ""),
            "workflow_name": action.workflow_name,
            "task_queue": action.task_queue.value,
            "trigger_type": rule.trigger_type_of(action).value,
            "input": {**action.input, **({"ticket_id": ticket_id} if ticket_id else {})},
        }
    if isinstance(action, SendNotificationAction):
        to = _recipient(action, ticket)
        return {
            "type": action.type,
            "summary": f"queue a {action.channel} job to {to or action.recipient!r}",
            "queue": action.channel,
            "recipient": to,
            "subject": (
                _render(action.subject, ticket, rule_id=rule_id, rule=rule)
                if action.subject
                else None
            ),
            "message": _render(action.message, ticket, rule_id=rule_id, rule=rule),
        }
    current = (ticket or {}).get(action.field)
    value = _field_value(action, ticket, rule_id=rule_id, rule=rule)
    if depth >= MAX_CHAIN_DEPTH:
        summary = f"stop: update chain reached depth {MAX_CHAIN_DEPTH} (loop)"
    elif current == value:
        summary = f"nothing: {action.field} is already {value!r}"
    else:
        summary = f"set {action.field} from {current!r} to {value!r}"
    return {
        "type": action.type,
        "summary": summary,
        "field": action.field,
        "from": current,
        "to": value,
    }


def _field_value(
    action: UpdateFieldAction, ticket: Mapping[str, Any] | None, *, rule_id: str | None, rule: Rule
) -> str | None:
    """The value an update_field action writes: its template rendered for the ticket."""
    if action.value is None or not action.templated:
        return action.constant
    limit = action.max_chars or MAX_RENDERED_CHARS
    return _render(action.value, ticket, rule_id=rule_id, rule=rule, limit=limit)


def _rule_of(ctx: AutomationContext, row: RuleRow) -> Rule:
    cached = ctx.caches.parsed.get(row.id)
    if cached is not None and cached[0] == row.updated_at:
        return cached[1]
    rule = rule_model(row)
    ctx.caches.parsed[row.id] = (row.updated_at, rule)
    return rule


async def _perform(
    ctx: AutomationContext,
    *,
    execution: ExecutionRow,
    rule_id: str,
    rule: Rule,
    action: AnyAction,
    ticket: Mapping[str, Any] | None,
    depth: int,
) -> None:
    """Perform one action of a pending execution and record its outcome."""
    if isinstance(action, StartWorkflowAction):
        await _start_workflow(
            ctx, execution=execution, rule_id=rule_id, rule=rule, action=action, ticket=ticket
        )
    elif isinstance(action, SendNotificationAction):
        await _send_notification(
            ctx, execution=execution, rule_id=rule_id, rule=rule, action=action, ticket=ticket
        )
    else:
        await _update_field(
            ctx,
            execution=execution,
            rule_id=rule_id,
            rule=rule,
            action=action,
            ticket=ticket,
            depth=depth,
        )


async def _start_workflow(
    ctx: AutomationContext,
    *,
    execution: ExecutionRow,
    rule_id: str,
    rule: Rule,
    action: StartWorkflowAction,
    ticket: Mapping[str, Any] | None,
) -> None:
    """Start the rule's workflow under the execution's workflow id; record it started."""
    ticket_id = (ticket or {}).get("id")
    if not await workflow_defined(ctx, action.workflow_name):
        raise ActionError(f"no workflow named {action.workflow_name!r} is defined")
    assert execution.workflow_id is not None
    payload = {**action.input, "rule_id": rule_id, "execution_id": execution.id}
    if ticket_id:
        payload["ticket_id"] = ticket_id
    await start_rule_workflow(
        ctx,
        workflow_id=execution.workflow_id,
        name=action.workflow_name,
        task_queue=action.task_queue.value,
        trigger_type=rule.trigger_type_of(action).value,
        input=payload,
    )
    async with ctx.sessionmaker() as session:
        await finish_execution(
            session,
            execution_id=execution.id,
            outcome="succeeded",
            detail=f"started {action.workflow_name!r} on {action.task_queue.value}",
        )


async def _send_notification(
    ctx: AutomationContext,
    *,
    execution: ExecutionRow,
    rule_id: str,
    rule: Rule,
    action: SendNotificationAction,
    ticket: Mapping[str, Any] | None,
) -> None:
    """Queue the notification job (its id derived from the execution's); record it queued."""
    ticket_id = (ticket or {}).get("id")
    to = _recipient(action, ticket)
    if to is None:
        raise ActionError(f"ticket {ticket_id} has no {action.recipient}")
    message = _render(action.message, ticket, rule_id=rule_id, rule=rule)
    subject = (
        _render(action.subject, ticket, rule_id=rule_id, rule=rule) if action.subject else None
    )
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


async def _update_field(
    ctx: AutomationContext,
    *,
    execution: ExecutionRow,
    rule_id: str,
    rule: Rule,
    action: UpdateFieldAction,
    ticket: Mapping[str, Any] | None,
    depth: int,
) -> None:
    """Set the ticket's field and record the outcome in the same transaction."""
    ticket_id = (ticket or {}).get("id")
    if not ticket_id:
        raise ActionError("update_field needs a ticket; the event names none")
    value = _field_value(action, ticket, rule_id=rule_id, rule=rule)
    async with ctx.sessionmaker() as session:
        after, event_id = await apply_ticket_update(
            session,
            ticket_id=str(ticket_id),
            fields={action.field: value},
            actor=f"rule:{rule_id}",
            depth=depth + 1,
            cause=execution.id,
        )
        if after is None:
            await session.rollback()
            raise ActionError(f"ticket {ticket_id} no longer exists")
        detail = (
            f"set {action.field} to {value!r}"
            if event_id is not None
            else f"{action.field} was already {value!r}; nothing changed"
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
    """Record one firing and perform the rule's actions in order (once, however often this is
    called).

    Returns the first action's execution and whether this call recorded it. An execution that
    already ended is left as it is. An action failing with :class:`ActionError` or any other
    permanent error is recorded as failed, and the actions after it as failed without running;
    a transient error (a dependency unavailable,
    :func:`~service.automation.transient.is_transient`) is re-raised, the execution staying
    pending for the caller to retry, unless ``final``: then it is recorded as failed too.
    """
    first: tuple[ExecutionRow, bool] | None = None
    blocked: str | None = None
    with continued_span("rule execution", attributes=_rule_span(rule_id, rule, event_key)):
        for position, action in enumerate(rule.steps):
            execution, created = await _fire_action(
                ctx,
                rule_id=rule_id,
                rule=rule,
                action=action,
                event_key=action_event_key(event_key, position),
                result=result,
                ticket=ticket,
                depth=depth,
                event_id=event_id,
                final=final,
                blocked=blocked,
            )
            if first is None:
                first = (execution, created)
            if execution.outcome == "failed" and blocked is None:
                blocked = f"not run: the rule's action at index {position} failed"
    assert first is not None
    return first


def _rule_span(rule_id: str, rule: Rule, event_key: str) -> dict[str, AttributeValue]:
    """The attributes of a rule execution's span."""
    return {
        "rule.id": rule_id,
        "rule.name": rule.name,
        "rule.trigger": rule.trigger.value,
        "rule.actions": len(rule.steps),
        "rule.event_key": event_key,
    }


async def _fire_action(
    ctx: AutomationContext,
    *,
    rule_id: str,
    rule: Rule,
    action: AnyAction,
    event_key: str,
    result: MatchResult,
    ticket: Mapping[str, Any] | None,
    depth: int,
    event_id: int | None,
    final: bool,
    blocked: str | None,
) -> tuple[ExecutionRow, bool]:
    """Record and perform one action of a firing; ``blocked`` says why it may not run."""
    ticket_id = (ticket or {}).get("id")
    stopped = isinstance(action, UpdateFieldAction) and depth >= MAX_CHAIN_DEPTH
    async with ctx.sessionmaker() as session:
        execution, created = await claim_execution(
            session,
            rule_id=rule_id,
            rule_name=rule.name,
            event_key=event_key,
            trigger=rule.trigger.value,
            action=action.as_sent(),
            conditions=_checks(result),
            event_id=event_id,
            ticket_id=str(ticket_id) if ticket_id else None,
            depth=depth,
            workflow_id=new_workflow_id() if isinstance(action, StartWorkflowAction) else None,
            outcome="loop_stopped" if stopped else "failed" if blocked else "pending",
            detail=(
                f"update chain reached depth {MAX_CHAIN_DEPTH}: not applied (loop)"
                if stopped
                else blocked
            ),
        )
    if execution.outcome != "pending":
        return execution, created
    if blocked is not None:
        async with ctx.sessionmaker() as session:
            await finish_execution(
                session, execution_id=execution.id, outcome="failed", detail=blocked
            )
        return await _reread(ctx, execution), created
    try:
        await _perform(
            ctx,
            execution=execution,
            rule_id=rule_id,
            rule=rule,
            action=action,
            ticket=ticket,
            depth=depth,
        )
    except ActionError as exc:
        async with ctx.sessionmaker() as session:
            await finish_execution(
                session, execution_id=execution.id, outcome="failed", detail=str(exc)
            )
    except Exception as exc:
        if not final and is_transient(exc):
            raise
        log.exception("rule %s failed on %s", rule_id, event_key)
        async with ctx.sessionmaker() as session:
            await finish_execution(
                session,
                execution_id=execution.id,
                outcome="failed",
                detail=f"{type(exc).__name__}: {exc}",
            )
    return await _reread(ctx, execution), created


async def _reread(ctx: AutomationContext, execution: ExecutionRow) -> ExecutionRow:
    async with ctx.sessionmaker() as session:
        row = await session.get(ExecutionRow, execution.id, populate_existing=True)
    return row or execution


SideJob = tuple[JobQueue, dict[str, Any]]  # a queue and a job as Queue.addBulk takes it


def _job(name: str, data: dict[str, Any], *, job_id: str, delay_ms: int = 0) -> dict[str, Any]:
    """A job for ``Queue.addBulk`` with the options :meth:`JobProducer.enqueue` gives a job, in
    the current trace."""
    opts: dict[str, Any] = {
        "attempts": DEFAULT_ATTEMPTS,
        "backoff": {"type": "exponential", "delay": 1000},
        "removeOnComplete": {"count": 10_000},
        "removeOnFail": False,
        "jobId": job_id,
    }
    if delay_ms:
        opts["delay"] = delay_ms
    telemetry = job_telemetry()
    if telemetry is not None:  # the job's runner continues the event's trace
        opts["telemetry"] = telemetry
    return {"name": name, "data": data, "opts": opts}


def _side_jobs(ctx: AutomationContext, event: OutboxEvent) -> list[SideJob]:
    """The background work every ticket event causes: audit, and on creation AI and SLA timer
    (none for a webhook delivery)."""
    if event.kind == Trigger.WEBHOOK.value:
        return []
    ticket = event.payload.get("ticket") or {}
    audit = {
        "kind": event.kind,
        "subject": event.ticket_id,
        "event_id": event.id,
        "changed": event.payload.get("changed"),
        "actor": event.payload.get("actor"),
    }
    jobs = [
        (JobQueue.AUDIT, _job(event.kind, audit, job_id=audit_job_id(event.id, event.created_at)))
    ]
    if event.kind == Trigger.ON_TICKET_CREATED.value and event.ticket_id:
        suggest = {"ticket_id": event.ticket_id}
        jobs.append(
            (
                JobQueue.AI_INFERENCE,
                _job(
                    "suggest",
                    suggest,
                    job_id=suggestion_job_id(event.ticket_id, event.created_at),
                ),
            )
        )
        priority = str(ticket.get("priority", Priority.P3.value))
        target_s = priority_target_s(priority)
        if target_s is not None:
            # The timer fires when the target is due (scaled like the workflows' timers).
            delay_s = max(0.0, event.created_at + target_s / ctx.settings.time_scale - time.time())
            check = {"ticket_id": event.ticket_id, "priority": priority}
            jobs.append(
                (
                    JobQueue.SLA_TIMER,
                    _job(
                        "response_check",
                        check,
                        job_id=sla_timer_job_id(event.ticket_id, event.created_at),
                        delay_ms=int(delay_s * 1000) + 1,
                    ),
                )
            )
    return jobs


async def _send_side_jobs(ctx: AutomationContext, jobs: Sequence[SideJob]) -> None:
    """Add the side jobs of a batch of events: one pipelined ``addBulk`` per queue.

    Job ids make this idempotent: a batch sent again after a failure adds nothing twice.
    """
    by_queue: dict[JobQueue, list[dict[str, Any]]] = {}
    for queue, job in jobs:
        by_queue.setdefault(queue, []).append(job)
    for queue, batch in by_queue.items():
        await ctx.jobs.queue(queue).addBulk(batch)  # type: ignore[arg-type]


# The engine's pre-check is the index's (it is also run on the index's candidates).
_surely_misses = surely_misses


async def rule_index(ctx: AutomationContext) -> RuleIndex[str]:
    """The enabled rules of every trigger, indexed; rebuilt only when the stored set changed.

    The version of the stored set is read on every call (once per batch of events), so a rule
    written by any process is in force from the next batch of every dispatcher.
    """
    async with ctx.sessionmaker() as session:
        version = await rules_version(session)
        cached = ctx.caches.index
        if cached is not None and cached[0] == version:
            return cached[1]
        rows = await enabled_rules(session)
    earlier = cached[1] if cached is not None else None  # its rules' checks are reused
    index = RuleIndex(((row.id, _rule_of(ctx, row)) for row in rows), reuse=earlier)
    ctx.caches.index = (version, index)
    return index


async def _evaluate(ctx: AutomationContext, event: OutboxEvent, index: RuleIndex[str]) -> int:
    """Fire every matching enabled rule for a claimed event, in rule order; return how many
    fired. Ticket events are matched through ``index``; a webhook delivery against its rule.

    A transient failure propagates (the event is retried; what fired is not repeated).
    """
    if event.kind == Trigger.WEBHOOK.value:
        record: Mapping[str, Any] = event.payload.get("payload") or {}
        ticket: Mapping[str, Any] | None = None
        async with ctx.sessionmaker() as session:
            row = await get_rule(session, rule_id=event.rule_id or "")
            if event.ticket_id:
                ticket = await get_ticket(session, ticket_id=event.ticket_id)
        rules = [(row.id, _rule_of(ctx, row))] if row is not None and row.enabled else []
        event_key = f"webhook:{event.payload.get('delivery', event.id)}"
        now = event.created_at
        matched = RuleIndex(rules).matches(Trigger.WEBHOOK, record, now=now)
    else:
        trigger = Trigger(event.kind)
        record = ticket = event.payload.get("ticket") or {}
        previous = event.payload.get("previous")
        event_key = f"event:{event.id}"
        matched = index.matches(trigger, record, previous=previous, now=event.created_at)
    for rule_id, rule, result in matched:
        await fire(
            ctx,
            rule_id=rule_id,
            rule=rule,
            event_key=event_key,
            result=result,
            ticket=ticket,
            depth=event.depth,
            event_id=event.id,
            final=False,
        )
    return len(matched)


EventOutcome = Literal["done", "failed", "retry", "busy"]


@contextlib.asynccontextmanager
async def _leases_renewed(
    ctx: AutomationContext, events: Sequence[OutboxEvent], *, lease_s: float
) -> AsyncIterator[None]:
    """Renew the claims' leases every third of a lease while the body runs (a background task,
    one statement for the whole batch)."""
    done = asyncio.Event()
    claims = [(event.id, event.attempts) for event in events]

    async def renew() -> None:
        nonlocal claims
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout=lease_s / 3)
                return
            try:
                async with ctx.sessionmaker() as session:
                    held = await renew_leases(session, claims=claims, lease_s=lease_s)
            except Exception as exc:  # the next renewal may get through; the lease has time
                log.warning("events %s: leases not renewed: %s", [c[0] for c in claims], exc)
                continue
            lost = [event_id for event_id, _ in claims if event_id not in held]
            if lost:
                log.warning("events %s: the claims were lost; another dispatcher has them", lost)
                claims = [claim for claim in claims if claim[0] in held]
            if not claims:
                return

    renewer = asyncio.create_task(renew(), name=f"outbox-lease-{claims[0][0]}")
    try:
        yield
    finally:
        done.set()  # the renewer ends after the statement it may be running, never inside it
        await renewer


async def _settle(
    ctx: AutomationContext, event: OutboxEvent, *, failure: BaseException, final: bool
) -> EventOutcome:
    """Record how a failed attempt at a claimed event ended: failed, or released for a retry."""
    attempt = event.attempts
    reason = f"{type(failure).__name__}: {failure}"
    if is_transient(failure):
        if not final:
            retry_in = retry_delay_s(attempt)
            log.warning(
                "event %s: attempt %s failed (%s); again in %.1f s",
                event.id,
                attempt,
                reason,
                retry_in,
            )
            async with ctx.sessionmaker() as session:
                await release_event(
                    session,
                    event_id=event.id,
                    retry_in_s=retry_in,
                    attempt=attempt,
                    error=f"attempt {attempt}: {reason}",
                )
            return "retry"
        hours = ctx.settings.event_retry_hours
        reason = f"gave up after {hours:g} h and {attempt} attempts: {reason}"
    log.error("event %s failed: %s", event.id, reason, exc_info=failure)
    async with ctx.sessionmaker() as session:
        await fail_pending_executions(
            session, event_id=event.id, since=event.created_at, detail=reason
        )
        await fail_event(session, event_id=event.id, error=reason, attempt=attempt)
    return "failed"


def _gives_up(ctx: AutomationContext, event: OutboxEvent) -> bool:
    """Whether a failure of the event now is final: its retry horizon has passed."""
    return time.time() >= event.retrying_since + ctx.settings.event_retry_hours * 3600


async def _finish_done(ctx: AutomationContext, events: Sequence[OutboxEvent]) -> None:
    """Mark events whose rules and side jobs went through done (one statement for all)."""
    async with ctx.sessionmaker() as session:
        for event in events:
            if event.attempts > 1 or event.requeued_at is not None:
                # A rule that fired on an earlier attempt may be disabled or changed since.
                await fail_pending_executions(
                    session,
                    event_id=event.id,
                    since=event.created_at,
                    detail="not performed: the rule no longer matched, or was disabled, "
                    "when the event was processed again",
                )
        await finish_events(session, claims=[(event.id, event.attempts) for event in events])


async def _process_batch(
    ctx: AutomationContext, events: Sequence[OutboxEvent], *, lease_s: float
) -> dict[int, EventOutcome]:
    """Process claimed events in order; return how each ended, by event id.

    The rules of each event fire as it is evaluated (the index is checked for changed rules
    once per batch); then the side jobs of the whole batch go to Redis in one pipeline per
    queue, and the events that went through are finished in one statement. The batch stops at
    the first event that has to be retried (a dependency is down, and the events after it
    would only wait for the same timeout): those after it are given back unclaimed. When it
    waits for Temporal, that event's side jobs are sent all the same: they do not need it.
    """
    outcomes: dict[int, EventOutcome] = {}
    failures: list[tuple[OutboxEvent, Exception]] = []
    evaluated: list[OutboxEvent] = []
    side_jobs: list[SideJob] = []
    untouched: Sequence[OutboxEvent] = ()
    index: RuleIndex[str] | None = None
    async with _leases_renewed(ctx, events, lease_s=lease_s):
        for position, event in enumerate(events):
            # the trace the event was written in (the API request, the rule that updated a
            # ticket)
            async with continued_span_async(
                f"outbox {event.kind}",
                event.traceparent,
                kind=SpanKind.CONSUMER,
                attributes={"outbox.event.id": event.id, "outbox.event.attempt": event.attempts},
            ) as span:
                own_jobs: list[SideJob] = []
                try:
                    own_jobs = _side_jobs(ctx, event)
                    if index is None:
                        index = await rule_index(ctx)
                    await _evaluate(ctx, event, index)
                except Exception as exc:
                    record_failure(span, exc)
                    failures.append((event, exc))
                    if is_transient(exc):
                        if is_temporal_outage(exc):
                            # The rules wait for Temporal; the ticket's audit entry, suggestion
                            # and SLA timer need only Redis and the store, which answered, and
                            # go out now. The retry sends them again, harmless by job id. (Not
                            # while the store is down: they would run out of tries on it.)
                            side_jobs.extend(own_jobs)
                        if not _gives_up(ctx, event):
                            untouched = events[position + 1 :]
                            break
                    continue
                # After the rules: a retry caused by Redis re-evaluates harmlessly (executions
                # are unique), and the rules' work does not wait for the bookkeeping jobs.
                side_jobs.extend(own_jobs)
            evaluated.append(event)
        if side_jobs:
            try:
                await _send_side_jobs(ctx, side_jobs)
            except Exception as exc:
                failures.extend((event, exc) for event in evaluated)
                evaluated = []
    if evaluated:
        await _finish_done(ctx, evaluated)
        outcomes.update((event.id, "done") for event in evaluated)
    for event, failure in failures:
        outcomes[event.id] = await _settle(ctx, event, failure=failure, final=_gives_up(ctx, event))
    if untouched:
        async with ctx.sessionmaker() as session:
            await unclaim_events(session, claims=[(e.id, e.attempts) for e in untouched])
    return outcomes


async def _process(
    ctx: AutomationContext, *, event_id: int, lease_s: float = LEASE_SECONDS
) -> EventOutcome:
    async with ctx.sessionmaker() as session:
        event = await claim_event(session, event_id=event_id, lease_s=lease_s)
    if event is None:
        return "busy"
    return (await _process_batch(ctx, [event], lease_s=lease_s))[event.id]


async def process_event(
    ctx: AutomationContext, *, event_id: int, lease_s: float = LEASE_SECONDS
) -> bool:
    """Claim one outbox event and process it; False when another dispatcher holds it, it is
    done, or it failed transiently and waits for its retry.

    The claim's lease (``lease_s``) is renewed while the event is processed. A transient failure
    releases the event to be claimed again after :func:`retry_delay_s`; once
    ``Settings.event_retry_hours`` have passed since the event was created (or re-driven), or at
    once for a permanent failure, the event and its unfinished executions are recorded failed.
    """
    return await _process(ctx, event_id=event_id, lease_s=lease_s) in ("done", "failed")


async def process_pending(
    ctx: AutomationContext, *, limit: int = 100, lease_s: float = LEASE_SECONDS
) -> int:
    """Claim up to ``limit`` pending (or abandoned) events at once, oldest first, and process
    them as a batch; return how many were finished (done or failed).

    Dispatchers in several processes share the outbox: each claim is one statement (with
    ``SKIP LOCKED`` on PostgreSQL), so they take different events. The batch stops at the first
    event that has to be retried: a dependency is down, and the events after it would only
    wait for the same timeout; they are given back, and the next pass starts over.
    """
    async with ctx.sessionmaker() as session:
        events = await claim_events(session, limit=limit, lease_s=lease_s)
    if not events:
        return 0
    outcomes = await _process_batch(ctx, events, lease_s=lease_s)
    return sum(1 for outcome in outcomes.values() if outcome in ("done", "failed"))


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
    # Matched as the dispatcher matches (through an index), explained in full when it misses.
    hits = RuleIndex([(row.id, rule)]).matches(rule.trigger, record, previous=previous, now=stamp)
    result = (
        hits[0][2]
        if hits
        else match_conditions(rule.conditions, record, previous=previous, now=stamp)
    )
    reasons = []
    if not row.enabled:
        reasons.append("the rule is disabled")
    if not result.matched:
        reasons.append(result.explain())
    would_fire = row.enabled and result.matched
    described = [
        describe_action(rule, ticket=ticket, action=action, rule_id=row.id) for action in rule.steps
    ]
    return {
        "rule_id": row.id,
        "would_fire": would_fire,
        "matched": result.matched,
        "enabled": row.enabled,
        "reason": "; ".join(reasons) if reasons else result.explain(),
        "checks": json.loads(json.dumps(_checks(result), default=str)),
        "action": described[0],
        "actions": described,
        "ticket_id": (ticket or {}).get("id"),
    }
