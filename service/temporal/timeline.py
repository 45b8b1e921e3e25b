"""A workflow's timeline, built from its real Temporal history.

History events map onto the timeline vocabulary of docs/architecture.md, with the plan's own texts:

- the first workflow task (after any start delay) -> ``workflow_started`` ("Manually initiated",
  "Triggered by ticket TKT-4829", ...);
- an activity scheduled / completed / failed, timed out or cancelled -> ``activity_started``
  (the step's running text) / ``activity_completed`` (the activity's own completion text) /
  ``activity_failed``; for a compensation, ``compensation_started`` / ``compensation_completed``;
- a memo upsert recording a signal wait -> ``activity_started`` ("Awaiting manager approval"),
  a wait that timed out and went on -> ``activity_completed``;
- an accepted ``signal`` update -> ``signal_received`` (the step's completion text and the
  payload); accepted ``pause`` / ``resume`` updates -> ``workflow_paused`` / ``workflow_resumed``;
- the closing event -> ``workflow_completed``, ``workflow_failed`` (with the failure) or
  ``workflow_cancelled`` (with the reason given to the cancel request).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.converter import DataConverter

from protocol_lab.domain import EventType, SignalStep, TimelineEvent, WorkflowPlan
from service.temporal.messages import (
    CANCELLED_FAILURE_TYPE,
    MEMO_STATE,
    PAUSE_UPDATE,
    RESUME_UPDATE,
    SIGNAL_UPDATE,
    PlanInput,
    SignalInput,
    StepInput,
    StepOutcome,
)

__all__ = ["HistoryTimeline", "build_timeline", "started_detail"]


@dataclass
class HistoryTimeline:
    """What a history says: the execution's input, its timeline and its key times."""

    plan_input: PlanInput | None
    events: list[TimelineEvent] = field(default_factory=list)
    started_at: float | None = None
    closed_at: float | None = None
    cancel_reason: str | None = None


def started_detail(trigger_type: str, input: dict[str, Any]) -> str:
    """The detail of ``workflow_started`` for a trigger type and an input."""
    ticket = input.get("ticket_id")
    if trigger_type == "manual":
        return "Manually initiated"
    if trigger_type == "scheduled":
        return "Started on schedule"
    if isinstance(ticket, str) and ticket:
        return f"Triggered by ticket {ticket}"
    return "Triggered by event" if trigger_type == "event_based" else "Automatically triggered"


def _ts(event: HistoryEvent) -> float:
    return event.event_time.ToDatetime().timestamp() if event.HasField("event_time") else 0.0


def _failure_message(failure: Failure) -> str:
    message = failure.message or "failed"
    if failure.HasField("cause") and failure.cause.message and failure.cause.message != message:
        message = f"{message}: {failure.cause.message}"
    return message


def _payload_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(", ", ": "), default=str)


