"""Make the shipped sample of workflow timelines (``data/samples/timelines.parquet``).

Covers: every plan of the real catalog (``data/definitions``) on all five task queues, arrivals
peaking in working hours, queue waits that grow with load (the provisioning integration is the
slow one), human signal waits that only progress in working hours, activities retried after
failed attempts, activity failures and timeouts, signal timeouts and rejections, cancellations,
pauses, compensation events in reverse, and workflows still open when the window ends.

The rows speak the service's timeline vocabulary: every detail text comes from
:mod:`protocol_lab.domain.details` and the structured fields (``step``, ``attempt``,
``outcome``, ``actor``) are set as the service's history mapper and the simulator set them. The
events come in the service's order: a retried activity shows only its last attempt's
``activity_started`` and closing event (earlier attempts and their backoffs read as wait), a
signal wait opens with ``activity_started``, and a workflow that fails or is cancelled runs its
compensations before its terminal event.

Scenario: ``N_WORKFLOWS`` workflows arriving over ``DAYS`` days from ``START``, one seed.
Run ``python data/samples/make_sample.py`` to rewrite the sample; ``generate`` is also used by
the benchmark to make larger logs.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from protocol_lab.domain import (
    TIMELINE_SCHEMA,
    ActivityStep,
    OnTimeout,
    SignalStep,
    WorkflowPlan,
    details,
    load_catalog,
)
from protocol_lab.domain.timeline import EventType, Outcome
from protocol_lab.sim.retries import backoff_intervals

RANDOM_SEED = 20261130
N_WORKFLOWS = 30_000
DAYS = 42  # days
START = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday; the window spans the year-end holidays
OUT = Path(__file__).with_name("timelines.parquet")

# share of arrivals, trigger types and priorities per plan
MIX: dict[str, float] = {
    "Password Reset": 0.34,
    "Laptop Provisioning - New Hire": 0.14,
    "Device Enrollment": 0.18,
    "VPN Access Revocation": 0.12,
    "P1 Incident Response": 0.07,
    "SLA Escalation": 0.15,
}
TRIGGERS: dict[str, tuple[str, ...]] = {
    "Password Reset": ("manual", "event_based"),
    "Laptop Provisioning - New Hire": ("automatic", "manual"),
    "Device Enrollment": ("automatic", "scheduled"),
    "VPN Access Revocation": ("event_based", "automatic"),
    "P1 Incident Response": ("event_based",),
    "SLA Escalation": ("scheduled", "automatic"),
}
PRIORITIES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "Password Reset": (("P3", "P4"), (0.6, 0.4)),
    "Laptop Provisioning - New Hire": (("P3", "P4"), (0.5, 0.5)),
    "Device Enrollment": (("P3", "P4"), (0.3, 0.7)),
    "VPN Access Revocation": (("P2", "P3"), (0.7, 0.3)),
    "P1 Incident Response": (("P1",), (1.0,)),
    "SLA Escalation": (("P1", "P2"), (0.3, 0.7)),
}
CANCEL_PROBABILITY = 0.035  # per workflow, during a signal wait
REJECT_PROBABILITY = 0.04  # per human approval
PAUSE_PROBABILITY = 0.01  # per workflow
# per activity step: its integration is down for every attempt (the step runs out of retries);
# on top of that each attempt fails alone with the step's failure_probability (then retried)
BROKEN_FACTOR = 1.5  # x the step's failure_probability
HANG_SHARE = 1 / 3  # of broken steps: each attempt outlives the step's timeout
SLOW_STEPS = {"provision_asset": 2400.0, "push_profile": 600.0}  # s, mean queue wait at peak
BASE_QUEUE_WAIT = 15.0  # s, mean queue wait off peak
# human signal waits answered only in working hours; the others (users, on-call) any time
OFFICE_HOURS_SIGNALS = {"manager_approval", "security_confirmation", "user_confirmation", "pickup"}
FAILURE_CAUSES = ("HTTP 503 from integration", "invalid response")
APPROVERS = 48  # people who answer human signals (the ``actor`` of their events)


def hour_weights() -> np.ndarray:
    """Arrival weight of each hour of a week (168 values, Monday 00:00 first)."""
    hours = np.arange(168)
    day, hour = hours // 24, hours % 24
    working = (day < 5) & (hour >= 8) & (hour < 18)
    weights = np.where(working, 1.0, 0.12)
    weights[(day < 5) & ((hour == 10) | (hour == 14))] *= 1.6
    return weights / weights.sum()


def arrival_times(rng: np.random.Generator, *, n: int, days: int) -> np.ndarray:
    """Arrival offsets (s from START), sorted, shaped by :func:`hour_weights`."""
    n_hours = days * 24
    weights = np.resize(hour_weights(), n_hours)
    hour = rng.choice(n_hours, size=n, p=weights / weights.sum())
    return np.sort(hour * 3600.0 + rng.uniform(0, 3600.0, size=n))


def next_working_time(t: float) -> float:
    """The same instant if inside working hours (Mon-Fri 09:00-17:30 UTC), else the next start."""
    day = int(t // 86400)
    weekday = (day + START.weekday()) % 7
    tod = t - day * 86400
    if weekday < 5 and 9 * 3600 <= tod < 17.5 * 3600:
        return t
    if weekday < 5 and tod < 9 * 3600:
        return day * 86400 + 9 * 3600.0
    day += 1
    while (day + START.weekday()) % 7 >= 5:
        day += 1
    return day * 86400 + 9 * 3600.0


def is_peak(t: float) -> bool:
    """Whether ``t`` falls in weekday working hours (when the queues are loaded)."""
    day = int(t // 86400)
    tod = t - day * 86400
    return (day + START.weekday()) % 7 < 5 and 8 * 3600 <= tod < 18 * 3600


def queue_wait(rng: np.random.Generator, step_id: str, t: float) -> float:
    """Seconds an activity waits for a worker slot."""
    mean = SLOW_STEPS.get(step_id, 60.0) if is_peak(t) else BASE_QUEUE_WAIT
    return float(rng.exponential(mean))


class Row(NamedTuple):
    """One timeline event of a workflow, ``at`` seconds from the window's start."""

    event: EventType
    at: float
    detail: str
    step: str | None = None
    attempt: int | None = None
    outcome: Outcome | None = None
    actor: str | None = None


