"""Timeline rows straight from Temporal: list executions, fetch their histories concurrently.

``temporalio`` is imported only inside these functions, so the library never needs it at
import time. The mapping from history events to timeline events:

============================================  ===================================
Temporal history event                        timeline event
============================================  ===================================
WorkflowExecutionStarted                      workflow_started
ActivityTaskStarted (Scheduled if never run)  activity_started
ActivityTaskCompleted                         activity_completed
ActivityTaskFailed / ActivityTaskTimedOut     activity_failed
WorkflowExecutionSignaled, Update accepted    signal_received (step: the plan's step)
WorkflowExecutionCompleted / ContinuedAsNew   workflow_completed
WorkflowExecutionFailed / Terminated / TimedOut  workflow_failed
WorkflowExecutionCanceled                     workflow_cancelled
============================================  ===================================

The workflow name, trigger type, priority and ticket come from search attributes or the memo
when the workflow sets them (keys compared case-insensitively, ``WorkflowName`` or ``name``,
``TriggerType``, ``Priority``, ``TicketId``); otherwise the name is the workflow type and the
trigger type ``manual``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from protocol_lab.domain import TriggerType

__all__ = ["fetch_rows", "history_rows"]

_NAME_KEYS = ("workflowname", "workflow_name", "name")
_TRIGGER_KEYS = ("triggertype", "trigger_type")
_PRIORITY_KEYS = ("priority",)
_TICKET_KEYS = ("ticketid", "ticket_id", "ticket")


def _lookup(sources: Sequence[Mapping[Any, Any]], keys: tuple[str, ...]) -> str | None:
    for source in sources:
        lowered = {str(k).lower(): v for k, v in source.items()}
        for key in keys:
            value = lowered.get(key)
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            if value is not None and value != "":
                return str(value)
    return None


def _is_step_id(activity_id: str) -> bool:
    return bool(activity_id) and not activity_id.isdigit()


def history_rows(
    history: Any,
    *,
    workflow_id: str,
    workflow_name: str,
    task_queue: str,
    trigger_type: str,
    signal_steps: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Timeline rows (timestamps as UTC datetimes) from one ``WorkflowHistory``.

    ``signal_steps`` maps a signal (or update) name to the plan step that waits for it, so
    signal rows carry the catalog's step id; unknown names are kept as the step.
    """
    steps_of = signal_steps or {}
    from temporalio.api.enums.v1 import EventType as T

    base = {
        "workflow_id": workflow_id,
        "workflow_name": workflow_name,
        "task_queue": task_queue,
        "trigger_type": trigger_type,
    }
    scheduled: dict[int, tuple[str, str]] = {}
    started: set[int] = set()
    rows: list[dict[str, Any]] = []

    def add(event: str, when: datetime, detail: str | None, step: str | None = None) -> None:
        rows.append({**base, "event": event, "timestamp": when, "detail": detail, "step": step})

    pending: dict[int, datetime] = {}
    for ev in history.events:
        when = ev.event_time.ToDatetime(tzinfo=UTC)
        kind = ev.event_type
        if kind == T.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            add("workflow_started", when, "Workflow started")
        elif kind == T.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = ev.activity_task_scheduled_event_attributes
            name = attrs.activity_type.name
            step = attrs.activity_id if _is_step_id(attrs.activity_id) else name
            scheduled[ev.event_id] = (name, step)
            pending[ev.event_id] = when
        elif kind == T.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            sid = ev.activity_task_started_event_attributes.scheduled_event_id
            name, step = scheduled.get(sid, ("activity", "activity"))
            started.add(sid)
            add("activity_started", when, name, step)
        elif kind in (
            T.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
            T.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            T.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
            T.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
        ):
            if kind == T.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                sid = ev.activity_task_completed_event_attributes.scheduled_event_id
                event, reason = "activity_completed", None
            elif kind == T.EVENT_TYPE_ACTIVITY_TASK_FAILED:
                a = ev.activity_task_failed_event_attributes
                sid, event, reason = a.scheduled_event_id, "activity_failed", a.failure.message
            elif kind == T.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
                a2 = ev.activity_task_timed_out_event_attributes
                sid, event, reason = a2.scheduled_event_id, "activity_failed", "timed out"
            else:
                a3 = ev.activity_task_canceled_event_attributes
                sid, event, reason = a3.scheduled_event_id, "activity_failed", "cancelled"
            name, step = scheduled.get(sid, ("activity", "activity"))
            if sid not in started:
                add("activity_started", pending.get(sid, when), name, step)
            add(event, when, f"{name}: {reason}" if reason else name, step)
        elif kind == T.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signal = ev.workflow_execution_signaled_event_attributes.signal_name
            add("signal_received", when, signal, steps_of.get(signal, signal))
        elif kind == T.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            update = ev.workflow_execution_update_accepted_event_attributes
            name = update.accepted_request.input.name
            add("signal_received", when, name, steps_of.get(name, name))
        elif kind in (
            T.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
            T.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
        ):
            add("workflow_completed", when, "Workflow completed")
        elif kind == T.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            message = ev.workflow_execution_failed_event_attributes.failure.message
            add("workflow_failed", when, message or "Workflow failed")
        elif kind == T.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
            reason = ev.workflow_execution_terminated_event_attributes.reason
            add("workflow_failed", when, f"Terminated: {reason}" if reason else "Terminated")
        elif kind == T.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
            add("workflow_failed", when, "Timed out")
        elif kind == T.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
            add("workflow_cancelled", when, "Cancelled")
    return rows


async def fetch_rows(
    client: Any,
    *,
    query: str | None = None,
    concurrency: int = 16,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """List executions matching ``query`` and map their histories, ``concurrency`` at a time.

    Returns ``(rows, attributes)``: timeline rows, and one attribute dict per workflow
    (``workflow_id``, ``run_id``, ``priority``, ``ticket_id``).
    """
    from protocol_lab.domain import SignalStep, load_catalog

    signal_steps: dict[str, dict[str, str]] = {
        plan.name: {s.signal: s.id for s in plan.steps if isinstance(s, SignalStep)}
        for plan in load_catalog().values()
    }
    limit = asyncio.Semaphore(max(1, concurrency))
    executions = [execution async for execution in client.list_workflows(query)]

    async def one(execution: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with limit:
            try:
                memo = dict(await execution.memo())
            except Exception:  # a memo we cannot decode is simply not used
                memo = {}
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            history = await handle.fetch_history()
        sources = [dict(execution.search_attributes), memo]
        trigger = _lookup(sources, _TRIGGER_KEYS)
        if trigger not in {t.value for t in TriggerType}:
            trigger = TriggerType.MANUAL.value
        name = _lookup(sources, _NAME_KEYS) or execution.workflow_type
        rows = history_rows(
            history,
            workflow_id=execution.id,
            workflow_name=name,
            task_queue=execution.task_queue,
            trigger_type=trigger,
            signal_steps=signal_steps.get(name),
        )
        attrs = {
            "workflow_id": execution.id,
            "run_id": execution.run_id,
            "priority": _lookup(sources, _PRIORITY_KEYS),
            "ticket_id": _lookup(sources, _TICKET_KEYS),
        }
        return rows, attrs

    results = await asyncio.gather(*(one(e) for e in executions))
    rows = [row for chunk, _ in results for row in chunk]
    return rows, [attrs for _, attrs in results]
