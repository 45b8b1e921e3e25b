"""A workflow's timeline, built from its real Temporal history: the one history mapper.

The service's API, its archive, ``Timelines.from_temporal`` and ``load_replayed`` all map
histories here. It maps the service's own plan workflow (``ProtocolPlan``) with the plan's texts
and step ids, read from the inputs recorded in the history, and any other workflow with its
activity types, activity ids and signal names.

History events map onto the timeline vocabulary of docs/architecture.md:

- the first workflow task (after any start delay) -> ``workflow_started`` ("Manually initiated",
  "Triggered by ticket TKT-4829", ... for a plan; "Workflow started" otherwise); a workflow
  cancelled before its first task never started and has no such event;

Every text of a plan's timeline comes from :mod:`protocol_lab.domain.details`, the functions the
simulator uses too, and the structured fields are set from the history, never from a text:
``attempt`` from ActivityTaskStarted's attempt, ``outcome`` from the closing event (and, for a
plan's failure, from the failure's details, where the workflow records the step, outcome and
actor), ``actor`` from a signal's payload (``approved_by`` or ``by``);
- ActivityTaskStarted -> ``activity_started`` (``compensation_started`` for a compensation),
  stamped with the started event's own time: the moment a worker began the step. The wait from
  ActivityTaskScheduled until then is the queue wait for a worker, which the analyses read as the
  gap before ``activity_started``, as the simulator records it (a step starts when a worker slot
  is granted). An activity scheduled but not yet taken by a worker has no ``activity_started``.
  For an activity with a retry policy Temporal writes ActivityTaskStarted only when the activity
  closes, just before its closing event, carrying the start time of the last attempt; so the
  timeline is ordered by time, not by the history's order, and a running activity shows its start
  once it has closed. Earlier attempts of a retried activity leave no event: their time reads as
  wait;
- ActivityTaskCompleted -> ``activity_completed`` (a plan step's own completion text) or
  ``compensation_completed``; ActivityTaskFailed / TimedOut / Canceled -> ``activity_failed``
  (outcome ``failed`` / ``timed_out`` / ``cancelled``);
- a plan's memo upsert recording a signal wait -> ``activity_started`` ("Awaiting manager
  approval"); a wait that timed out and went on -> ``activity_completed``;
- a plan's memo upsert recording a signal it took -> ``signal_received`` (the step's completion
  text, or the decision of a rejection; outcome ``completed`` or ``rejected``; the sender as
  actor), so a signal the plan ignored leaves no event (its WorkflowExecutionSignaled is not
  mapped); an accepted ``signal`` update (how signals arrived before they were Temporal
  signals) maps the same way; accepted ``pause`` / ``resume`` updates -> ``workflow_paused`` /
  ``workflow_resumed``; any other accepted update and WorkflowExecutionSignaled ->
  ``signal_received`` (step: the plan step waiting for that name, from ``signal_steps``);
- the closing event -> ``workflow_completed`` (also ContinuedAsNew), ``workflow_failed`` (with
  the failure; Terminated, TimedOut), or ``workflow_cancelled`` (with the reason given to the
  cancel request, or the message of a plan's ``on_timeout: cancel`` failure).

``temporalio`` is imported inside the functions only, so the domain needs it just to map.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from protocol_lab.domain import details
from protocol_lab.domain.catalog import SignalStep, WorkflowPlan
from protocol_lab.domain.extras import MissingExtraError
from protocol_lab.domain.timeline import EventType, Outcome, TimelineEvent
from protocol_lab.domain.wire import (
    CANCELLED_FAILURE_TYPE,
    MEMO_STATE,
    PAUSE_UPDATE,
    PLAN_SIGNAL,
    RESUME_UPDATE,
    SIGNAL_UPDATE,
    WORKFLOW_TYPE,
    PlanInput,
    SignalInput,
    StepInput,
)

if TYPE_CHECKING:
    from temporalio.api.failure.v1 import Failure
    from temporalio.api.history.v1 import HistoryEvent
    from temporalio.converter import DataConverter

__all__ = ["HistoryTimeline", "add_running_activities", "build_timeline"]


@dataclass
class HistoryTimeline:
    """What a history says: the execution's input, its timeline and its key times.

    ``plan_input`` is set for the service's plan workflow only; ``started_at`` is the first
    workflow task (``None`` for a workflow cancelled before it), ``closed_at`` the closing event.
    """

    plan_input: PlanInput | None
    events: list[TimelineEvent] = field(default_factory=list)
    started_at: float | None = None
    closed_at: float | None = None
    cancel_reason: str | None = None
    # activities scheduled that the history shows neither started nor closed, by activity id
    unstarted: dict[str, _Activity] = field(default_factory=dict)
    # workflow id, workflow name, task queue, trigger type: what labels each event
    labels: tuple[str, str, str, str] = ("", "", "", "manual")


@dataclass
class _Activity:
    """A scheduled activity as the timeline names it."""

    step: str | None
    detail: str
    done: str
    compensation: bool = False
    attempt: int | None = None


def _unknown() -> _Activity:
    """An activity whose scheduling is not in the events given (a history read from the middle)."""
    return _Activity("activity", "activity", "activity")


def _ts(event: HistoryEvent) -> float:
    if not event.HasField("event_time"):
        return 0.0
    return event.event_time.seconds + event.event_time.nanos / 1e9


def _failure_message(failure: Failure) -> str:
    message = failure.message or "failed"
    if failure.HasField("cause") and failure.cause.message and failure.cause.message != message:
        message = f"{message}: {failure.cause.message}"
    return message


def _actor(payload: Mapping[str, Any]) -> str | None:
    who = payload.get("approved_by") or payload.get("by")
    return who if isinstance(who, str) and who else None


async def _failure_facts(failure: Failure, decoder: DataConverter) -> dict[str, Any]:
    """The step, outcome and actor a plan recorded in its failure's details (empty if none)."""
    info = failure.application_failure_info
    if not info.details.payloads:
        return {}
    [facts] = await decoder.decode(info.details.payloads[:1], [dict])
    if not isinstance(facts, dict):
        return {}
    return {k: facts.get(k) for k in ("step", "outcome", "actor") if facts.get(k) is not None}


