"""Reading workflows: one by id (timeline from its history), its status, and lists.

Lists come from Temporal visibility through the search attributes. Visibility on SQLite has no
ORDER BY and lags by up to a few hundred milliseconds, so a page is gathered by windows of
``ProtocolOrder`` (the time-ordered integer inside each id): each window is fetched whole and
sorted in memory, and windows move away from the cursor until the page is full or they reach
the oldest (or, for ``ending_before``, the newest) order there can be; whether anything older
remains is never counted, as SQLite visibility would count every older workflow to answer.
:mod:`service.executions.order_windows` sizes the windows from what the query found before.
Because every workflow in the range between the cursor and the page's last item was fetched,
pages neither skip nor repeat a workflow. A ticket's workflows are the exception: when there are
at most ``_SMALL_SET`` of them they are fetched whole by the ticket alone (visibility then reads
them through the ticket's index, whereas windows reaching back to a ticket's oldest workflow
would walk every newer one) and the cursor applies in memory.

Archived workflows (closed, then moved from Temporal to the store's timeline archive) are read
from the archive: by id when Temporal does not know the id (or knows it as closed while its
asynchronous deletion is still under way), in ``status=archived`` lists, and merged by
``ProtocolOrder`` into unfiltered lists (the archive's ``limit + 1`` nearest rows beyond the
cursor join the Temporal window's items before the page is cut, an id present in both counting
once, as archived). A ``completed`` or ``failed`` list leaves out a workflow that the archive
already holds. A ``ticket_id`` filter (the ``ProtocolTicketId`` search attribute, kept in the
archive's ``ticket_id`` column) narrows both sources alike, as do ``name`` (``ProtocolName``)
and ``trigger_type`` (``ProtocolTriggerType``). The creation time range is a ``ProtocolOrder``
range (the order is creation time in nanoseconds), so it narrows the same windows as the cursor.

Drafts (scheduled workflows waiting for /start, and recurring ones; :mod:`service.store.drafts`)
have no Temporal execution: they are read from the store by id and merged by ``ProtocolOrder``
into unfiltered and ``status=draft`` lists like archived workflows; once started, Temporal's
execution of the same id wins.

Timestamps are whole Unix seconds; with ``precise`` every timestamp of a read (``started_at``,
``completed_at``, the timeline's) is a float with its sub-second part, whose floor is the whole
second.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import (
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
)

from protocol_lab.domain import TaskQueue, TriggerType, WorkflowStatus, wire_events
from protocol_lab.domain.history import HistoryTimeline, add_running_activities, build_timeline
from protocol_lab.domain.tickets import ticket_number
from protocol_lab.domain.wire import MEMO_STATE, WORKFLOW_TYPE
from service.errors import InvalidRequestError, NotFoundError, ServiceError
from service.executions.context import (
    RPC_TIMEOUT,
    TemporalContext,
    temporal_errors,
)
from service.executions.order_windows import ORDER_CEILING, gather_newer, gather_older
from service.settings import Settings
from service.store.archive import (
    ArchivedWorkflow,
    archived_rows,
    archived_timeline,
    get_archived,
    list_archived,
)
from service.store.drafts import DraftWorkflow, get_draft, list_drafts
from service.temporal import search_attributes as sa
from service.temporal.ids import ORDER_PER_SECOND, is_workflow_id, order_of
from service.temporal.queues import spec_queue, temporal_queue, temporal_queues

__all__ = [
    "MAX_LIMIT",
    "api_queues_clause",
    "api_status",
    "archived_status",
    "archived_view",
    "draft_status",
    "draft_view",
    "find_draft",
    "get_status",
    "get_timeline",
    "get_workflow",
    "list_workflows",
]

MAX_LIMIT = 100
_RUNNING_STATUSES = {"draft", "active", "paused"}
_FAILED = ("Failed", "Canceled", "Terminated", "TimedOut")
_HISTORY_CONCURRENCY = 16
# A ticket filter matching at most this many workflows is read whole and ordered in memory.
_SMALL_SET = 1000
MAX_NAME_FILTER = 200


def api_status(status: WorkflowExecutionStatus | None, protocol_status: str | None) -> str:
    """Running: the workflow's own status; closed: completed or failed (docs/architecture.md)."""
    if status is None or status == WorkflowExecutionStatus.RUNNING:
        return protocol_status if protocol_status in _RUNNING_STATUSES else "active"
    if status == WorkflowExecutionStatus.COMPLETED:
        return "completed"
    return "failed"


