"""Starting workflows: the one entry point used by the API and by the automation engine.

``start_workflow(ctx, *, name, task_queue, ...)`` takes as ``ctx`` anything with ``settings``,
``temporal`` (a connected :class:`temporalio.client.Client`), ``catalog`` and, for the
workflow definitions stored at run time, ``sessionmaker`` — the API's
:class:`~service.state.Resources` or the worker's
:class:`~service.temporal.resources.Resources` (whose ``temporal`` the worker sets).
It returns the API's workflow object (a dict).

Exactly once: with ``workflow_id`` given, a second call finds the first execution (running or
closed) and returns it instead of starting another; pass ids from
:func:`service.temporal.ids.new_workflow_id` so they sort by creation time in lists.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from protocol_lab.domain import (
    EventType,
    SignalStep,
    TaskQueue,
    TriggerType,
    WorkflowPlan,
    details,
)
from protocol_lab.domain.wire import MEMO_STATE, PlanInput, WorkflowState
from service.errors import InvalidRequestError
from service.executions.context import RPC_TIMEOUT, TemporalContext, temporal_errors
from service.executions.definitions import require_definition
from service.executions.models import WorkflowCreate
from service.observability import metrics
from service.store.idempotency import claim_idempotency_key
from service.temporal import search_attributes as sa
from service.temporal.ids import ORDER_PER_SECOND, is_workflow_id, new_workflow_id, order_of
from service.temporal.plan_workflow import PlanWorkflow
from service.temporal.queues import temporal_queue

__all__ = [
    "check_queue_and_trigger",
    "create_workflow",
    "handle_of",
    "initial_state",
    "resolve_plan",
    "start_workflow",
]


async def resolve_plan(
    ctx: TemporalContext, *, name: str, task_queue: str, trigger_type: str
) -> WorkflowPlan:
    """The newest definition of ``name`` (catalog or stored, :mod:`service.executions.definitions`);
    InvalidRequestError for an unknown name, queue or trigger type."""
    plan = (await require_definition(ctx, name)).plan
    check_queue_and_trigger(task_queue=task_queue, trigger_type=trigger_type)
    return plan


def check_queue_and_trigger(*, task_queue: str, trigger_type: str) -> None:
    """InvalidRequestError for an unknown task queue or trigger type."""
    queues = [q.value for q in TaskQueue]
    if task_queue not in queues:
        raise InvalidRequestError(f"unknown task queue {task_queue!r}; one of: {', '.join(queues)}")
    triggers = [t.value for t in TriggerType]
    if trigger_type not in triggers:
        raise InvalidRequestError(
            f"unknown trigger_type {trigger_type!r}; one of: {', '.join(triggers)}"
        )


def initial_state(plan: WorkflowPlan, *, status: str) -> WorkflowState:
    """The state of an execution that has not taken its first step."""
    first = plan.steps[0]
    return WorkflowState(
        status=status,
        current_step=first.detail,
        current_step_id=first.id,
        steps_completed=0,
        steps_total=len(plan.steps),
        awaiting_signal=first.signal if isinstance(first, SignalStep) else None,
        plan_signals=sorted(plan.signals),
        awaited_signals=plan.awaited_signals(0, ()),
    )


async def start_workflow(
    ctx: TemporalContext,
    *,
    name: str,
    task_queue: str,
    trigger_type: str = "manual",
    input: dict[str, Any] | None = None,
    workflow_id: str | None = None,
    start_at: float | None = None,
    time_scale: float | None = None,
    plan: WorkflowPlan | None = None,
) -> dict[str, Any]:
    """Start a plan execution (at ``start_at`` if in the future: draft until then).

    ``plan`` (a draft's snapshot, or the newest definition the caller has just read) runs
    instead of the newest definition of ``name``, read here otherwise. Returns
    the workflow object of the spec. Raises :class:`InvalidRequestError` for an unknown name, task
    queue or trigger type, 503 when Temporal is unavailable.
    """
    if plan is None:
        plan = await resolve_plan(ctx, name=name, task_queue=task_queue, trigger_type=trigger_type)
    else:
        check_queue_and_trigger(task_queue=task_queue, trigger_type=trigger_type)
    client = ctx.temporal
    data = dict(input or {})
    now = time.time()
    workflow_id = workflow_id or new_workflow_id(now=now)
    order = order_of(workflow_id) if is_workflow_id(workflow_id) else int(now * ORDER_PER_SECOND)
    delay = (start_at - now) if start_at is not None and start_at > now + 0.5 else None
    status = "draft" if delay is not None else "active"
    raw_ticket = data.get("ticket_id")
    ticket = raw_ticket if isinstance(raw_ticket, str) and raw_ticket else None
    pairs = _search_attributes(
        status=status, name=plan.name, trigger_type=trigger_type, order=order, ticket=ticket
    )
    plan_input = PlanInput(
        name=plan.name,
        task_queue=task_queue,
        trigger_type=trigger_type,
        plan=plan.model_dump(mode="json"),
        input=data,
        time_scale=time_scale or ctx.settings.time_scale,
        start_at=start_at if delay is not None else None,
    )
    try:
        with temporal_errors():
            await client.start_workflow(
                PlanWorkflow.run,
                plan_input,
                id=workflow_id,
                task_queue=temporal_queue(ctx.settings, task_queue),
                search_attributes=TypedSearchAttributes(pairs),
                memo={MEMO_STATE: initial_state(plan, status=status)},
                start_delay=timedelta(seconds=delay) if delay is not None else None,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                static_summary=plan.name,
                rpc_timeout=RPC_TIMEOUT,
            )
    except WorkflowAlreadyStartedError:
        from service.executions.queries import get_workflow

        return await get_workflow(ctx, workflow_id)
    metrics.workflow_started(task_queue, trigger_type)
    started = start_at if delay is not None and start_at is not None else now
    return {
        "id": workflow_id,
        "name": plan.name,
        "status": status,
        "trigger_type": trigger_type,
        "task_queue": task_queue,
        "started_at": int(started),
        "completed_at": None,
        "ticket_id": ticket,
        "timeline": [] if delay is not None else [_started_event(now, trigger_type, data)],
    }


def _search_attributes(
    *, status: str, name: str, trigger_type: str, order: int, ticket: str | None
) -> list[SearchAttributePair[Any]]:
    """The search attributes a new execution starts with (the ticket's only when it has one)."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(sa.STATUS, status),
        SearchAttributePair(sa.NAME, name),
        SearchAttributePair(sa.TRIGGER_TYPE, trigger_type),
        SearchAttributePair(sa.ORDER, order),
    ]
    if ticket is not None:
        pairs.append(SearchAttributePair(sa.TICKET_ID, ticket))
    return pairs


def _started_event(now: float, trigger_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """The timeline's first event, as the workflow will record it when it runs."""
    return {
        "event": EventType.WORKFLOW_STARTED.value,
        "timestamp": int(now),
        "detail": details.workflow_started(trigger_type, data),
        "step": None,
        "attempt": None,
        "outcome": None,
        "actor": None,
    }


def handle_of(ctx: TemporalContext, workflow_id: str) -> WorkflowHandle[Any, Any]:
    """A handle on a workflow by id (no RPC)."""
    return ctx.temporal.get_workflow_handle(workflow_id)


async def create_workflow(
    ctx: TemporalContext,
    *,
    session: AsyncSession,
    request: WorkflowCreate,
    idempotency_key: str | None = None,
    key_scope: str = "workflows.create",
    caller: str = "",
) -> dict[str, Any]:
    """POST /v1/workflows: validate, honour the Idempotency-Key (in ``key_scope``), start.

    ``trigger_type: scheduled`` starts at ``start_at``, or makes a recurring workflow with
    ``schedule``, or, with neither, a draft for ``POST /v1/workflows/{id}/start``
    (:mod:`service.executions.drafts`); ``caller`` owns the recurring ones (bounded per caller).

    The key is claimed with a fresh workflow id before starting: the claim is the pending
    start. A repeated request (same key, same body) starts with that same id and so gets the
    first workflow back, or, when the first start failed before Temporal took it, completes it.
    The same key with another body is a 409.
    """
    trigger = request.trigger_type.value
    plan = await resolve_plan(
        ctx, name=request.name, task_queue=request.task_queue.value, trigger_type=trigger
    )
    scheduled = trigger == TriggerType.SCHEDULED.value
    if not scheduled and (request.start_at is not None or request.schedule is not None):
        raise InvalidRequestError(
            "start_at and schedule are only for trigger_type scheduled"
            " (it starts at start_at, recurs on schedule, or waits as a draft for /start)"
        )
    if request.start_at is not None and request.schedule is not None:
        raise InvalidRequestError("give start_at (one time) or schedule (recurring), not both")
    workflow_id: str | None = None
    if idempotency_key is not None:
        claim = await claim_idempotency_key(
            session,
            scope=key_scope,
            key=idempotency_key,
            request=request.model_dump(mode="json", exclude_none=True),
            resource_id=new_workflow_id(),
            ttl_s=ctx.settings.idempotency_ttl_s,
            commit=True,
        )
        workflow_id = claim.resource_id
    if scheduled and request.start_at is None:
        from service.executions.drafts import create_draft

        return await create_draft(
            ctx,
            workflow_id=workflow_id or new_workflow_id(),
            request=request,
            caller=caller,
            repeated=workflow_id is not None,
        )
    return await start_workflow(
        ctx,
        name=request.name,
        task_queue=request.task_queue.value,
        trigger_type=trigger,
        input=request.input,
        workflow_id=workflow_id,
        start_at=request.start_at,
        time_scale=request.time_scale,
        plan=plan,  # the definition just read: one read of the store per start, not two
    )