def _is_step_id(activity_id: str) -> bool:
    # the SDK numbers activities "1", "2", ... unless the workflow names them
    return bool(activity_id) and not activity_id.isdigit()


class _Mapper:
    """The mapping of one execution's history: what it has seen so far, and one handler per
    kind of history event (:func:`build_timeline` dispatches to them)."""

    def __init__(
        self,
        workflow_id: str,
        decoder: DataConverter,
        *,
        workflow_name: str | None,
        task_queue: str | None,
        trigger_type: str | None,
        signal_steps: Mapping[str, str] | None,
    ) -> None:
        self.workflow_id = workflow_id
        self.decoder = decoder
        self.steps_of: Mapping[str, str] = signal_steps or {}
        self.result = HistoryTimeline(plan_input=None)
        self.plan: WorkflowPlan | None = None
        self.plan_steps: set[str] = set()
        self.is_plan = False
        self.name, self.queue = workflow_name or "", task_queue or ""
        self.trigger = trigger_type or "manual"
        self.activities: dict[int, _Activity] = {}
        # scheduled event id -> activity id, until started or closed
        self.unstarted: dict[int, str] = {}
        self.signalled: set[str] = set()
        self.started = False

    def add(
        self,
        kind: EventType,
        at: float,
        detail: str | None,
        step: str | None = None,
        *,
        attempt: int | None = None,
        outcome: Outcome | None = None,
        actor: str | None = None,
    ) -> None:
        """Append one timeline event, labelled with the execution's name, queue and trigger."""
        self.result.events.append(
            TimelineEvent(
                workflow_id=self.workflow_id,
                workflow_name=self.name,
                task_queue=self.queue,
                trigger_type=self.trigger,
                event=kind.value,
                timestamp=at,
                detail=detail,
                step=step,
                attempt=attempt,
                outcome=outcome.value if outcome is not None else None,
                actor=actor,
            )
        )

    def activity(self, scheduled_event_id: int) -> _Activity:
        """The activity scheduled by that event (a placeholder if the history lacks it)."""
        return self.activities.setdefault(scheduled_event_id, _unknown())

    # -- the execution ------------------------------------------------------------------

    async def execution_started(self, event: HistoryEvent, at: float) -> None:
        attrs = event.workflow_execution_started_event_attributes
        self.is_plan = attrs.workflow_type.name == WORKFLOW_TYPE
        self.name = self.name or attrs.workflow_type.name
        self.queue = self.queue or attrs.task_queue.name
        if self.is_plan:
            [inp] = await self.decoder.decode(attrs.input.payloads, [PlanInput])
            self.result.plan_input = inp
            self.plan = WorkflowPlan.model_validate(inp.plan)
            self.plan_steps = {step.id for step in self.plan.steps}
            self.name, self.queue, self.trigger = inp.name, inp.task_queue, inp.trigger_type
        backoff = attrs.first_workflow_task_backoff.ToTimedelta().total_seconds()
        self.result.started_at = at + backoff

    async def workflow_task_scheduled(self, event: HistoryEvent, at: float) -> None:
        if self.started:
            return
        self.started = True
        if self.result.cancel_reason is not None:
            # cancelled while still a draft: it never started
            self.result.started_at = None
            return
        self.result.started_at = at
        if self.is_plan:
            plan_input = self.result.plan_input
            inputs = plan_input.input if plan_input else {}
            self.add(EventType.WORKFLOW_STARTED, at, details.workflow_started(self.trigger, inputs))
        else:
            self.add(EventType.WORKFLOW_STARTED, at, "Workflow started")

    async def cancel_requested(self, event: HistoryEvent, at: float) -> None:
        cause = event.workflow_execution_cancel_requested_event_attributes.cause
        self.result.cancel_reason = cause or details.CANCELLED_BY_USER

    async def completed(self, event: HistoryEvent, at: float) -> None:
        self.result.closed_at = at
        self.add(
            EventType.WORKFLOW_COMPLETED, at, details.WORKFLOW_COMPLETED, outcome=Outcome.COMPLETED
        )

    async def failed(self, event: HistoryEvent, at: float) -> None:
        self.result.closed_at = at
        failure = event.workflow_execution_failed_event_attributes.failure
        facts = await _failure_facts(failure, self.decoder) if self.is_plan else {}
        cancelled = failure.application_failure_info.type == CANCELLED_FAILURE_TYPE
        self.add(
            EventType.WORKFLOW_CANCELLED if cancelled else EventType.WORKFLOW_FAILED,
            at,
            failure.message if facts else _failure_message(failure),
            facts.get("step"),
            outcome=Outcome(
                facts.get("outcome", Outcome.CANCELLED if cancelled else Outcome.FAILED)
            ),
            actor=facts.get("actor"),
        )

    async def cancelled(self, event: HistoryEvent, at: float) -> None:
        self.result.closed_at = at
        self.add(
            EventType.WORKFLOW_CANCELLED,
            at,
            self.result.cancel_reason or details.CANCELLED_BY_USER,
            outcome=Outcome.CANCELLED,
        )

    async def terminated(self, event: HistoryEvent, at: float) -> None:
        self.result.closed_at = at
        reason = event.workflow_execution_terminated_event_attributes.reason
        self.add(
            EventType.WORKFLOW_FAILED,
            at,
            f"Terminated: {reason}" if reason else "Terminated",
            outcome=Outcome.FAILED,
        )

    async def timed_out(self, event: HistoryEvent, at: float) -> None:
        self.result.closed_at = at
        self.add(EventType.WORKFLOW_FAILED, at, "Timed out", outcome=Outcome.TIMED_OUT)

    # -- activities ---------------------------------------------------------------------

    async def activity_scheduled(self, event: HistoryEvent, at: float) -> None:
        attrs = event.activity_task_scheduled_event_attributes
        if self.is_plan:
            [step_in] = await self.decoder.decode(attrs.input.payloads, [StepInput])
            self.activities[event.event_id] = _Activity(
                step_in.step_id, step_in.detail, step_in.done, step_in.compensation
            )
        else:
            type_name = attrs.activity_type.name
            step = attrs.activity_id if _is_step_id(attrs.activity_id) else type_name
            self.activities[event.event_id] = _Activity(step, type_name, type_name)
        self.unstarted[event.event_id] = attrs.activity_id

    async def activity_started(self, event: HistoryEvent, at: float) -> None:
        attrs = event.activity_task_started_event_attributes
        self.unstarted.pop(attrs.scheduled_event_id, None)
        act = self.activity(attrs.scheduled_event_id)
        act.attempt = attrs.attempt or 1
        self.add(
            EventType.COMPENSATION_STARTED if act.compensation else EventType.ACTIVITY_STARTED,
            at,
            act.detail,
            act.step,
            attempt=act.attempt,
        )

    async def activity_completed(self, event: HistoryEvent, at: float) -> None:
        sid = event.activity_task_completed_event_attributes.scheduled_event_id
        self.unstarted.pop(sid, None)
        act = self.activity(sid)
        self.add(
            EventType.COMPENSATION_COMPLETED if act.compensation else EventType.ACTIVITY_COMPLETED,
            at,
            act.done,
            act.step,
            attempt=act.attempt,
            outcome=Outcome.COMPLETED,
        )

    def _activity_ended(self, sid: int, at: float, how: Outcome, text: str) -> None:
        self.unstarted.pop(sid, None)
        act = self.activity(sid)
        self.add(EventType.ACTIVITY_FAILED, at, text, act.step, attempt=act.attempt, outcome=how)

    async def activity_failed(self, event: HistoryEvent, at: float) -> None:
        attrs = event.activity_task_failed_event_attributes
        act = self.activity(attrs.scheduled_event_id)
        cause = attrs.failure.message or "failed"
        text = details.activity_failed(act.detail, cause)
        self._activity_ended(attrs.scheduled_event_id, at, Outcome.FAILED, text)

    async def activity_timed_out(self, event: HistoryEvent, at: float) -> None:
        sid = event.activity_task_timed_out_event_attributes.scheduled_event_id
        text = details.activity_timed_out(self.activity(sid).detail)
        self._activity_ended(sid, at, Outcome.TIMED_OUT, text)

    async def activity_cancelled(self, event: HistoryEvent, at: float) -> None:
        sid = event.activity_task_canceled_event_attributes.scheduled_event_id
        text = f"{self.activity(sid).detail} cancelled"
        self._activity_ended(sid, at, Outcome.CANCELLED, text)

    # -- signals, updates and the plan's recorded state ----------------------------------

    async def properties_modified(self, event: HistoryEvent, at: float) -> None:
        if not self.is_plan:
            return
        memo = event.workflow_properties_modified_event_attributes.upserted_memo.fields
        if MEMO_STATE not in memo:
            return
        [state] = await self.decoder.decode([memo[MEMO_STATE]], [dict])
        transition = state.get("transition") if isinstance(state, dict) else None
        if not isinstance(transition, dict):
            return
        what = transition.get("event")
        if what == "signal_wait":
            self.add(
                EventType.ACTIVITY_STARTED, at, transition.get("detail"), transition.get("step")
            )
        elif what == "signal_received" and self.plan is not None:
            step_id = transition.get("step")
            target = self.plan.step(step_id) if step_id in self.plan_steps else None
            decision = transition.get("decision")
            rejected = isinstance(target, SignalStep) and decision in target.reject_values
            self.add(
                EventType.SIGNAL_RECEIVED,
                at,
                details.signal_received(target, decision if rejected else None)
                if isinstance(target, SignalStep)
                else str(step_id),
                step_id,
                outcome=Outcome.REJECTED if rejected else Outcome.COMPLETED,
                actor=transition.get("actor"),
            )
        elif what == "signal_timeout":
            self.add(
                EventType.ACTIVITY_COMPLETED,
                at,
                transition.get("detail"),
                transition.get("step"),
                outcome=Outcome.TIMED_OUT,
            )

    async def update_accepted(self, event: HistoryEvent, at: float) -> None:
        request = event.workflow_execution_update_accepted_event_attributes.accepted_request
        update = request.input.name
        if self.is_plan and update == SIGNAL_UPDATE:
            [sig] = await self.decoder.decode(request.input.args.payloads, [SignalInput])
            target = _signal_step(self.plan, sig.signal_name, self.signalled)
            decision = sig.payload.get("decision")
            rejected = target is not None and decision in target.reject_values
            if target is not None:
                self.signalled.add(target.id)
            self.add(
                EventType.SIGNAL_RECEIVED,
                at,
                details.signal_received(target, decision if isinstance(decision, str) else None)
                if target is not None
                else sig.signal_name,
                target.id if target else None,
                outcome=Outcome.REJECTED if rejected else Outcome.COMPLETED,
                actor=_actor(sig.payload),
            )
        elif self.is_plan and update in (PAUSE_UPDATE, RESUME_UPDATE):
            reason, actor = "", None
            if request.input.args.payloads:
                [control] = await self.decoder.decode(request.input.args.payloads, [dict])
                if isinstance(control, dict):
                    reason, actor = str(control.get("reason") or ""), _actor(control)
            paused = update == PAUSE_UPDATE
            self.add(
                EventType.WORKFLOW_PAUSED if paused else EventType.WORKFLOW_RESUMED,
                at,
                reason or (details.PAUSED_BY_USER if paused else details.RESUMED_BY_USER),
                actor=actor,
            )
        else:
            self.add(EventType.SIGNAL_RECEIVED, at, update, self.steps_of.get(update, update))

    async def signaled(self, event: HistoryEvent, at: float) -> None:
        signal = event.workflow_execution_signaled_event_attributes.signal_name
        if self.is_plan and signal == PLAN_SIGNAL:
            return  # mapped from the memo upsert that records whether the plan took it
        self.add(EventType.SIGNAL_RECEIVED, at, signal, self.steps_of.get(signal, signal))

    def finish(self) -> HistoryTimeline:
        """The timeline, ordered by time, with its labels and the activities not yet started."""
        result = self.result
        result.unstarted = {
            activity_id: self.activities[sid] for sid, activity_id in self.unstarted.items()
        }
        result.labels = (self.workflow_id, self.name, self.queue, self.trigger)
        # ActivityTaskStarted of a retried activity is written when it closes, with its own
        # (earlier) time; sorted() is stable, so equal times keep the history's order
        result.events = sorted(result.events, key=lambda e: e.timestamp)
        return result