def _closed(status: WorkflowExecutionStatus | None) -> bool:
    return status is not None and status != WorkflowExecutionStatus.RUNNING


def _seconds(value: float | None, precise: bool) -> int | float | None:
    if value is None:
        return None
    return float(value) if precise else int(value)


def _ts(value: Any, precise: bool = False) -> int | float | None:
    return None if value is None else _seconds(value.timestamp(), precise)


async def _describe(ctx: TemporalContext, workflow_id: str) -> WorkflowExecutionDescription:
    handle = ctx.temporal.get_workflow_handle(workflow_id)
    with temporal_errors(workflow_id):
        desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    if desc.workflow_type != WORKFLOW_TYPE:
        raise NotFoundError(f"no workflow {workflow_id!r}")
    return desc


def running_activities(desc: WorkflowExecutionDescription) -> dict[str, float]:
    """When each activity a worker is running now started (by activity id)."""
    started = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
    return {
        activity.activity_id: activity.last_started_time.seconds
        + activity.last_started_time.nanos / 1e9
        for activity in desc.raw_description.pending_activities
        if activity.state == started and activity.HasField("last_started_time")
    }


async def get_timeline(ctx: TemporalContext, workflow_id: str) -> HistoryTimeline:
    """The execution's timeline, from its full history."""
    client = ctx.temporal
    handle = client.get_workflow_handle(workflow_id)
    with temporal_errors(workflow_id):
        history = await handle.fetch_history(rpc_timeout=RPC_TIMEOUT)
    return await build_timeline(workflow_id, list(history.events), converter=client.data_converter)


def _base_view(
    *,
    workflow_id: str,
    status: WorkflowExecutionStatus | None,
    search: Any,
    task_queue: str,
    execution_time: Any,
    close_time: Any,
    precise: bool = False,
) -> dict[str, Any]:
    return {
        "id": workflow_id,
        "name": search.get(sa.NAME) or "",
        "status": api_status(status, search.get(sa.STATUS)),
        "trigger_type": search.get(sa.TRIGGER_TYPE) or "manual",
        "task_queue": task_queue,
        "started_at": _ts(execution_time, precise),
        "completed_at": _ts(close_time, precise),
        "ticket_id": search.get(sa.TICKET_ID),
    }


# -- the archive ---------------------------------------------------------------------------------


async def _archived(ctx: TemporalContext, workflow_id: str) -> ArchivedWorkflow | None:
    async with ctx.sessionmaker() as session:
        return await get_archived(session, workflow_id=workflow_id)


def archived_view(row: ArchivedWorkflow, *, precise: bool = False) -> dict[str, Any]:
    """The workflow object of an archived workflow (status archived, timeline from the archive);
    ``precise``: float timestamps."""
    return {
        "id": row.id,
        "name": row.name,
        "status": WorkflowStatus.ARCHIVED.value,
        "trigger_type": row.trigger_type,
        "task_queue": row.task_queue,
        "started_at": _seconds(row.started_at, precise),
        "completed_at": _seconds(row.completed_at, precise),
        "ticket_id": row.ticket_id,
        "timeline": wire_events(archived_timeline(row), precise=precise),
    }


def archived_status(row: ArchivedWorkflow, *, precise: bool = False) -> dict[str, Any]:
    """The status view of an archived workflow; ``precise``: a float ``started_at``."""
    started = row.started_at
    return {
        "id": row.id,
        "status": WorkflowStatus.ARCHIVED.value,
        "current_step": None,
        "steps_completed": row.steps_completed,
        "steps_total": row.steps_total,
        "started_at": _seconds(started, precise),
        "elapsed_seconds": 0 if started is None else max(0, int(row.completed_at - started)),
    }


# -- drafts --------------------------------------------------------------------------------------


async def find_draft(ctx: TemporalContext, workflow_id: str) -> DraftWorkflow | None:
    """The draft ``workflow_id`` waiting for its start, or None."""
    if not is_workflow_id(workflow_id):
        return None
    async with ctx.sessionmaker() as session:
        return await get_draft(session, workflow_id=workflow_id)


