"""Plans in the simulator: catalog plans compiled for simulation, and the process that runs one.

The process interprets a :class:`protocol_lab.domain.WorkflowPlan` step by step, as the
service's Temporal workflow does:

- an activity waits for a slot of its task queue's workers, runs for a duration drawn from its
  model, fails with its ``failure_probability`` (or by outliving ``timeout_s``) and is retried
  per its :class:`protocol_lab.domain.RetryPolicy`; a ``ticket_update`` activity then changes the
  ticket (which fires rules), an ``enqueue_job`` activity puts a job on its BullMQ queue;
- a signal step waits for its signal or its timeout; on timeout it fails, continues or cancels
  per ``on_timeout``; a rejected decision fails the workflow;
- a workflow that fails or is cancelled runs the compensations of its completed steps in
  reverse.

Timeline events are the ones the service's history gives for the same run: every text comes from
:mod:`protocol_lab.domain.details` and the structured fields (step id, attempt, outcome) are set
as the service's history mapper sets them; ``tests/test_conformance.py`` holds the two together.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from protocol_lab.domain import details
from protocol_lab.domain.catalog import (
    ActivityKind,
    ActivityStep,
    Compensation,
    OnTimeout,
    SignalStep,
    WorkflowPlan,
)
from protocol_lab.domain.timeline import EventType, Outcome, TriggerType
from protocol_lab.sim.environment import Wake
from protocol_lab.sim.jobs import BullQueue
from protocol_lab.sim.recorder import TICKET_PLACEHOLDER, TimelineRecorder, WorkflowOutcome
from protocol_lab.sim.retries import backoff_intervals
from protocol_lab.sim.sampling import Sampler, UniformSampler
from protocol_lab.sim.signals import SignalOutcome, SignalWait
from protocol_lab.sim.tickets import Ticket
from protocol_lab.sim.workers import SlotPool

if TYPE_CHECKING:
    from protocol_lab.sim.model import ServiceDeskModel

__all__ = ["ActivityRun", "CompiledPlan", "compile_plan", "run_workflow"]


@dataclass(slots=True)
class ActivityRun:
    """A compiled activity step: texts, duration, failure, retries and side effects.

    ``started_codes`` and ``done_codes`` hold one text per attempt (the attempt number is a
    structured field); ``failed_code`` / ``timed_out_code`` close the step on its last attempt,
    and ``workflow_failed_code`` / ``workflow_timed_out_code`` end the workflow after it.
    """

    step_id: str
    duration: Sampler
    failures: UniformSampler
    failure_probability: float
    max_attempts: int
    backoff: tuple[float, ...]
    timeout_s: float
    started_codes: tuple[int, ...]
    done_codes: tuple[int, ...]
    failed_code: int
    timed_out_code: int
    workflow_failed_code: int
    workflow_timed_out_code: int
    ticket_fields: dict[str, Any] | None
    job_queue: BullQueue | None
    compensation: Compensation | None
    compensation_codes: tuple[int, int]
    compensation_fields: dict[str, Any] | None
    overhead: Sampler | None = None  # the platform's for this activity kind; None: the queue's
    compensation_overhead: Sampler | None = None
    effects: bool = field(init=False)  # a compensation, a ticket update or a job to enqueue

    def __post_init__(self) -> None:
        self.effects = (
            self.compensation is not None or bool(self.ticket_fields) or self.job_queue is not None
        )


@dataclass(slots=True)
class CompiledPlan:
    """A plan ready to run: steps and the codes of its workflow-level events."""

    name: str
    code: int
    steps: tuple[ActivityRun | SignalWait, ...]
    started_code: int
    completed_code: int


def _fields(params: dict[str, Any]) -> dict[str, Any] | None:
    fields = params.get("fields")
    return dict(fields) if isinstance(fields, dict) else None


def _compile_activity(
    plan: WorkflowPlan, step: ActivityStep, *, recorder: TimelineRecorder, model: ServiceDeskModel
) -> ActivityRun:
    scenario = model.scenario
    text = recorder.text
    duration = scenario.durations.get(plan.name, {}).get(step.id, step.duration)
    p_fail = scenario.failure_probabilities.get(plan.name, {}).get(
        step.id, step.failure_probability
    )
    n = step.retry.max_attempts
    running, done = details.step_running(step), details.step_done(step)
    failed = details.activity_failed(
        step.detail, details.emulated_failure(step.integration, step.activity.value)
    )
    timed_out = details.activity_timed_out(step.detail)
    job = None
    if step.activity is ActivityKind.ENQUEUE_JOB:
        job = model.job_queue(str(step.params["queue"]))
    comp = step.compensation
    comp_text = details.compensation(comp) if comp is not None else None
    return ActivityRun(
        step_id=step.id,
        duration=model.sampler(f"duration:{plan.name}:{step.id}", duration),
        failures=model.uniform_sampler(f"failures:{plan.name}:{step.id}"),
        failure_probability=p_fail,
        max_attempts=n,
        backoff=backoff_intervals(step.retry),
        timeout_s=step.timeout_s,
        started_codes=tuple(
            text(EventType.ACTIVITY_STARTED, step.id, running, attempt=k + 1) for k in range(n)
        ),
        done_codes=tuple(
            text(
                EventType.ACTIVITY_COMPLETED,
                step.id,
                done,
                attempt=k + 1,
                outcome=Outcome.COMPLETED,
            )
            for k in range(n)
        ),
        failed_code=text(
            EventType.ACTIVITY_FAILED, step.id, failed, attempt=n, outcome=Outcome.FAILED
        ),
        timed_out_code=text(
            EventType.ACTIVITY_FAILED, step.id, timed_out, attempt=n, outcome=Outcome.TIMED_OUT
        ),
        workflow_failed_code=text(
            EventType.WORKFLOW_FAILED, step.id, failed, outcome=Outcome.FAILED
        ),
        workflow_timed_out_code=text(
            EventType.WORKFLOW_FAILED, step.id, timed_out, outcome=Outcome.TIMED_OUT
        ),
        ticket_fields=_fields(step.params) if step.activity is ActivityKind.TICKET_UPDATE else None,
        job_queue=job,
        compensation=comp,
        compensation_codes=(
            text(EventType.COMPENSATION_STARTED, step.id, comp_text, attempt=1),
            text(
                EventType.COMPENSATION_COMPLETED,
                step.id,
                comp_text,
                attempt=1,
                outcome=Outcome.COMPLETED,
            ),
        ),
        compensation_fields=_fields(comp.params)
        if comp is not None and comp.activity is ActivityKind.TICKET_UPDATE
        else None,
        overhead=model.platform.activity_overheads.get(step.activity),
        compensation_overhead=(
            model.platform.activity_overheads.get(comp.activity) if comp is not None else None
        ),
    )


_TIMEOUT_EVENTS: Final = {
    OnTimeout.CONTINUE: EventType.ACTIVITY_COMPLETED,
    OnTimeout.CANCEL: EventType.WORKFLOW_CANCELLED,
    OnTimeout.FAIL: EventType.WORKFLOW_FAILED,
}


def _compile_signal(
    plan: WorkflowPlan, step: SignalStep, *, recorder: TimelineRecorder, model: ServiceDeskModel
) -> SignalWait:
    text = recorder.text
    cfg = model.scenario.signal(step.signal)
    response = cfg.response if cfg.response is not None else step.response
    decision = step.reject_values[0] if step.reject_values else "rejected"
    received = details.signal_received(step)
    return SignalWait(
        step_id=step.id,
        signal=step.signal,
        response=model.sampler(f"signal:{plan.name}:{step.id}", response),
        decisions=model.uniform_sampler(f"decisions:{plan.name}:{step.id}"),
        business_hours=step.human and cfg.business_hours,
        reject_probability=cfg.reject_probability,
        timeout_s=step.timeout_s,
        on_timeout=step.on_timeout,
        started_code=text(EventType.ACTIVITY_STARTED, step.id, details.step_running(step)),
        received_code=text(EventType.SIGNAL_RECEIVED, step.id, received, outcome=Outcome.COMPLETED),
        refusal_code=text(
            EventType.SIGNAL_RECEIVED,
            step.id,
            details.signal_received(step, decision),
            outcome=Outcome.REJECTED,
        ),
        timeout_code=text(
            _TIMEOUT_EVENTS[step.on_timeout],
            step.id,
            details.signal_timed_out(step),
            outcome=Outcome.TIMED_OUT,
        ),
        rejected_code=text(
            EventType.WORKFLOW_FAILED,
            step.id,
            details.signal_rejected(step, decision, None),
            outcome=Outcome.REJECTED,
        ),
    )


def compile_plan(
    plan: WorkflowPlan,
    *,
    code: int,
    recorder: TimelineRecorder,
    model: ServiceDeskModel,
) -> CompiledPlan:
    """Turn a catalog plan into compiled steps with interned timeline texts and samplers."""
    steps: list[ActivityRun | SignalWait] = []
    for step in plan.steps:
        if isinstance(step, ActivityStep):
            steps.append(_compile_activity(plan, step, recorder=recorder, model=model))
        else:
            steps.append(_compile_signal(plan, step, recorder=recorder, model=model))
    started = details.workflow_started(
        TriggerType.AUTOMATIC.value, {"ticket_id": TICKET_PLACEHOLDER}
    )
    return CompiledPlan(
        name=plan.name,
        code=code,
        steps=tuple(steps),
        started_code=recorder.text(EventType.WORKFLOW_STARTED, None, started),
        completed_code=recorder.text(
            EventType.WORKFLOW_COMPLETED,
            None,
            details.WORKFLOW_COMPLETED,
            outcome=Outcome.COMPLETED,
        ),
    )


def run_activity(
    model: ServiceDeskModel, wf: int, step: ActivityRun, pool: SlotPool, *, first: int = 0
) -> Generator[Any, Any, Outcome]:
    """Process fragment: run an activity with its retries from attempt ``first`` (0-based,
    after the backoff of the failed attempt before it); how the step ended.

    The timeline shows what Temporal's history shows for an activity with a retry policy: the
    last attempt's ``activity_started`` (with its attempt number) and its closing event. Earlier
    attempts leave no event; their time is part of the wait before the start.
    """
    env = model.env
    event = model.recorder.event
    p_fail = step.failure_probability
    last = step.max_attempts - 1
    if first and first - 1 < len(step.backoff):
        yield Wake(env, step.backoff[first - 1])
    for attempt in range(first, step.max_attempts):
        enqueued = env.now
        grant = pool.request()
        if grant is not None:
            yield grant
        if pool.schedule_to_start is not None:
            yield Wake(env, pool.schedule_to_start())
        started = env.now
        d = step.duration()
        ok = not p_fail or step.failures() >= p_fail
        timed_out = d > step.timeout_s
        if timed_out:
            d = step.timeout_s
            ok = False
        overhead = pool.activity_overhead if step.overhead is None else step.overhead
        yield Wake(env, d if overhead is None else d + overhead())
        pool.release(enqueued, started)
        if ok:
            event(wf, step.started_codes[attempt], started)
            event(wf, step.done_codes[attempt], env.now)
            return Outcome.COMPLETED
        if attempt == last:
            event(wf, step.started_codes[attempt], started)
            event(wf, step.timed_out_code if timed_out else step.failed_code, env.now)
            return Outcome.TIMED_OUT if timed_out else Outcome.FAILED
        if attempt < len(step.backoff):
            yield env.timeout(step.backoff[attempt])
    return Outcome.FAILED  # only with first beyond the last attempt


def compensate(
    model: ServiceDeskModel, wf: int, done: list[ActivityRun], pool: SlotPool, ticket: Ticket
) -> Generator[Any, Any, None]:
    """Process fragment: undo completed steps in reverse order."""
    env = model.env
    gap = model.platform.task
    for step in reversed(done):
        if gap is not None:  # the workflow task that schedules the compensation
            yield Wake(env, gap())
        enqueued = env.now
        grant = pool.request()
        if grant is not None:
            yield grant
        if pool.schedule_to_start is not None:
            yield Wake(env, pool.schedule_to_start())
        started = env.now
        model.recorder.event(wf, step.compensation_codes[0], started)
        overhead = (
            pool.activity_overhead
            if step.compensation_overhead is None
            else step.compensation_overhead
        )
        d = model.compensation_duration()
        yield env.timeout(d if overhead is None else d + overhead())
        pool.release(enqueued, started)
        if step.compensation_fields:
            model.desk.update(ticket, step.compensation_fields)
        model.recorder.event(wf, step.compensation_codes[1], env.now)


def run_workflow(
    model: ServiceDeskModel, wf: int, plan: CompiledPlan, pool: SlotPool, ticket: Ticket
) -> Generator[Any, Any, None]:
    """Process: one workflow execution from start to its terminal event.

    As the service's workflow does, a workflow that fails (a step out of attempts, a signal
    rejected or not received in time) or is cancelled runs the compensations of its completed
    steps, newest first, before its terminal event. The first attempt of an activity is written
    out here rather than delegated to :func:`run_activity` (which handles retries): most
    activities succeed at once, and this loop runs for every workflow of a run.

    Long because it is the simulator's innermost loop: every step moved into a helper
    generator would cost a ``yield from`` frame per step of every simulated workflow.
    """
    env = model.env
    recorder = model.recorder
    event = recorder.event
    record = recorder.record_events
    if record:
        event(wf, plan.started_code, env._now)
    done: list[ActivityRun] = []
    outcome = WorkflowOutcome.COMPLETED
    final = plan.completed_code
    platform = model.platform
    # the platform's workflow task before each step (None: no latency)
    gap = platform.first_task
    for step in plan.steps:
        if gap is platform.task and type(step) is not ActivityRun:
            gap = platform.wait_task  # the workflow task that begins a wait
        if gap is not None:
            yield Wake(env, gap())
        gap = platform.task
        if type(step) is ActivityRun:
            # first attempt, inline; failures go on in run_activity with the retries
            enqueued = env._now
            grant = pool.request()
            if grant is not None:
                yield grant
            if pool.schedule_to_start is not None:
                yield Wake(env, pool.schedule_to_start())
            started = env._now
            d = step.duration()
            p_fail = step.failure_probability
            ok = not p_fail or step.failures() >= p_fail
            timed_out = d > step.timeout_s
            if timed_out:
                d = step.timeout_s
                ok = False
            overhead = pool.activity_overhead if step.overhead is None else step.overhead
            yield Wake(env, d if overhead is None else d + overhead())
            pool.release(enqueued, started)
            if ok:
                if record:
                    event(wf, step.started_codes[0], started)
                    event(wf, step.done_codes[0], env._now)
            else:
                if step.max_attempts == 1:
                    if record:
                        event(wf, step.started_codes[0], started)
                        event(wf, step.timed_out_code if timed_out else step.failed_code, env._now)
                    ended = Outcome.TIMED_OUT if timed_out else Outcome.FAILED
                else:
                    ended = yield from run_activity(model, wf, step, pool, first=1)
                if ended is not Outcome.COMPLETED:
                    yield from compensate(model, wf, done, pool, ticket)
                    outcome = WorkflowOutcome.FAILED
                    final = (
                        step.workflow_timed_out_code
                        if ended is Outcome.TIMED_OUT
                        else step.workflow_failed_code
                    )
                    break
            if step.effects:
                if step.compensation is not None:
                    done.append(step)
                if step.ticket_fields:
                    model.desk.update(ticket, step.ticket_fields)
                if step.job_queue is not None:
                    step.job_queue.submit()
            continue
        assert isinstance(step, SignalWait)
        recorder.event(wf, step.started_code, env._now)
        result = yield from model.signals.wait(step)
        if result is SignalOutcome.RECEIVED:
            recorder.event(wf, step.received_code, env._now)
            gap = platform.signal_delivery
            continue
        if result is SignalOutcome.REJECTED:
            recorder.event(wf, step.refusal_code, env._now)
            outcome, final = WorkflowOutcome.FAILED, step.rejected_code
        elif step.on_timeout is OnTimeout.CONTINUE:
            recorder.event(wf, step.timeout_code, env._now)
            gap = platform.signal_delivery
            continue
        else:
            cancelled = step.on_timeout is OnTimeout.CANCEL
            outcome = WorkflowOutcome.CANCELLED if cancelled else WorkflowOutcome.FAILED
            final = step.timeout_code
        yield from compensate(model, wf, done, pool, ticket)
        break
    if platform.wait_task is not None:  # the workflow task that closes the workflow
        yield Wake(env, platform.wait_task())
    now = env._now
    if record:
        event(wf, final, now)
    recorder.end(wf, outcome, now)
    model.desk.workflow_ended(ticket)
