"""Archiving: closed workflows past an age move from Temporal to the store's timeline archive.

For each closed execution on one of the API's task queues (completed, failed, cancelled,
terminated, timed out) whose close time is older than ``older_than_s``, the timeline is built
from its history and upserted into the archive together with its identity, outcome and
progress; only once that row is committed is the execution deleted from Temporal
(``DeleteWorkflowExecution``), so its timeline then lives only in the archive. Temporal deletes
asynchronously (seconds to a minute later); meanwhile the reads of
:mod:`service.executions.queries` already answer from the archive. Running it twice, or from two
processes at once, is harmless: the upsert keeps one row, an execution already in the archive is
only asked again to be deleted (not counted), and one already gone is skipped.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, Final

from temporalio.api.common.v1 import WorkflowExecution as ExecutionRef
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import WorkflowExecution
from temporalio.service import RPCError, RPCStatusCode

from protocol_lab.domain import EventType
from protocol_lab.domain.history import HistoryTimeline
from protocol_lab.domain.wire import MEMO_STATE, WORKFLOW_TYPE
from service.errors import InvalidRequestError, NotFoundError, ServiceError, UnavailableError
from service.executions.context import RPC_TIMEOUT, TemporalContext, temporal_errors
from service.executions.queries import api_queues_clause, api_status, get_timeline
from service.settings import Settings
from service.store.archive import archived_rows, upsert_archived
from service.temporal import search_attributes as sa
from service.temporal.ids import ORDER_PER_SECOND, is_workflow_id, order_of
from service.temporal.queues import spec_queue

__all__ = ["MAX_ARCHIVE_LIMIT", "archive_closed_workflows"]

MAX_ARCHIVE_LIMIT: Final = 10_000
_CLOSED: Final = ("Completed", "Failed", "Canceled", "Terminated", "TimedOut")
_CONCURRENCY: Final = 8


def _closed_before(settings: Settings, cutoff: float) -> str:
    stamp = datetime.fromtimestamp(cutoff, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    statuses = " OR ".join(f"ExecutionStatus = '{s}'" for s in _CLOSED)
    return (
        f"WorkflowType = '{WORKFLOW_TYPE}' AND {api_queues_clause(settings)} AND ({statuses})"
        f" AND CloseTime < '{stamp}'"
    )


def _reason(status: str, timeline: HistoryTimeline) -> str | None:
    if status != "failed":
        return None
    if timeline.cancel_reason:
        return timeline.cancel_reason
    closing = {EventType.WORKFLOW_FAILED.value, EventType.WORKFLOW_CANCELLED.value}
    for event in reversed(timeline.events):
        if event.event in closing:
            return event.detail
    return None


def _order(execution: WorkflowExecution) -> int:
    # The id's own integer is exact; visibility may hand back the attribute through a float.
    if is_workflow_id(execution.id):
        return order_of(execution.id)
    value = execution.typed_search_attributes.get(sa.ORDER)
    if value is not None:
        return int(value)
    return int(execution.start_time.timestamp() * ORDER_PER_SECOND)


async def _delete(ctx: TemporalContext, execution: WorkflowExecution) -> None:
    """Ask Temporal to delete the execution (done asynchronously); gone already is fine."""
    client = ctx.temporal
    request = DeleteWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_execution=ExecutionRef(workflow_id=execution.id, run_id=execution.run_id),
    )
    try:
        await client.workflow_service.delete_workflow_execution(
            request, retry=True, timeout=RPC_TIMEOUT
        )
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:  # gone already: someone else archived it
            raise UnavailableError(
                f"Temporal did not delete {execution.id} ({exc.message}); it stays archived and"
                " is deleted on the next run"
            ) from None


async def _archive_one(ctx: TemporalContext, execution: WorkflowExecution) -> bool:
    """Copy one closed execution into the archive, then delete it; False if it was gone."""
    try:
        timeline = await get_timeline(ctx, execution.id)
    except ServiceError as exc:
        if isinstance(exc, NotFoundError):  # deleted already; visibility lags behind
            return False
        raise
    search = execution.typed_search_attributes
    state: dict[str, Any] = await execution.memo_value(MEMO_STATE, default={}, type_hint=dict)
    status = api_status(execution.status, None)
    plan = timeline.plan_input
    started = execution.execution_time.timestamp() if execution.execution_time else None
    if timeline.closed_at is not None and timeline.started_at is None:
        started = None  # closed before its scheduled start
    closed = (
        execution.close_time.timestamp()
        if execution.close_time is not None
        else (timeline.closed_at or time.time())
    )
    async with ctx.sessionmaker() as session:
        await upsert_archived(
            session,
            workflow_id=execution.id,
            name=search.get(sa.NAME) or (plan.name if plan else ""),
            task_queue=plan.task_queue if plan else spec_queue(ctx.settings, execution.task_queue),
            trigger_type=search.get(sa.TRIGGER_TYPE) or (plan.trigger_type if plan else "manual"),
            ticket_id=search.get(sa.TICKET_ID),
            status=status,
            reason=_reason(status, timeline),
            started_at=started,
            completed_at=closed,
            protocol_order=_order(execution),
            steps_completed=int(state.get("steps_completed", 0)),
            steps_total=int(state.get("steps_total", 0)),
            timeline=timeline.events,
            archived_at=time.time(),
        )
    await _delete(ctx, execution)
    return True


async def archive_closed_workflows(
    ctx: TemporalContext, *, older_than_s: float, limit: int = 500
) -> int:
    """Archive up to ``limit`` workflows closed more than ``older_than_s`` seconds ago.

    Returns how many were archived (copied to the archive and deleted from Temporal). Raises
    :class:`InvalidRequestError` for a negative age or a limit out of range, 503 when Temporal is
    unavailable.
    """
    if older_than_s < 0:
        raise InvalidRequestError("older_than_s must be zero or more")
    if not 1 <= limit <= MAX_ARCHIVE_LIMIT:
        raise InvalidRequestError(f"limit must be between 1 and {MAX_ARCHIVE_LIMIT}")
    client = ctx.temporal
    query = _closed_before(ctx.settings, time.time() - older_than_s)
    with temporal_errors():
        executions = [
            execution
            async for execution in client.list_workflows(
                query, limit=limit, page_size=min(limit, 1000), rpc_timeout=RPC_TIMEOUT
            )
        ]
    async with ctx.sessionmaker() as session:
        known = await archived_rows(session, workflow_ids=[e.id for e in executions])
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def archive(execution: WorkflowExecution) -> bool:
        async with gate:
            if execution.id in known:  # archived before; its deletion may have failed
                await _delete(ctx, execution)
                return False
            return await _archive_one(ctx, execution)

    done = await asyncio.gather(*(archive(execution) for execution in executions))
    return sum(done)