def draft_view(row: DraftWorkflow) -> dict[str, Any]:
    """The workflow object of a draft: status draft, not started (no start time), no timeline."""
    return {
        "id": row.id,
        "name": row.name,
        "status": WorkflowStatus.DRAFT.value,
        "trigger_type": row.trigger_type,
        "task_queue": row.task_queue,
        "started_at": None,
        "completed_at": None,
        "ticket_id": row.ticket_id,
        "timeline": [],
    }


def draft_status(row: DraftWorkflow) -> dict[str, Any]:
    """The status view of a draft: its first step, nothing done, not started."""
    steps = json.loads(row.plan).get("steps") or [{}]
    return {
        "id": row.id,
        "status": WorkflowStatus.DRAFT.value,
        "current_step": steps[0].get("detail"),
        "steps_completed": 0,
        "steps_total": len(steps),
        "started_at": None,
        "elapsed_seconds": 0,
    }


async def get_workflow(
    ctx: TemporalContext, workflow_id: str, *, precise: bool = False
) -> dict[str, Any]:
    """The workflow object with its full timeline (from the archive when Temporal no longer has
    it); 404 if there is no such workflow. ``precise``: float timestamps."""
    described, read = await asyncio.gather(
        _describe(ctx, workflow_id), get_timeline(ctx, workflow_id), return_exceptions=True
    )
    for outcome in (described, read):
        if isinstance(outcome, NotFoundError):
            row = await _archived(ctx, workflow_id)
            if row is not None:
                return archived_view(row, precise=precise)
            draft = await find_draft(ctx, workflow_id)
            if draft is not None:
                return draft_view(draft)
    if isinstance(described, BaseException):
        raise described
    if isinstance(read, BaseException):
        raise read
    desc, timeline = described, read
    if _closed(desc.status):
        row = await _archived(ctx, workflow_id)
        if row is not None:  # archived; Temporal's deletion has not caught up yet
            return archived_view(row, precise=precise)
    add_running_activities(timeline, running_activities(desc))
    view = _base_view(
        workflow_id=workflow_id,
        status=desc.status,
        search=desc.typed_search_attributes,
        task_queue=spec_queue(ctx.settings, desc.task_queue),
        execution_time=desc.execution_time,
        close_time=desc.close_time,
        precise=precise,
    )
    if timeline.plan_input is not None:
        view["name"] = view["name"] or timeline.plan_input.name
        view["task_queue"] = timeline.plan_input.task_queue
    if timeline.closed_at is not None and timeline.started_at is None:
        view["started_at"] = None  # closed before its scheduled start
    view["timeline"] = wire_events(timeline.events, precise=precise)
    return view


async def get_status(
    ctx: TemporalContext, workflow_id: str, *, precise: bool = False
) -> dict[str, Any]:
    """Status, current step and progress, from a describe (no history, no worker needed), or
    from the archive when Temporal no longer has the workflow. ``precise``: a float
    ``started_at``."""
    try:
        desc = await _describe(ctx, workflow_id)
    except ServiceError as exc:
        if not isinstance(exc, NotFoundError):
            raise
        row = await _archived(ctx, workflow_id)
        if row is not None:
            return archived_status(row, precise=precise)
        draft = await find_draft(ctx, workflow_id)
        if draft is None:
            raise
        return draft_status(draft)
    if _closed(desc.status):
        row = await _archived(ctx, workflow_id)
        if row is not None:
            return archived_status(row, precise=precise)
    state: dict[str, Any] = await desc.memo_value(MEMO_STATE, default={}, type_hint=dict)
    status = api_status(desc.status, desc.typed_search_attributes.get(sa.STATUS))
    started = desc.execution_time.timestamp() if desc.execution_time else None
    end = desc.close_time.timestamp() if desc.close_time else time.time()
    closed = status in ("completed", "failed")
    return {
        "id": workflow_id,
        "status": status,
        "current_step": None if closed else state.get("current_step"),
        "steps_completed": int(state.get("steps_completed", 0)),
        "steps_total": int(state.get("steps_total", 0)),
        "started_at": _seconds(started, precise),
        "elapsed_seconds": 0 if started is None else max(0, int(end - started)),
    }


# -- lists ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    order: int
    workflow_id: str
    execution: WorkflowExecution