async def build_timeline(
    workflow_id: str,
    events: list[HistoryEvent],
    *,
    converter: DataConverter,
) -> HistoryTimeline:
    """Map a history onto timeline events (see the module docstring)."""
    result = HistoryTimeline(plan_input=None)
    plan: WorkflowPlan | None = None
    name, queue, trigger = "", "itsm-workflows", "manual"
    steps: dict[int, StepInput] = {}
    signalled: set[str] = set()
    started = False

    def add(kind: EventType, at: float, detail: str | None, step: str | None = None) -> None:
        result.events.append(
            TimelineEvent(
                workflow_id=workflow_id,
                workflow_name=name,
                task_queue=queue,
                trigger_type=trigger,
                event=kind.value,
                timestamp=at,
                detail=detail,
                step=step,
            )
        )

    for event in events:
        kind = event.event_type
        at = _ts(event)
        if kind == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attrs = event.workflow_execution_started_event_attributes
            [inp] = await converter.decode(attrs.input.payloads, [PlanInput])
            result.plan_input = inp
            plan = WorkflowPlan.model_validate(inp.plan)
            name, queue, trigger = inp.name, inp.task_queue, inp.trigger_type
            backoff = attrs.first_workflow_task_backoff.ToTimedelta().total_seconds()
            result.started_at = at + backoff
        elif kind == HistoryEventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED and not started:
            started = True
            if result.cancel_reason is not None:
                # cancelled while still a draft: it never started
                result.started_at = None
                continue
            result.started_at = at
            detail = started_detail(trigger, result.plan_input.input if result.plan_input else {})
            add(EventType.WORKFLOW_STARTED, at, detail)
        elif kind == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs_s = event.activity_task_scheduled_event_attributes
            [step_in] = await converter.decode(attrs_s.input.payloads, [StepInput])
            steps[event.event_id] = step_in
            add(
                EventType.COMPENSATION_STARTED
                if step_in.compensation
                else EventType.ACTIVITY_STARTED,
                at,
                step_in.detail,
                step_in.step_id,
            )
        elif kind == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs_c = event.activity_task_completed_event_attributes
            step_in = steps[attrs_c.scheduled_event_id]
            detail = step_in.done
            if attrs_c.result.payloads:
                [outcome] = await converter.decode(attrs_c.result.payloads, [StepOutcome])
                detail = outcome.detail
            add(
                EventType.COMPENSATION_COMPLETED
                if step_in.compensation
                else EventType.ACTIVITY_COMPLETED,
                at,
                detail,
                step_in.step_id,
            )
        elif kind == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            attrs_f = event.activity_task_failed_event_attributes
            step_in = steps[attrs_f.scheduled_event_id]
            message = _failure_message(attrs_f.failure)
            add(
                EventType.ACTIVITY_FAILED,
                at,
                f"{step_in.detail} failed: {message}",
                step_in.step_id,
            )
        elif kind == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            step_in = steps[event.activity_task_timed_out_event_attributes.scheduled_event_id]
            add(EventType.ACTIVITY_FAILED, at, f"{step_in.detail} timed out", step_in.step_id)
        elif kind == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
            step_in = steps[event.activity_task_canceled_event_attributes.scheduled_event_id]
            add(EventType.ACTIVITY_FAILED, at, f"{step_in.detail} cancelled", step_in.step_id)
        elif kind == HistoryEventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
            memo = event.workflow_properties_modified_event_attributes.upserted_memo.fields
            if MEMO_STATE not in memo:
                continue
            [state] = await converter.decode([memo[MEMO_STATE]], [dict])
            transition = state.get("transition") if isinstance(state, dict) else None
            if not isinstance(transition, dict):
                continue
            if transition.get("event") == "signal_wait":
                add(
                    EventType.ACTIVITY_STARTED, at, transition.get("detail"), transition.get("step")
                )
            elif transition.get("event") == "signal_timeout":
                add(
                    EventType.ACTIVITY_COMPLETED,
                    at,
                    transition.get("detail"),
                    transition.get("step"),
                )
        elif kind == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            update = request.input.name
            if update == SIGNAL_UPDATE:
                [sig] = await converter.decode(request.input.args.payloads, [SignalInput])
                target = _signal_step(plan, sig.signal_name, signalled)
                if target is not None:
                    signalled.add(target.id)
                text = target.done if target is not None else sig.signal_name
                if sig.payload:
                    text = f"{text} ({sig.signal_name}: {_payload_text(sig.payload)})"
                add(EventType.SIGNAL_RECEIVED, at, text, target.id if target else None)
            elif update in (PAUSE_UPDATE, RESUME_UPDATE):
                reason = ""
                if request.input.args.payloads:
                    [control] = await converter.decode(request.input.args.payloads, [dict])
                    reason = str(control.get("reason") or "") if isinstance(control, dict) else ""
                if update == PAUSE_UPDATE:
                    add(EventType.WORKFLOW_PAUSED, at, reason or "Paused by user")
                else:
                    add(EventType.WORKFLOW_RESUMED, at, reason or "Resumed by user")
        elif kind == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            cause = event.workflow_execution_cancel_requested_event_attributes.cause
            result.cancel_reason = cause or "Cancelled"
        elif kind == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            result.closed_at = at
            add(EventType.WORKFLOW_COMPLETED, at, "Workflow completed")
        elif kind == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            result.closed_at = at
            failure = event.workflow_execution_failed_event_attributes.failure
            if failure.application_failure_info.type == CANCELLED_FAILURE_TYPE:
                add(EventType.WORKFLOW_CANCELLED, at, failure.message)
            else:
                add(EventType.WORKFLOW_FAILED, at, _failure_message(failure))
        elif kind == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
            result.closed_at = at
            add(EventType.WORKFLOW_CANCELLED, at, result.cancel_reason or "Cancelled")
        elif kind == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
            result.closed_at = at
            reason = event.workflow_execution_terminated_event_attributes.reason
            add(EventType.WORKFLOW_FAILED, at, f"Terminated: {reason}" if reason else "Terminated")
        elif kind == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
            result.closed_at = at
            add(EventType.WORKFLOW_FAILED, at, "Timed out")
    return result


def _signal_step(plan: WorkflowPlan | None, name: str, taken: set[str]) -> SignalStep | None:
    if plan is None:
        return None
    for step in plan.steps:
        if isinstance(step, SignalStep) and step.signal == name and step.id not in taken:
            return step
    return None