def run_activity(
    step: ActivityStep, rng: np.random.Generator, *, t: float
) -> tuple[list[Row], float, Outcome]:
    """An activity with its retries from ``t``: its events, when it ended and how.

    As in Temporal's history, only the last attempt shows: its ``activity_started`` (with its
    attempt number) and its closing event; earlier attempts and their backoffs read as wait.
    """
    n = step.retry.max_attempts
    running = details.step_running(step)
    backoff = backoff_intervals(step.retry)
    broken = rng.random() < step.failure_probability * BROKEN_FACTOR
    hangs = broken and rng.random() < HANG_SHARE
    cause = FAILURE_CAUSES[int(rng.integers(len(FAILURE_CAUSES)))]
    for attempt in range(1, n + 1):
        t += queue_wait(rng, step.id, t)
        started = t
        duration = max(step.duration.sample(rng), 0.5)
        timed_out = hangs or duration > step.timeout_s
        t += step.timeout_s if timed_out else duration
        failed = broken or timed_out or rng.random() < step.failure_probability
        if not failed:
            return (
                [
                    Row(EventType.ACTIVITY_STARTED, started, running, step.id, attempt=attempt),
                    Row(
                        EventType.ACTIVITY_COMPLETED,
                        t,
                        details.step_done(step),
                        step.id,
                        attempt=attempt,
                        outcome=Outcome.COMPLETED,
                    ),
                ],
                t,
                Outcome.COMPLETED,
            )
        if attempt < n:
            t += backoff[attempt - 1]
    how = Outcome.TIMED_OUT if timed_out else Outcome.FAILED
    text = (
        details.activity_timed_out(step.detail)
        if timed_out
        else details.activity_failed(step.detail, cause)
    )
    return (
        [
            Row(EventType.ACTIVITY_STARTED, started, running, step.id, attempt=n),
            Row(EventType.ACTIVITY_FAILED, t, text, step.id, attempt=n, outcome=how),
            # the workflow's end, once compensated: the same text, the step and the outcome
            Row(EventType.WORKFLOW_FAILED, t, text, step.id, outcome=how),
        ],
        t,
        how,
    )