_Entry = _Item | ArchivedWorkflow | DraftWorkflow


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def api_queues_clause(settings: Settings) -> str:
    """The visibility condition "on one of the API's task queues" (Temporal's names of them)."""
    return "TaskQueue IN (" + ", ".join(_quote(q) for q in temporal_queues(settings)) + ")"


@dataclass(frozen=True)
class ListFilters:
    """What a workflow list keeps: each given filter must hold (``None``: any).

    ``created_after`` (inclusive) and ``created_before`` (exclusive) are Unix seconds of
    creation, the time inside the id, so they bound the same ``ProtocolOrder`` as the cursor.
    """

    status: str | None = None
    task_queue: str | None = None
    ticket_id: str | None = None
    name: str | None = None
    trigger_type: str | None = None
    created_after: float | None = None
    created_before: float | None = None

    @property
    def lowest_order(self) -> int | None:
        """The smallest ``ProtocolOrder`` in range, or None."""
        after = self.created_after
        return None if after is None else math.ceil(after * ORDER_PER_SECOND)

    @property
    def order_ceiling(self) -> int | None:
        """The ``ProtocolOrder`` every workflow in range is below, or None."""
        before = self.created_before
        return None if before is None else math.ceil(before * ORDER_PER_SECOND)


def _filters(
    settings: Settings,
    status: str | None,
    task_queue: str | None,
    ticket_id: str | None = None,
    *,
    name: str | None = None,
    trigger_type: str | None = None,
    lowest: int | None = None,
    ceiling: int | None = None,
) -> str | None:
    """The visibility query of the filters; None when nothing can match."""
    parts = [f"WorkflowType = {_quote(WORKFLOW_TYPE)}"]
    if ticket_id is not None:
        parts.append(f"{sa.TICKET_ID.name} = {_quote(ticket_id)}")
    if name is not None:
        parts.append(f"{sa.NAME.name} = {_quote(name)}")
    if trigger_type is not None:
        parts.append(f"{sa.TRIGGER_TYPE.name} = {_quote(trigger_type)}")
    if lowest is not None:
        parts.append(f"{sa.ORDER.name} >= {lowest}")
    if ceiling is not None:
        parts.append(f"{sa.ORDER.name} < {ceiling}")
    if task_queue is not None:
        parts.append(f"TaskQueue = {_quote(temporal_queue(settings, task_queue))}")
    else:  # executions on other queues (private test or tool queues) are not the API's
        parts.append(api_queues_clause(settings))
    if status is not None:
        if status in _RUNNING_STATUSES:
            parts.append(f"ExecutionStatus = 'Running' AND {sa.STATUS.name} = {_quote(status)}")
        elif status == "completed":
            parts.append("ExecutionStatus = 'Completed'")
        elif status == "failed":
            parts.append("(" + " OR ".join(f"ExecutionStatus = '{s}'" for s in _FAILED) + ")")
        else:  # archived: those live in the archive store, not in Temporal
            return None
    return " AND ".join(parts)


async def _cursor_order(ctx: TemporalContext, cursor: str) -> int:
    if is_workflow_id(cursor):
        return order_of(cursor)
    try:
        desc = await _describe(ctx, cursor)
    except ServiceError as exc:
        if isinstance(exc, NotFoundError):
            row = await _archived(ctx, cursor)
            if row is not None:
                return row.protocol_order
            raise InvalidRequestError(f"cursor {cursor!r} is not a workflow id") from None
        raise
    value = desc.typed_search_attributes.get(sa.ORDER)
    if value is None:
        raise InvalidRequestError(f"cursor {cursor!r} is not a workflow of this API")
    return int(value)


async def _count(ctx: TemporalContext, query: str) -> int:
    with temporal_errors():
        result = await ctx.temporal.count_workflows(query, rpc_timeout=RPC_TIMEOUT)
    return int(result.count)


async def _fetch(ctx: TemporalContext, query: str) -> list[_Item]:
    items = []
    with temporal_errors():
        async for execution in ctx.temporal.list_workflows(
            query, page_size=1000, rpc_timeout=RPC_TIMEOUT
        ):
            order = execution.typed_search_attributes.get(sa.ORDER)
            if order is not None:
                # Visibility hands the attribute back through a float (off by up to a few
                # hundred); the id's own integer is exact and is what cursors compare with.
                exact = order_of(execution.id) if is_workflow_id(execution.id) else int(order)
                items.append(_Item(exact, execution.id, execution))
    return items