def _handlers(mapper: _Mapper) -> dict[int, Callable[[HistoryEvent, float], Awaitable[None]]]:
    """History event type -> the mapper's handler; other types leave no timeline event."""
    from temporalio.api.enums.v1 import EventType as History

    return {
        History.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: mapper.execution_started,
        History.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED: mapper.workflow_task_scheduled,
        History.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: mapper.activity_scheduled,
        History.EVENT_TYPE_ACTIVITY_TASK_STARTED: mapper.activity_started,
        History.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: mapper.activity_completed,
        History.EVENT_TYPE_ACTIVITY_TASK_FAILED: mapper.activity_failed,
        History.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: mapper.activity_timed_out,
        History.EVENT_TYPE_ACTIVITY_TASK_CANCELED: mapper.activity_cancelled,
        History.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED: mapper.properties_modified,
        History.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: mapper.update_accepted,
        History.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: mapper.signaled,
        History.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED: mapper.cancel_requested,
        History.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: mapper.completed,
        History.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: mapper.completed,
        History.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: mapper.failed,
        History.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: mapper.cancelled,
        History.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: mapper.terminated,
        History.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: mapper.timed_out,
    }


async def build_timeline(
    workflow_id: str,
    events: Iterable[HistoryEvent],
    *,
    converter: DataConverter | None = None,
    workflow_name: str | None = None,
    task_queue: str | None = None,
    trigger_type: str | None = None,
    signal_steps: Mapping[str, str] | None = None,
) -> HistoryTimeline:
    """Map one execution's history events onto timeline events (see the module docstring).

    ``converter`` decodes payloads (the SDK's default if not given). For a workflow other than
    the service's plan, ``workflow_name`` (default: the workflow type), ``task_queue`` (default:
    the one it started on) and ``trigger_type`` (default ``manual``) label its rows, and
    ``signal_steps`` maps a signal or update name to the plan step waiting for it (unknown names
    are kept as the step). A plan's own input overrides all four. Events are ordered by time.
    """
    try:
        from temporalio.converter import DataConverter
    except ImportError as exc:
        raise MissingExtraError("temporal", "Mapping a Temporal history", exc.name) from exc

    mapper = _Mapper(
        workflow_id,
        converter or DataConverter.default,
        workflow_name=workflow_name,
        task_queue=task_queue,
        trigger_type=trigger_type,
        signal_steps=signal_steps,
    )
    handlers = _handlers(mapper)
    for event in events:
        handler = handlers.get(event.event_type)
        if handler is not None:
            await handler(event, _ts(event))
    return mapper.finish()