def simulate(plan: WorkflowPlan, rng: np.random.Generator, *, t: float) -> list[Row]:
    """One workflow's events after its start, in time order."""
    out: list[Row] = []
    done: list[ActivityStep] = []
    cancel = rng.random() < CANCEL_PROBABILITY
    pause = rng.random() < PAUSE_PROBABILITY

    def close(at: float, terminal: Row) -> list[Row]:
        """Compensate the completed steps, newest first, then end with ``terminal``."""
        for step in reversed(done):
            if step.compensation is None:
                continue
            text = details.compensation(step.compensation)
            out.append(Row(EventType.COMPENSATION_STARTED, at, text, step.id, attempt=1))
            at += float(rng.exponential(20.0)) + 1.0
            completed = Outcome.COMPLETED
            out.append(
                Row(
                    EventType.COMPENSATION_COMPLETED,
                    at,
                    text,
                    step.id,
                    attempt=1,
                    outcome=completed,
                )
            )
            at += 0.2
        out.append(terminal._replace(at=at + 0.5))
        return out

    for index, step in enumerate(plan.steps):
        if pause and index == 1:
            out.append(Row(EventType.WORKFLOW_PAUSED, t, details.PAUSED_BY_USER))
            t += float(rng.exponential(4 * 3600.0))
            out.append(Row(EventType.WORKFLOW_RESUMED, t, details.RESUMED_BY_USER))
        if isinstance(step, ActivityStep):
            rows, t, how = run_activity(step, rng, t=t)
            if how is not Outcome.COMPLETED:
                out += rows[:-1]
                return close(t + 0.5, rows[-1])
            out += rows
            done.append(step)
            continue
        assert isinstance(step, SignalStep)
        out.append(Row(EventType.ACTIVITY_STARTED, t, details.step_running(step), step.id))
        response = max(step.response.sample(rng), 5.0)
        arrives = t + response
        if step.human and step.id in OFFICE_HOURS_SIGNALS:
            arrives = next_working_time(arrives)
        if cancel:
            t += float(rng.uniform(0.1, 0.9)) * (arrives - t)
            by_user = details.CANCELLED_BY_USER
            return close(
                t, Row(EventType.WORKFLOW_CANCELLED, t, by_user, outcome=Outcome.CANCELLED)
            )
        if arrives - t > step.timeout_s:
            t += step.timeout_s
            text = details.signal_timed_out(step)
            if step.on_timeout is OnTimeout.CONTINUE:
                out.append(
                    Row(EventType.ACTIVITY_COMPLETED, t, text, step.id, outcome=Outcome.TIMED_OUT)
                )
                continue
            kind = (
                EventType.WORKFLOW_CANCELLED
                if step.on_timeout is OnTimeout.CANCEL
                else EventType.WORKFLOW_FAILED
            )
            return close(t, Row(kind, t, text, step.id, outcome=Outcome.TIMED_OUT))
        t = arrives
        actor = f"usr_{int(rng.integers(APPROVERS)):03d}" if step.human else None
        # a human approval that can be refused is, now and then, with its first reject value
        refusable = step.human and "approval" in step.id and bool(step.reject_values)
        rejected = refusable and rng.random() < REJECT_PROBABILITY
        how = Outcome.REJECTED if rejected else Outcome.COMPLETED
        decision = step.reject_values[0] if rejected else None
        received = details.signal_received(step, decision)
        out.append(Row(EventType.SIGNAL_RECEIVED, t, received, step.id, outcome=how, actor=actor))
        if decision is not None:
            text = details.signal_rejected(step, decision, actor)
            failed = Row(EventType.WORKFLOW_FAILED, t, text, step.id, outcome=how, actor=actor)
            return close(t + 0.5, failed)
    completed = details.WORKFLOW_COMPLETED
    out.append(Row(EventType.WORKFLOW_COMPLETED, t + 0.5, completed, outcome=Outcome.COMPLETED))
    return out