def _window(base: str, lower: int | None, upper: int | None) -> str:
    query = base
    if lower is not None:
        query += f" AND {sa.ORDER.name} >= {lower}"
    if upper is not None:
        query += f" AND {sa.ORDER.name} < {upper}"
    return query


def _window_reader(
    ctx: TemporalContext, base: str
) -> tuple[
    Callable[[int | None, int | None], Awaitable[int]],
    Callable[[int | None, int | None], Awaitable[list[_Item]]],
]:
    """How :mod:`order_windows` counts and reads a window of ``base``."""

    async def count(lower: int | None, upper: int | None) -> int:
        return await _count(ctx, _window(base, lower, upper))

    async def fetch(lower: int | None, upper: int | None) -> list[_Item]:
        return await _fetch(ctx, _window(base, lower, upper))

    return count, fetch


async def _small_set(
    ctx: TemporalContext, query: str, lowest: int | None, ceiling: int | None
) -> list[_Item] | None:
    """Every item of ``query`` with ``lowest`` <= order < ``ceiling``, or None when the query
    matches more than ``_SMALL_SET``.

    For a selective filter (a ticket's workflows): without a ``ProtocolOrder`` range, visibility
    finds the matches through the filter's own index, so this costs the matches, not the
    namespace; with the range, SQLite visibility walks the range instead and the windows that
    reach back to a ticket's oldest workflow walk every newer one.
    """
    if await _count(ctx, query) > _SMALL_SET:
        return None
    return [
        item
        for item in await _fetch(ctx, query)
        if (lowest is None or item.order >= lowest) and (ceiling is None or item.order < ceiling)
    ]


async def _view_of(
    ctx: TemporalContext, item: _Item, gate: asyncio.Semaphore, precise: bool
) -> dict[str, Any]:
    execution = item.execution
    view = _base_view(
        workflow_id=item.workflow_id,
        status=execution.status,
        search=execution.typed_search_attributes,
        task_queue=spec_queue(ctx.settings, execution.task_queue),
        execution_time=execution.execution_time,
        close_time=execution.close_time,
        precise=precise,
    )
    async with gate:
        try:
            timeline = await get_timeline(ctx, item.workflow_id)
        except ServiceError as exc:
            if not isinstance(exc, NotFoundError):
                raise
            timeline = None
    events = timeline.events if timeline is not None else []
    view["timeline"] = wire_events(events, precise=precise)
    if timeline is not None and timeline.closed_at is not None and timeline.started_at is None:
        view["started_at"] = None  # closed before its scheduled start
    return view


async def list_workflows(
    ctx: TemporalContext,
    *,
    status: str | None = None,
    task_queue: str | None = None,
    ticket_id: str | None = None,
    name: str | None = None,
    trigger_type: str | None = None,
    created_after: float | None = None,
    created_before: float | None = None,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
    precise: bool = False,
) -> tuple[list[dict[str, Any]], bool]:
    """A page of workflows, newest first; returns (page, has_more).

    Every given filter must hold: ``status``, ``task_queue``, ``ticket_id`` (``TKT-<n>``: the
    workflows started for that ticket), ``name``, ``trigger_type`` and the creation time range
    ``created_after`` <= created < ``created_before`` (Unix seconds). ``precise`` gives float
    timestamps. Bad values raise InvalidRequestError.
    """
    filters = ListFilters(
        status=status,
        task_queue=task_queue,
        ticket_id=ticket_id,
        name=name,
        trigger_type=trigger_type,
        created_after=created_after,
        created_before=created_before,
    )
    _check_list_request(filters, limit, starting_after, ending_before)
    lowest, ceiling = filters.lowest_order, filters.order_ceiling
    base = _filters(
        ctx.settings,
        status,
        task_queue,
        ticket_id,
        name=name,
        trigger_type=trigger_type,
        lowest=lowest,
        ceiling=ceiling,
    )
    maker = ctx.sessionmaker
    archived = maker if status in (None, WorkflowStatus.ARCHIVED.value) else None
    drafts = (
        maker
        if status in (None, WorkflowStatus.DRAFT.value)
        and trigger_type in (None, TriggerType.SCHEDULED.value)
        else None
    )
    if base is None and archived is None and drafts is None:
        return [], False
    unbounded = _filters(
        ctx.settings, status, task_queue, ticket_id, name=name, trigger_type=trigger_type
    )
    small = (
        await _small_set(ctx, unbounded, lowest, ceiling)
        if ticket_id is not None and unbounded is not None
        else None
    )
    sources = _ListSources(base=base, small=small, drafts=drafts, archived=archived)
    if ending_before is not None:
        page, has_more = await _page_before(
            ctx, sources, filters, cursor=ending_before, limit=limit
        )
    else:
        page, has_more = await _page_after(
            ctx, sources, filters, cursor=starting_after, limit=limit
        )
    page = await _settle_archived(ctx, page, keep=status is None)
    gate = asyncio.Semaphore(_HISTORY_CONCURRENCY)
    views = await asyncio.gather(*(_entry_view(ctx, entry, gate, precise) for entry in page))
    return list(views), has_more


