"""Draft and recurring workflows: scheduled workflows that do not start at a given time.

- A scheduled workflow created without ``start_at`` or ``schedule`` is a **draft**: a row in the
  store (:mod:`service.store.drafts`) with its id and the plan it will run (the definition's
  version at creation); no Temporal execution exists until ``POST /v1/workflows/{id}/start``
  starts one under the draft's id (:func:`start_draft`). Until then it reads and lists as
  ``draft`` with no start time.
- A **recurring** workflow (``schedule``: cron or interval) is such a draft plus a Temporal
  Schedule (:mod:`service.executions.schedules`) that starts one run per time of the schedule:
  each run is a plan workflow of its own, of the definition's newest version, with
  ``schedule_id`` (the recurring workflow's id) in its input (:func:`start_recurring_run`).
- Cancelling either (:func:`hold_draft`) deletes the schedule and turns the draft into an
  execution held by a start delay it never reaches, which the ordinary cancel then closes:
  it reads ``failed`` with its ``workflow_cancelled`` event, like a cancelled ``start_at``
  workflow.

Bounded: at most :data:`MAX_DRAFTS` drafts in the store, and
:data:`~service.executions.schedules.MAX_SCHEDULES_PER_CALLER` recurring workflows per caller.
"""

from __future__ import annotations

import time
from typing import Any, Final

from sqlalchemy.exc import IntegrityError

from protocol_lab.domain import TriggerType, WorkflowPlan
from service.errors import ConflictError, NotFoundError, ServiceError
from service.executions.context import TemporalContext
from service.executions.definitions import require_definition
from service.executions.models import MAX_START_AHEAD_S, WorkflowCreate
from service.executions.queries import draft_view, find_draft, get_workflow
from service.executions.schedules import (
    MAX_SCHEDULES_PER_CALLER,
    create_recurring_schedule,
    delete_recurring_schedule,
)
from service.executions.starter import start_workflow
from service.store.drafts import (
    count_drafts,
    delete_draft,
    draft_input,
    draft_schedule,
    insert_draft,
)
from service.temporal.ids import derived_workflow_id, order_of

__all__ = [
    "MAX_DRAFTS",
    "create_draft",
    "hold_draft",
    "start_draft",
    "start_recurring_run",
]

MAX_DRAFTS: Final = 10_000


async def create_draft(
    ctx: TemporalContext,
    *,
    workflow_id: str,
    request: WorkflowCreate,
    caller: str,
    repeated: bool = False,
) -> dict[str, Any]:
    """Store a draft (a recurring one when ``request.schedule``) under ``workflow_id``.

    ``repeated``: the id comes from an Idempotency-Key, so a workflow already made under it
    (a draft, or one started since) is answered instead. 409 over the bounds, 503 without a
    store or Temporal (for a schedule).
    """
    if repeated:
        try:
            return await get_workflow(ctx, workflow_id)
        except ServiceError as exc:
            if not isinstance(exc, NotFoundError):
                raise
    maker = ctx.sessionmaker
    definition = await require_definition(ctx, request.name)
    schedule = None if request.schedule is None else request.schedule.model_dump(exclude_none=True)
    async with maker() as session:
        if await count_drafts(session) >= MAX_DRAFTS:
            raise ConflictError(f"{MAX_DRAFTS} draft workflows wait already; start some")
        if schedule is not None and (
            await count_drafts(session, recurring_of=caller) >= MAX_SCHEDULES_PER_CALLER
        ):
            raise ConflictError(
                f"this token has {MAX_SCHEDULES_PER_CALLER} recurring workflows, the limit;"
                " cancel one first"
            )
        try:
            row = await insert_draft(
                session,
                workflow_id=workflow_id,
                name=definition.plan.name,
                task_queue=request.task_queue.value,
                trigger_type=TriggerType.SCHEDULED.value,
                input=dict(request.input),
                plan_json=definition.plan.model_dump_json(),
                version=definition.version,
                time_scale=request.time_scale,
                protocol_order=order_of(workflow_id),
                created_by=caller,
                schedule=schedule,
            )
        except IntegrityError:
            await session.rollback()
            return await get_workflow(ctx, workflow_id)  # a concurrent twin made it
    if schedule is not None:
        try:
            await create_recurring_schedule(
                ctx.temporal,
                workflow_id=workflow_id,
                name=row.name,
                schedule=schedule,
                settings=ctx.settings,
            )
        except Exception:
            async with maker() as session:
                await delete_draft(session, workflow_id=workflow_id)
            raise
    return draft_view(row)


async def start_draft(ctx: TemporalContext, workflow_id: str) -> dict[str, Any]:
    """POST /v1/workflows/{id}/start: start the draft's plan under its id, now.

    404 for no such workflow, 409 for a workflow that is not a draft waiting for /start (a
    started one, a ``start_at`` one, a recurring one).
    """
    row = await find_draft(ctx, workflow_id)
    if row is None:
        workflow = await get_workflow(ctx, workflow_id)
        raise ConflictError(
            f"workflow {workflow_id} is {workflow['status']}, not a draft waiting for /start"
            + (" (it starts at its start_at)" if workflow["status"] == "draft" else "")
        )
    if draft_schedule(row) is not None:
        raise ConflictError(
            f"workflow {workflow_id} is recurring: its schedule starts its runs (cancel it to"
            " stop them)"
        )
    started = await start_workflow(
        ctx,
        name=row.name,
        task_queue=row.task_queue,
        trigger_type=row.trigger_type,
        input=draft_input(row),
        workflow_id=row.id,
        time_scale=row.time_scale,
        plan=WorkflowPlan.model_validate_json(row.plan),
    )
    await _forget(ctx, workflow_id)
    return started


async def hold_draft(ctx: TemporalContext, workflow_id: str) -> bool:
    """Before a cancel: turn draft ``workflow_id`` (one-off or recurring, whose schedule is
    deleted) into an execution held before its start, so the cancel closes it as cancelled.
    False when it is not a draft of the store."""
    row = await find_draft(ctx, workflow_id)
    if row is None:
        return False
    if draft_schedule(row) is not None:
        await delete_recurring_schedule(ctx.temporal, workflow_id=workflow_id)
    await start_workflow(
        ctx,
        name=row.name,
        task_queue=row.task_queue,
        trigger_type=row.trigger_type,
        input=draft_input(row),
        workflow_id=row.id,
        time_scale=row.time_scale,
        plan=WorkflowPlan.model_validate_json(row.plan),
        start_at=time.time() + MAX_START_AHEAD_S,
    )
    await _forget(ctx, workflow_id)
    return True


async def start_recurring_run(
    ctx: TemporalContext, *, recurring_id: str, at: float, seed: str
) -> str | None:
    """Start the run of recurring workflow ``recurring_id`` due at ``at``; its id, or None when
    the recurring workflow is gone. The same (``at``, ``seed``) starts the same run once."""
    row = await find_draft(ctx, recurring_id)
    if row is None or draft_schedule(row) is None:
        return None
    workflow_id = derived_workflow_id(at=at, seed=seed)
    await start_workflow(
        ctx,
        name=row.name,
        task_queue=row.task_queue,
        trigger_type=TriggerType.SCHEDULED.value,
        input={**draft_input(row), "schedule_id": row.id},
        workflow_id=workflow_id,
        time_scale=row.time_scale,
    )
    return workflow_id


async def _forget(ctx: TemporalContext, workflow_id: str) -> None:
    async with ctx.sessionmaker() as session:
        await delete_draft(session, workflow_id=workflow_id)
