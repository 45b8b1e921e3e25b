"""The one workflow that interprets every plan of the catalog, deterministically.

``ProtocolPlan`` receives a snapshot of a :class:`~protocol_lab.domain.WorkflowPlan` in its
input and walks its steps:

- an activity step runs the activity of its kind with the plan's retry policy and explicit
  timeouts (a heartbeat timeout lets a lost worker be noticed within seconds);
- a signal step waits for its named signal with the plan's timeout, then fails, continues or
  cancels as the plan says (``on_timeout``); a ``payload.decision`` among ``reject_values``
  ends the workflow as failed.

Signals arrive as the Temporal signal ``plan_signal``, which the server keeps durably: one sent
while no worker runs is taken when a worker comes back. The API answers whether the workflow will
act on it from the state the workflow records in its memo (the plan's signals and those it still
awaits). A signal for a later step of the plan is kept until that step is reached; a signal the
plan does not have, or whose step is already over, is ignored (and the API said so); a repeated
``request_id`` is ignored too. Pause and resume are Updates with validators, so the caller learns
at once whether the workflow took them; the ``signal`` update that carried signals before is kept
for executions that began with it.
Cancellation (and any failure) runs the compensations of the completed steps in reverse.

Every timer and emulated duration is divided by the input's ``time_scale``. Status, name,
trigger type, ticket and order are search attributes; the state is answered by the ``state``
query and mirrored in the memo (so a status read needs neither history nor worker), and each
transition the history cannot show by itself (a signal wait beginning, a wait timing out) is
recorded as a memo upsert that the timeline builder reads back.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    is_cancelled_exception,
)
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from protocol_lab.domain import details
    from protocol_lab.domain.catalog import (
        ActivityStep,
        OnTimeout,
        SignalStep,
        WorkflowPlan,
    )
    from protocol_lab.domain.timeline import Outcome
    from protocol_lab.domain.wire import (
        ACTIVITY_NAMES,
        CANCELLED_FAILURE_TYPE,
        MEMO_STATE,
        PAUSE_UPDATE,
        PLAN_SIGNAL,
        RESUME_UPDATE,
        SIGNAL_UPDATE,
        STATE_QUERY,
        WORKFLOW_TYPE,
        ControlInput,
        PlanInput,
        SignalInput,
        StepInput,
        StepOutcome,
        WorkflowState,
    )
    from service.temporal import search_attributes as sa

__all__ = [
    "HEARTBEAT_TIMEOUT",
    "MIN_ACTIVITY_TIMEOUT",
    "PlanWorkflow",
]

# Not scaled: how soon a lost worker's activity is retried elsewhere.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# Floor of an activity's start-to-close timeout once divided by time_scale.
MIN_ACTIVITY_TIMEOUT = 30.0
_MIN_TIMER = 0.01
_MIN_RETRY_INTERVAL = 0.05


class _PlanFailedError(Exception):
    """The plan cannot go on: compensate, then fail with this message.

    The step, outcome and actor travel as the failure's details, which the history mapper reads
    into the timeline's structured fields.
    """

    def __init__(
        self,
        message: str,
        *,
        step: str,
        outcome: Outcome,
        actor: str | None = None,
        type: str = "PlanFailed",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.facts: dict[str, Any] = {"step": step, "outcome": outcome.value, "actor": actor}


@workflow.defn(name=WORKFLOW_TYPE)
class PlanWorkflow:
    """Interprets one catalog plan (see the module docstring)."""

    @workflow.init
    def __init__(self, inp: PlanInput) -> None:
        self.inp = inp
        self.plan = WorkflowPlan.model_validate(inp.plan)
        self.scale = inp.time_scale if inp.time_scale > 0 else 1.0
        self.index = 0
        self.steps_completed = 0
        self.completed: list[ActivityStep] = []
        self.status = "active"
        self.paused = False
        self.finished = False
        self.awaiting: str | None = None
        # step id -> the signal that satisfies it (arrived early or on time)
        self.received: dict[str, SignalInput] = {}
        self.waits_over: set[str] = set()
        self.signal_requests: set[str] = set()  # every request id seen
        self.requests_taken: list[str] = []  # those of the signals taken

    # -- the plan ------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: PlanInput) -> dict[str, Any]:
        """Walk the plan; return a summary, or raise to end as failed or cancelled."""
        workflow.upsert_search_attributes([sa.STATUS.value_set("active")])
        try:
            for index, step in enumerate(self.plan.steps):
                self.index = index
                if self.paused:
                    self._publish()
                    await workflow.wait_condition(lambda: not self.paused)
                if isinstance(step, ActivityStep):
                    self._publish()
                    await self._run_activity(step)
                    self.completed.append(step)
                else:
                    await self._wait_signal(step)
                self.steps_completed += 1
        except asyncio.CancelledError:
            await self._compensate()
            self._close("failed")
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise
        except _PlanFailedError as failure:
            await self._compensate()
            self._close("failed")
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise ApplicationError(
                failure.message, failure.facts, type=failure.type, non_retryable=True
            ) from None
        self.index = len(self.plan.steps)
        self._close("completed")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return {"status": "completed", "steps_completed": self.steps_completed}

    def _step_input(self, step: ActivityStep, *, compensation: bool = False) -> StepInput:
        info = workflow.info()
        ticket = self.inp.input.get("ticket_id")
        if compensation and step.compensation is not None:
            comp = step.compensation
            return StepInput(
                workflow_id=info.workflow_id,
                workflow_name=self.plan.name,
                step_id=step.id,
                activity=comp.activity.value,
                detail=comp.detail,
                done=comp.detail,
                integration=comp.integration or step.integration,
                params={**step.params, **comp.params},
                duration=None,
                time_scale=self.scale,
                ticket_id=ticket if isinstance(ticket, str) else None,
                input=self.inp.input,
                compensation=True,
            )
        return StepInput(
            workflow_id=info.workflow_id,
            workflow_name=self.plan.name,
            step_id=step.id,
            activity=step.activity.value,
            detail=step.detail,
            done=step.done,
            integration=step.integration,
            params=dict(step.params),
            duration=step.duration.model_dump(mode="json"),
            failure_probability=step.failure_probability,
            time_scale=self.scale,
            ticket_id=ticket if isinstance(ticket, str) else None,
            input=self.inp.input,
        )

    def _activity_options(self, step: ActivityStep) -> dict[str, Any]:
        retry = step.retry
        initial = max(retry.initial_interval_s / self.scale, _MIN_RETRY_INTERVAL)
        maximum = max(retry.max_interval_s / self.scale, initial)
        return {
            "start_to_close_timeout": timedelta(
                seconds=max(step.timeout_s / self.scale, MIN_ACTIVITY_TIMEOUT)
            ),
            "heartbeat_timeout": HEARTBEAT_TIMEOUT,
            "retry_policy": RetryPolicy(
                initial_interval=timedelta(seconds=initial),
                backoff_coefficient=retry.backoff,
                maximum_interval=timedelta(seconds=maximum),
                maximum_attempts=retry.max_attempts,
                non_retryable_error_types=["NonRetryable"],
            ),
        }

    async def _run_activity(self, step: ActivityStep) -> StepOutcome:
        try:
            outcome: StepOutcome = await workflow.execute_activity(
                ACTIVITY_NAMES[step.activity.value],
                self._step_input(step),
                result_type=StepOutcome,
                summary=step.detail,
                **self._activity_options(step),
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                # the workflow is being cancelled: the running step stops, compensation follows
                raise asyncio.CancelledError() from None
            if isinstance(err.cause, ActivityTimeoutError):
                raise _PlanFailedError(
                    details.activity_timed_out(step.detail),
                    step=step.id,
                    outcome=Outcome.TIMED_OUT,
                ) from None
            cause = err.cause.message if isinstance(err.cause, ApplicationError) else str(err.cause)
            raise _PlanFailedError(
                details.activity_failed(step.detail, cause), step=step.id, outcome=Outcome.FAILED
            ) from None
        return outcome

    async def _wait_signal(self, step: SignalStep) -> None:
        self.awaiting = step.id
        self._publish(
            transition={
                "event": "signal_wait",
                "step": step.id,
                "detail": details.step_running(step),
            }
        )
        try:
            await workflow.wait_condition(
                lambda: step.id in self.received,
                timeout=max(step.timeout_s / self.scale, _MIN_TIMER),
                timeout_summary=step.id,
            )
        except TimeoutError:
            self.awaiting = None
            self.waits_over.add(step.id)
            if step.on_timeout is OnTimeout.CONTINUE:
                self._publish(
                    transition={
                        "event": "signal_timeout",
                        "step": step.id,
                        "detail": details.signal_timed_out(step),
                    }
                )
                return
            raise _PlanFailedError(
                details.signal_timed_out(step),
                step=step.id,
                outcome=Outcome.TIMED_OUT,
                type=(
                    CANCELLED_FAILURE_TYPE if step.on_timeout is OnTimeout.CANCEL else "PlanFailed"
                ),
            ) from None
        self.awaiting = None
        self.waits_over.add(step.id)
        signal = self.received[step.id]
        decision = signal.payload.get("decision")
        if isinstance(decision, str) and decision in step.reject_values:
            who = signal.payload.get("approved_by") or signal.payload.get("by")
            actor = who if isinstance(who, str) and who else None
            raise _PlanFailedError(
                details.signal_rejected(step, decision, actor),
                step=step.id,
                outcome=Outcome.REJECTED,
                actor=actor,
            )

    async def _compensate(self) -> None:
        """Undo the completed steps, newest first; a failing compensation does not stop the rest."""
        self.status = "failed"
        for step in reversed(self.completed):
            if step.compensation is None:
                continue
            options = self._activity_options(step)
            try:
                await workflow.execute_activity(
                    ACTIVITY_NAMES[step.compensation.activity.value],
                    self._step_input(step, compensation=True),
                    result_type=StepOutcome,
                    summary=step.compensation.detail,
                    **options,
                )
            except ActivityError:
                workflow.logger.warning("compensation of %s failed", step.id)
        self.completed.clear()

    def _close(self, status: str) -> None:
        self.finished = True
        self.awaiting = None
        self.status = status
        workflow.upsert_search_attributes([sa.STATUS.value_set(status)])
        self._publish()

    # -- state ---------------------------------------------------------------------------------

    def _current(self) -> SignalStep | ActivityStep | None:
        if self.finished or self.index >= len(self.plan.steps):
            return None
        return self.plan.steps[self.index]

    def _state(self, transition: dict[str, Any] | None = None) -> WorkflowState:
        current = self._current()
        return WorkflowState(
            status=self.status,
            current_step=current.detail if current is not None else None,
            current_step_id=current.id if current is not None else None,
            steps_completed=self.steps_completed,
            steps_total=len(self.plan.steps),
            awaiting_signal=(
                self.plan.step(self.awaiting).signal  # type: ignore[union-attr]
                if self.awaiting is not None
                else None
            ),
            paused=self.paused,
            signals_received=sorted(s.signal_name for s in self.received.values()),
            plan_signals=sorted(self.plan.signals),
            awaited_signals=[]
            if self.finished
            else self.plan.awaited_signals(self.index, {*self.received, *self.waits_over}),
            signal_requests=list(self.requests_taken),
            transition=transition,
        )

    def _publish(self, transition: dict[str, Any] | None = None) -> None:
        workflow.upsert_memo({MEMO_STATE: asdict(self._state(transition))})

    @workflow.query(name=STATE_QUERY)
    def state(self) -> WorkflowState:
        """The execution's current state."""
        return self._state()

    # -- updates -------------------------------------------------------------------------------

    def _signal_target(self, name: str) -> SignalStep | None:
        for index, step in enumerate(self.plan.steps):
            if (
                isinstance(step, SignalStep)
                and step.signal == name
                and index >= self.index
                and step.id not in self.received
                and step.id not in self.waits_over
            ):
                return step
        return None

    @workflow.signal(name=PLAN_SIGNAL)
    def take_signal(self, sig: SignalInput) -> None:
        """Take a signal for a plan step; ignore one the plan will not act on, or a repeat."""
        if sig.request_id is not None:
            if sig.request_id in self.signal_requests:
                return
            self.signal_requests.add(sig.request_id)
        step = None if self.finished else self._signal_target(sig.signal_name)
        if step is None:
            workflow.logger.info("signal %r not awaited: ignored", sig.signal_name)
            return
        self.received[step.id] = sig
        if sig.request_id is not None:
            self.requests_taken.append(sig.request_id)
        decision = sig.payload.get("decision")
        who = sig.payload.get("approved_by") or sig.payload.get("by")
        self._publish(
            transition={
                "event": "signal_received",
                "step": step.id,
                "decision": decision if isinstance(decision, str) else None,
                "actor": who if isinstance(who, str) and who else None,
            }
        )

    @workflow.update(name=SIGNAL_UPDATE)
    async def signal(self, sig: SignalInput) -> WorkflowState:
        """Take a signal sent as an update (before signals became durable Temporal signals);
        answer once the workflow has moved past the wait it satisfies."""
        step = self._signal_target(sig.signal_name)
        assert step is not None  # the validator guarantees it
        self.received[step.id] = sig
        self._publish()
        if self.awaiting == step.id:
            position = self.index
            await workflow.wait_condition(lambda: self.finished or self.index > position)
        return self._state()

    @signal.validator
    def _validate_signal(self, sig: SignalInput) -> None:
        if self.finished:
            raise ApplicationError("the workflow is closing", type="Closed")
        if sig.signal_name not in self.plan.signals:
            known = ", ".join(sorted(self.plan.signals)) or "none"
            raise ApplicationError(
                f"{self.plan.name!r} takes no signal {sig.signal_name!r}; its signals: {known}",
                type="UnknownSignal",
            )
        if self._signal_target(sig.signal_name) is None:
            raise ApplicationError(
                f"signal {sig.signal_name!r} is no longer awaited (already received or timed out)",
                type="NotAwaited",
            )

    @workflow.update(name=PAUSE_UPDATE)
    async def pause(self, control: ControlInput) -> WorkflowState:
        """Stop before the next step until resumed (a running activity finishes first)."""
        self.paused = True
        self.status = "paused"
        workflow.upsert_search_attributes([sa.STATUS.value_set("paused")])
        self._publish()
        return self._state()

    @pause.validator
    def _validate_pause(self, control: ControlInput) -> None:
        if self.finished:
            raise ApplicationError("the workflow is closing", type="Closed")
        if self.paused:
            raise ApplicationError("the workflow is already paused", type="Conflict")

    @workflow.update(name=RESUME_UPDATE)
    async def resume(self, control: ControlInput) -> WorkflowState:
        """Go on with the plan."""
        self.paused = False
        self.status = "active"
        workflow.upsert_search_attributes([sa.STATUS.value_set("active")])
        self._publish()
        return self._state()

    @resume.validator
    def _validate_resume(self, control: ControlInput) -> None:
        if self.finished:
            raise ApplicationError("the workflow is closing", type="Closed")
        if not self.paused:
            raise ApplicationError("the workflow is not paused", type="Conflict")