@dataclass(frozen=True)
class _ListSources:
    """Where a page of workflows comes from; None where a source cannot match the filters.

    ``base`` is Temporal's visibility query (``small``: its items, already fetched when they are
    few), ``drafts`` and ``archived`` the store's sessions for drafts and archived workflows.
    Later sources win for an id in two of them: a started draft is Temporal's, an archived
    workflow the archive's.
    """

    base: str | None
    small: list[_Item] | None
    drafts: async_sessionmaker[AsyncSession] | None
    archived: async_sessionmaker[AsyncSession] | None


async def _page_before(
    ctx: TemporalContext,
    sources: _ListSources,
    filters: ListFilters,
    *,
    cursor: str,
    limit: int,
) -> tuple[list[_Entry], bool]:
    """The ``limit`` entries just newer than ``cursor``, newest first; and whether there are
    more newer ones."""
    lowest, ceiling = filters.lowest_order, filters.order_ceiling
    need = limit + 1
    entries: dict[str, _Entry] = {}
    pivot = await _cursor_order(ctx, cursor)
    above = pivot if lowest is None else max(pivot, lowest - 1)
    window = _StoreWindow(filters, below=ceiling, above=above, limit=need, newest_first=False)
    if sources.drafts is not None:
        entries.update((row.id, row) for row in await _store_drafts(sources.drafts, window))
    if sources.base is not None:
        items = (
            sources.small
            if sources.small is not None
            else await gather_newer(
                sources.base,
                *_window_reader(ctx, sources.base),
                lower=above,
                need=need,
                ceiling=ORDER_CEILING if ceiling is None else ceiling,
            )
        )
        entries.update((i.workflow_id, i) for i in items if i.order > pivot)
    if sources.archived is not None:
        entries.update((row.id, row) for row in await _store_archived(sources.archived, window))
    ordered = sorted(entries.values(), key=_key)
    page = ordered[:limit]
    has_more = len(ordered) > limit
    page.reverse()
    return page, has_more


async def _page_after(
    ctx: TemporalContext,
    sources: _ListSources,
    filters: ListFilters,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[_Entry], bool]:
    """The ``limit`` newest entries older than ``cursor`` (None: the newest of all); and
    whether there are more older ones."""
    lowest, ceiling = filters.lowest_order, filters.order_ceiling
    need = limit + 1
    entries: dict[str, _Entry] = {}
    order = await _cursor_order(ctx, cursor) if cursor is not None else None
    upper = ceiling if order is None else order if ceiling is None else min(order, ceiling)
    below_lowest = None if lowest is None else lowest - 1
    window = _StoreWindow(filters, below=upper, above=below_lowest, limit=need)
    if sources.drafts is not None:
        entries.update((row.id, row) for row in await _store_drafts(sources.drafts, window))
    if sources.base is not None:
        items = (
            sources.small
            if sources.small is not None
            else await gather_older(
                sources.base,
                *_window_reader(ctx, sources.base),
                upper=upper,
                need=need,
                floor=lowest or 0,
            )
        )
        entries.update((i.workflow_id, i) for i in items if upper is None or i.order < upper)
    if sources.archived is not None:
        entries.update((row.id, row) for row in await _store_archived(sources.archived, window))
    ordered = sorted(entries.values(), key=_key, reverse=True)
    return ordered[:limit], len(ordered) > limit


# The latest creation time a filter may name: ProtocolOrder (seconds * 1e9) stays below 2**63.
MAX_CREATED_S = 9_000_000_000.0