def add_running_activities(timeline: HistoryTimeline, started_at: Mapping[str, float]) -> None:
    """Add ``activity_started`` for the activities a worker is running right now.

    A running activity with a retry policy has no ActivityTaskStarted in the history until it
    closes; its start is known from the execution's description instead (its pending
    activities' last start time). ``started_at`` maps an activity id to that time; ids the
    history shows started or closed already, or does not know, are ignored.
    """
    workflow_id, name, queue, trigger = timeline.labels
    for activity_id, at in started_at.items():
        act = timeline.unstarted.pop(activity_id, None)
        if act is None:
            continue
        timeline.events.append(
            TimelineEvent(
                workflow_id=workflow_id,
                workflow_name=name,
                task_queue=queue,
                trigger_type=trigger,
                event=(
                    EventType.COMPENSATION_STARTED
                    if act.compensation
                    else EventType.ACTIVITY_STARTED
                ).value,
                timestamp=at,
                detail=act.detail,
                step=act.step,
            )
        )
    timeline.events.sort(key=lambda e: e.timestamp)


def _signal_step(plan: WorkflowPlan | None, name: str, taken: set[str]) -> SignalStep | None:
    if plan is None:
        return None
    for step in plan.steps:
        if isinstance(step, SignalStep) and step.signal == name and step.id not in taken:
            return step
    return None
