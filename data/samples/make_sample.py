"""Make the shipped sample of workflow timelines (``data/samples/timelines.parquet``).

Covers: every plan of the real catalog (``data/workflows``) on all five task queues, arrivals
peaking in working hours, queue waits that grow with load (the provisioning integration is the
slow one), human signal waits that only progress in working hours, activity failures, signal
timeouts and rejections, cancellations with compensation events in reverse, pauses, and
workflows still open when the window ends.

Scenario: ``N_WORKFLOWS`` workflows arriving over ``DAYS`` days from ``START``, one seed.
Run ``python data/samples/make_sample.py`` to rewrite the sample; ``generate`` is also used by
the benchmark to make larger logs.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from protocol_lab.domain import (
    TIMELINE_SCHEMA,
    ActivityStep,
    SignalStep,
    WorkflowPlan,
    load_catalog,
)

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
SLOW_STEPS = {"provision_asset": 2400.0, "push_profile": 600.0}  # s, mean queue wait at peak
BASE_QUEUE_WAIT = 15.0  # s, mean queue wait off peak
# human signal waits answered only in working hours; the others (users, on-call) any time
OFFICE_HOURS_SIGNALS = {"manager_approval", "security_confirmation", "user_confirmation", "pickup"}
FAILURE_REASONS = ("timeout from integration", "HTTP 503 from integration", "invalid response")


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


def simulate(
    plan: WorkflowPlan, rng: np.random.Generator, *, t: float
) -> list[tuple[str, float, str | None, str | None]]:
    """One workflow's events as (event, offset s, detail, step)."""
    out: list[tuple[str, float, str | None, str | None]] = []
    done: list[ActivityStep] = []
    cancel = rng.random() < CANCEL_PROBABILITY
    pause = rng.random() < PAUSE_PROBABILITY

    def compensate(at: float) -> float:
        for step in reversed(done):
            if step.compensation is None:
                continue
            out.append(("compensation_started", at, step.compensation.detail, step.id))
            at += float(rng.exponential(20.0)) + 1.0
            out.append(("compensation_completed", at, step.compensation.detail, step.id))
        return at

    for index, step in enumerate(plan.steps):
        if pause and index == 1:
            out.append(("workflow_paused", t, "Paused by operator", None))
            t += float(rng.exponential(4 * 3600.0))
            out.append(("workflow_resumed", t, "Resumed by operator", None))
        if isinstance(step, ActivityStep):
            t += queue_wait(rng, step.id, t)
            out.append(("activity_started", t, step.detail, step.id))
            t += max(step.duration.sample(rng), 0.5)
            failed = rng.random() < step.failure_probability * 1.5
            if failed:
                reason = FAILURE_REASONS[int(rng.integers(len(FAILURE_REASONS)))]
                out.append(("activity_failed", t, f"{step.detail} failed: {reason}", step.id))
                out.append(("workflow_failed", t + 0.2, f"Step {step.id} failed: {reason}", None))
                return out
            out.append(("activity_completed", t, step.done, step.id))
            done.append(step)
            continue
        assert isinstance(step, SignalStep)
        response = max(step.response.sample(rng), 5.0)
        arrives = t + response
        if step.human and step.id in OFFICE_HOURS_SIGNALS:
            arrives = next_working_time(arrives)
        if cancel:
            t += float(rng.uniform(0.1, 0.9)) * (arrives - t)
            out.append(("workflow_cancelled", t, "Cancelled by user", None))
            compensate(t + 0.5)
            return out
        if arrives - t > step.timeout_s:
            t += step.timeout_s
            if step.on_timeout.value == "continue":
                out.append(("signal_received", t, f"{step.detail}: timed out, continuing", step.id))
                continue
            if step.on_timeout.value == "cancel":
                out.append(("workflow_cancelled", t, f"Timed out: {step.detail}", None))
                compensate(t + 0.5)
                return out
            out.append(("workflow_failed", t, f"Timed out: {step.detail}", None))
            return out
        t = arrives
        rejected = step.human and "approval" in step.id and rng.random() < REJECT_PROBABILITY
        if rejected:
            out.append(("signal_received", t, f"{step.done}: rejected", step.id))
            out.append(("workflow_failed", t + 0.5, f"Rejected at {step.id}", None))
            compensate(t + 1.0)
            return out
        out.append(("signal_received", t, step.done, step.id))
    out.append(("workflow_completed", t + 0.5, "Workflow completed", None))
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
        rows = [("workflow_started", t0, f"Triggered by ticket {ticket}", None)]
        rows += simulate(plan, rng, t=t0)
        for event, offset, detail, step in rows:
            if offset > horizon:
                break
            cols["workflow_id"].append(wid)
            cols["workflow_name"].append(name)
            cols["task_queue"].append(plan.task_queue.value)
            cols["trigger_type"].append(trigger)
            cols["event"].append(event)
            cols["timestamp"].append(offset)
            cols["detail"].append(detail)
            cols["step"].append(step)
    base_us = int(start.timestamp() * 1_000_000)
    events = (
        pl.DataFrame(
            {k: v for k, v in cols.items() if k != "timestamp"},
            schema={k: pl.String for k in TIMELINE_SCHEMA if k != "timestamp"},
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