def _check_list_request(
    filters: ListFilters, limit: int, starting_after: str | None, ending_before: str | None
) -> None:
    """InvalidRequestError for a bad limit, cursor pair or filter value."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequestError(f"limit must be between 1 and {MAX_LIMIT}")
    if starting_after is not None and ending_before is not None:
        raise InvalidRequestError("give starting_after or ending_before, not both")
    status, task_queue, ticket_id = filters.status, filters.task_queue, filters.ticket_id
    if status is not None and status not in {s.value for s in WorkflowStatus}:
        raise InvalidRequestError(
            f"unknown status {status!r}; one of: {', '.join(s.value for s in WorkflowStatus)}"
        )
    if task_queue is not None and task_queue not in {q.value for q in TaskQueue}:
        raise InvalidRequestError(
            f"unknown task queue {task_queue!r}; one of: {', '.join(q.value for q in TaskQueue)}"
        )
    trigger = filters.trigger_type
    if trigger is not None and trigger not in {t.value for t in TriggerType}:
        raise InvalidRequestError(
            f"unknown trigger_type {trigger!r}; one of: {', '.join(t.value for t in TriggerType)}"
        )
    if ticket_id is not None and ticket_number(ticket_id) is None:
        raise InvalidRequestError(
            f"ticket_id {ticket_id[:40]!r} is not a ticket id (TKT- and 1 to 12 digits)"
        )
    if filters.name is not None and not 1 <= len(filters.name) <= MAX_NAME_FILTER:
        raise InvalidRequestError(f"name must have 1 to {MAX_NAME_FILTER} characters")
    after, before = filters.created_after, filters.created_before
    for label, value in (("created_after", after), ("created_before", before)):
        if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_CREATED_S):
            raise InvalidRequestError(f"{label} must be Unix seconds from 0 to {MAX_CREATED_S:.0f}")
    if after is not None and before is not None and after >= before:
        raise InvalidRequestError("created_after must be earlier than created_before")


@dataclass(frozen=True)
class _StoreWindow:
    filters: ListFilters
    below: int | None
    above: int | None
    limit: int
    newest_first: bool = True


async def _store_archived(
    maker: async_sessionmaker[AsyncSession], window: _StoreWindow
) -> list[ArchivedWorkflow]:
    f = window.filters
    async with maker() as session:
        return await list_archived(
            session,
            task_queue=f.task_queue,
            ticket_id=f.ticket_id,
            name=f.name,
            trigger_type=f.trigger_type,
            below=window.below,
            above=window.above,
            limit=window.limit,
            newest_first=window.newest_first,
        )


async def _store_drafts(
    maker: async_sessionmaker[AsyncSession], window: _StoreWindow
) -> list[DraftWorkflow]:
    f = window.filters
    async with maker() as session:
        return await list_drafts(
            session,
            task_queue=f.task_queue,
            ticket_id=f.ticket_id,
            name=f.name,
            below=window.below,
            above=window.above,
            limit=window.limit,
            newest_first=window.newest_first,
        )


async def _settle_archived(ctx: TemporalContext, page: list[_Entry], *, keep: bool) -> list[_Entry]:
    """Closed Temporal items that the archive already holds (their deletion is under way): as
    archived when ``keep``, else left out."""
    closed = [e.workflow_id for e in page if isinstance(e, _Item) and _closed(e.execution.status)]
    if not closed:
        return page
    async with ctx.sessionmaker() as session:
        rows = await archived_rows(session, workflow_ids=closed)
    if not rows:
        return page
    settled: list[_Entry] = []
    for entry in page:
        row = rows.get(entry.workflow_id) if isinstance(entry, _Item) else None
        if row is None:
            settled.append(entry)
        elif keep:
            settled.append(row)
    return settled


async def _entry_view(
    ctx: TemporalContext, entry: _Entry, gate: asyncio.Semaphore, precise: bool
) -> dict[str, Any]:
    if isinstance(entry, ArchivedWorkflow):
        return archived_view(entry, precise=precise)
    if isinstance(entry, DraftWorkflow):
        return draft_view(entry)
    return await _view_of(ctx, entry, gate, precise)


def _key(entry: _Entry) -> tuple[int, str]:
    if isinstance(entry, (ArchivedWorkflow, DraftWorkflow)):
        return (entry.protocol_order, entry.id)
    return (entry.order, entry.workflow_id)