def generate(
    *,
    n_workflows: int = N_WORKFLOWS,
    days: int = DAYS,
    seed: int = RANDOM_SEED,
    start: datetime = START,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Events (in TIMELINE_SCHEMA) and attributes (workflow_id, priority, ticket_id)."""
    rng = np.random.default_rng(seed)
    catalog = load_catalog()
    names = list(MIX)
    share = np.array([MIX[n] for n in names])
    plan_of = rng.choice(len(names), size=n_workflows, p=share / share.sum())
    arrivals = arrival_times(rng, n=n_workflows, days=days)
    horizon = days * 86400.0
    cols: dict[str, list[object]] = {c: [] for c in TIMELINE_SCHEMA}
    ids, priorities, tickets = [], [], []
    for i in range(n_workflows):
        name = names[plan_of[i]]
        plan = catalog[name]
        wid = f"wf_{seed % 1000:03d}{i:07d}"
        ticket = f"TKT-{10000 + i}"
        trigger = TRIGGERS[name][int(rng.integers(len(TRIGGERS[name])))]
        values, weights = PRIORITIES[name]
        ids.append(wid)
        priorities.append(values[int(rng.choice(len(values), p=weights))])
        tickets.append(ticket)
        t0 = float(arrivals[i])
        started = Row(
            EventType.WORKFLOW_STARTED, t0, details.workflow_started(trigger, {"ticket_id": ticket})
        )
        for row in [started, *simulate(plan, rng, t=t0)]:
            if row.at > horizon:
                break
            cols["workflow_id"].append(wid)
            cols["workflow_name"].append(name)
            cols["task_queue"].append(plan.task_queue.value)
            cols["trigger_type"].append(trigger)
            cols["event"].append(row.event.value)
            cols["timestamp"].append(row.at)
            cols["detail"].append(row.detail)
            cols["step"].append(row.step)
            cols["attempt"].append(row.attempt)
            cols["outcome"].append(row.outcome.value if row.outcome is not None else None)
            cols["actor"].append(row.actor)
    base_us = int(start.timestamp() * 1_000_000)
    events = (
        pl.DataFrame(
            {k: v for k, v in cols.items() if k != "timestamp"},
            schema={
                k: pl.Int32 if k == "attempt" else pl.String
                for k in TIMELINE_SCHEMA
                if k != "timestamp"
            },
        )
        .with_columns(
            pl.Series(
                "timestamp",
                (np.asarray(cols["timestamp"], dtype=np.float64) * 1e6).round().astype(np.int64)
                + base_us,
            )
        )
        .select([pl.col(n).cast(d) for n, d in TIMELINE_SCHEMA.items()])
        .sort("timestamp", maintain_order=True)
    )
    attributes = pl.DataFrame({"workflow_id": ids, "priority": priorities, "ticket_id": tickets})
    return events, attributes


def main(argv: list[str]) -> None:
    """Write the sample (events + workflow attributes sidecar) next to this script."""
    n = int(argv[1]) if len(argv) > 1 else N_WORKFLOWS
    events, attributes = generate(n_workflows=n)
    events.write_parquet(OUT, compression="zstd", compression_level=19, statistics=False)
    attributes.write_parquet(OUT.with_suffix(".workflows.parquet"), compression="zstd")
    size = OUT.stat().st_size + OUT.with_suffix(".workflows.parquet").stat().st_size
    print(f"{attributes.height} workflows, {events.height} events, {size / 1e6:.1f} MB -> {OUT}")


if __name__ == "__main__":
    main(sys.argv)
