"""Workflows: catalog plans compiled for simulation, and the process that runs one.

The process interprets a :class:`protocol_lab.domain.WorkflowPlan` step by step, as the
service's Temporal workflow does:

- an activity waits for a slot of its task queue's workers, runs for a duration drawn from its
  model, fails with its ``failure_probability`` (or by outliving ``timeout_s``) and is retried
  per its :class:`protocol_lab.domain.RetryPolicy`; a ``ticket_update`` activity then changes the
  ticket (which fires rules), an ``enqueue_job`` activity puts a job on its BullMQ queue;
- a signal step waits for its signal or its timeout; on timeout it fails, continues or cancels
  per ``on_timeout``; a rejected decision fails the workflow;
- a cancelled workflow runs the compensations of its completed steps in reverse.

Timeline events carry the plan's texts: ``activity_started`` with the step's ``detail``,
``activity_completed`` with its ``done`` text, ``signal_received`` with the signal step's ``done``;
``step`` is the plan's step id.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simpy.events import Timeout

from protocol_lab.domain.catalog import (
    ActivityKind,
    ActivityStep,
    Compensation,
    OnTimeout,
    SignalStep,
    WorkflowPlan,
)
from protocol_lab.domain.timeline import EventType
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
    """A compiled activity step: texts, duration, failure, retries and side effects."""

    step_id: str
    duration: Sampler
    failures: UniformSampler
    failure_probability: float
    max_attempts: int
    backoff: tuple[float, ...]
    timeout_s: float
    started_code: int
    done_code: int
    failed_codes: tuple[int, ...]
    workflow_failed_code: int
    ticket_fields: dict[str, Any] | None
    job_queue: BullQueue | None
    compensation: Compensation | None
    compensation_codes: tuple[int, int]
    compensation_fields: dict[str, Any] | None


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


def compile_plan(
    plan: WorkflowPlan,
    *,
    code: int,
    recorder: TimelineRecorder,
    model: ServiceDeskModel,
) -> CompiledPlan:
    """Turn a catalog plan into compiled steps with interned timeline texts and samplers."""
    scenario = model.scenario
    text = recorder.text
    steps: list[ActivityRun | SignalWait] = []
    for step in plan.steps:
        if isinstance(step, ActivityStep):
            duration = scenario.durations.get(plan.name, {}).get(step.id, step.duration)
            p_fail = scenario.failure_probabilities.get(plan.name, {}).get(
                step.id, step.failure_probability
            )
            n = step.retry.max_attempts
            failed = tuple(
                text(
                    EventType.ACTIVITY_FAILED,
                    step.id,
                    f"{step.detail} failed (attempt {k + 1} of {n}), retrying"
                    if k + 1 < n
                    else f"{step.detail} failed (attempt {k + 1} of {n}), giving up",
                )
                for k in range(n)
            )
            job = None
            if step.activity is ActivityKind.ENQUEUE_JOB:
                job = model.job_queue(str(step.params["queue"]))
            comp = step.compensation
            steps.append(
                ActivityRun(
                    step_id=step.id,
                    duration=model.sampler(f"duration:{plan.name}:{step.id}", duration),
                    failures=model.uniform_sampler(f"failures:{plan.name}:{step.id}"),
                    failure_probability=p_fail,
                    max_attempts=n,
                    backoff=backoff_intervals(step.retry),
                    timeout_s=step.timeout_s,
                    started_code=text(EventType.ACTIVITY_STARTED, step.id, step.detail),
                    done_code=text(EventType.ACTIVITY_COMPLETED, step.id, step.done),
                    failed_codes=failed,
                    workflow_failed_code=text(
                        EventType.WORKFLOW_FAILED,
                        step.id,
                        f"Failed at {step.id}: {step.detail} failed after {n} attempts",
                    ),
                    ticket_fields=_fields(step.params)
                    if step.activity is ActivityKind.TICKET_UPDATE
                    else None,
                    job_queue=job,
                    compensation=comp,
                    compensation_codes=(
                        text(
                            EventType.COMPENSATION_STARTED, step.id, comp.detail if comp else None
                        ),
                        text(
                            EventType.COMPENSATION_COMPLETED, step.id, comp.detail if comp else None
                        ),
                    ),
                    compensation_fields=_fields(comp.params)
                    if comp is not None and comp.activity is ActivityKind.TICKET_UPDATE
                    else None,
                )
            )
        else:
            assert isinstance(step, SignalStep)
            cfg = scenario.signal(step.signal)
            response = cfg.response if cfg.response is not None else step.response
            if step.on_timeout is OnTimeout.CONTINUE:
                timeout_text = (
                    EventType.ACTIVITY_COMPLETED,
                    f"No {step.signal} in time; continued",
                )
            elif step.on_timeout is OnTimeout.CANCEL:
                timeout_text = (
                    EventType.WORKFLOW_CANCELLED,
                    f"Cancelled: no {step.signal} in time",
                )
            else:
                timeout_text = (
                    EventType.WORKFLOW_FAILED,
                    f"Failed at {step.id}: no {step.signal} in time",
                )
            steps.append(
                SignalWait(
                    step_id=step.id,
                    signal=step.signal,
                    response=model.sampler(f"signal:{plan.name}:{step.id}", response),
                    decisions=model.uniform_sampler(f"decisions:{plan.name}:{step.id}"),
                    business_hours=step.human and cfg.business_hours,
                    reject_probability=cfg.reject_probability,
                    timeout_s=step.timeout_s,
                    on_timeout=step.on_timeout,
                    started_code=text(EventType.ACTIVITY_STARTED, step.id, step.detail),
                    received_code=text(EventType.SIGNAL_RECEIVED, step.id, step.done),
                    timeout_code=text(timeout_text[0], step.id, timeout_text[1]),
                    rejected_code=text(
                        EventType.WORKFLOW_FAILED,
                        step.id,
                        f"Failed at {step.id}: {step.signal} rejected",
                    ),
                )
            )
    return CompiledPlan(
        name=plan.name,
        code=code,
        steps=tuple(steps),
        started_code=text(
            EventType.WORKFLOW_STARTED, None, "Triggered by ticket " + TICKET_PLACEHOLDER
        ),
        completed_code=text(EventType.WORKFLOW_COMPLETED, None, f"{plan.name} completed"),
    )


def run_activity(
    model: ServiceDeskModel, wf: int, step: ActivityRun, pool: SlotPool, *, first: int = 0
) -> Generator[Any, Any, bool]:
    """Process fragment: run an activity with its retries from attempt ``first`` (0-based,
    after the backoff of the failed attempt before it); True when it completed."""
    env = model.env
    event = model.recorder.event
    p_fail = step.failure_probability
    if first and first - 1 < len(step.backoff):
        yield Timeout(env, step.backoff[first - 1])
    for attempt in range(first, step.max_attempts):
        enqueued = env.now
        grant = pool.request()
        if grant is not None:
            yield grant
            started = env.now
        else:
            started = enqueued
        event(wf, step.started_code, started)
        d = step.duration()
        ok = not p_fail or step.failures() >= p_fail
        if d > step.timeout_s:
            d = step.timeout_s
            ok = False
        yield Timeout(env, d)
        pool.release(enqueued, started)
        if ok:
            event(wf, step.done_code, started + d)  # = env.now, as the timeout computed it
            return True
        event(wf, step.failed_codes[attempt], env.now)
        if attempt < len(step.backoff):
            yield env.timeout(step.backoff[attempt])
    return False


def compensate(
    model: ServiceDeskModel, wf: int, done: list[ActivityRun], pool: SlotPool, ticket: Ticket
) -> Generator[Any, Any, None]:
    """Process fragment: undo completed steps in reverse order."""
    env = model.env
    for step in reversed(done):
        enqueued = env.now
        grant = pool.request()
        if grant is not None:
            yield grant
        started = env.now
        model.recorder.event(wf, step.compensation_codes[0], started)
        yield env.timeout(model.compensation_duration())
        pool.release(enqueued, started)
        if step.compensation_fields:
            model.desk.update(ticket, step.compensation_fields)
        model.recorder.event(wf, step.compensation_codes[1], env.now)


def run_workflow(
    model: ServiceDeskModel, wf: int, plan: CompiledPlan, pool: SlotPool, ticket: Ticket
) -> Generator[Any, Any, None]:
    """Process: one workflow execution from start to its terminal event.

    The first attempt of an activity is written out here rather than delegated to
    :func:`run_activity` (which handles retries): most activities succeed at once, and this
    loop runs for every workflow of a run.
    """
    env = model.env
    recorder = model.recorder
    event = recorder.event
    record = recorder.record_events
    if record:
        event(wf, plan.started_code, env.now)
    done: list[ActivityRun] = []
    outcome = WorkflowOutcome.COMPLETED
    final = plan.completed_code
    for step in plan.steps:
        if type(step) is ActivityRun:
            # first attempt, inline; failures go on in run_activity with the retries
            enqueued = env.now
            grant = pool.request()
            if grant is not None:
                yield grant
                started = env.now
            else:
                started = enqueued
            if record:
                event(wf, step.started_code, started)
            d = step.duration()
            p_fail = step.failure_probability
            ok = not p_fail or step.failures() >= p_fail
            if d > step.timeout_s:
                d = step.timeout_s
                ok = False
            yield Timeout(env, d)
            pool.release(enqueued, started)
            if ok:
                if record:
                    event(wf, step.done_code, started + d)
            else:
                if record:
                    event(wf, step.failed_codes[0], started + d)
                ok = yield from run_activity(model, wf, step, pool, first=1)
                if not ok:
                    outcome, final = WorkflowOutcome.FAILED, step.workflow_failed_code
                    break
            if step.compensation is not None:
                done.append(step)
            if step.ticket_fields:
                model.desk.update(ticket, step.ticket_fields)
            if step.job_queue is not None:
                step.job_queue.submit()
            continue
        assert isinstance(step, SignalWait)
        recorder.event(wf, step.started_code, env.now)
        result = yield from model.signals.wait(step)
        if result is SignalOutcome.RECEIVED:
            recorder.event(wf, step.received_code, env.now)
        elif result is SignalOutcome.REJECTED:
            recorder.event(wf, step.received_code, env.now)
            outcome, final = WorkflowOutcome.FAILED, step.rejected_code
            break
        elif step.on_timeout is OnTimeout.CONTINUE:
            recorder.event(wf, step.timeout_code, env.now)
        elif step.on_timeout is OnTimeout.CANCEL:
            yield from compensate(model, wf, done, pool, ticket)
            outcome, final = WorkflowOutcome.CANCELLED, step.timeout_code
            break
        else:
            outcome, final = WorkflowOutcome.FAILED, step.timeout_code
            break
    now = env.now
    if record:
        event(wf, final, now)
    recorder.end(wf, outcome, now)
    model.desk.workflow_ended(ticket)
