"""Calibration: fit a scenario from observed timelines, simulate it, and report the error.

:func:`calibrate` reads workflow timelines (from the service, a file, or the simulator itself)
and fits, one concern at a time:

- **arrivals**: one ticket stream per workflow name at its observed rate, shaped by one
  hour-of-week profile (arrivals per hour of the week divided by how often that hour occurs in
  the observed span), with an inline rule per stream that starts that workflow on its observed
  task queue, so the fitted scenario starts the same mix of workflows;
- **activity durations**: per plan step, fixed, exponential, lognormal and gamma fits by
  maximum likelihood, the one with the lowest AIC chosen (its Kolmogorov-Smirnov statistic
  is reported beside the others);
- **failure rates**: failed attempts over attempts, per step;
- **human waits**: per signal, the same fits on the waits that ended with the signal, measured
  in business seconds for signals answered during business hours; rejections as a probability;
- **workers**: per task queue, the most activities ever running at once. Where activities
  waited for a worker (they became ready while that many others ran) that peak is the
  capacity; where none waited, the fitted capacity keeps a margin above it;
- **the platform's latency** (:mod:`protocol_lab.sim.platform_fit`): workflow tasks,
  schedule-to-start and activity overhead per task queue, in wall-clock seconds at the log's
  compression, each kept as its sample (an empirical model: a loaded machine's stalls make
  tails no family fits); the overhead is taken out of the step durations, so that it is not
  counted twice.

:func:`calibration_error` simulates the fitted scenario (a few replications pooled) and
compares p50/p95 cycle times, worker-queue waits and signal waits per task queue with the
observed ones; :attr:`Calibration.error` holds that table, with whether each row is within the
target (10%, or 1 s for a queue wait).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from protocol_lab.domain.catalog import ActivityStep, Catalog, SignalStep
from protocol_lab.domain.durations import DurationModel, Exponential, Fixed, Gamma, LogNormal
from protocol_lab.domain.queues import TaskQueue
from protocol_lab.domain.rules import Rule, StartWorkflowAction, Trigger
from protocol_lab.domain.sla import BusinessCalendar
from protocol_lab.domain.tickets import Priority
from protocol_lab.sim.platform_fit import (
    PlatformFit,
    deconvolve,
    empirical_model,
    fit_platform,
    known_fixed_durations,
    ready_when_full,
)
from protocol_lab.sim.profiles import HOURS_PER_WEEK, HourOfWeekProfile
from protocol_lab.sim.scenario import (
    Arrivals,
    ArrivalStream,
    Scenario,
    SignalConfig,
    TaskQueueConfig,
)

if TYPE_CHECKING:
    from protocol_lab.analytics import Timelines

__all__ = [
    "TARGET_QUEUE_WAIT_S",
    "TARGET_RELATIVE_ERROR",
    "Calibration",
    "FittedDuration",
    "calibrate",
    "calibration_error",
    "fit_duration",
    "observed_measures",
]

_MIN_SAMPLES = 3

TARGET_RELATIVE_ERROR = 0.10
"""How close a calibrated p50/p95 must come to the observed one (relative)."""
TARGET_QUEUE_WAIT_S = 1.0
"""Or, for a queue wait, how close in seconds."""


@dataclass(frozen=True)
class FittedDuration:
    """The chosen model for a sample, its KS statistic and the other candidates' statistics."""

    model: DurationModel
    ks: float
    n: int
    candidates: dict[str, float] = field(default_factory=dict)


def fit_duration(
    values: Sequence[float] | np.ndarray,
    censored: Sequence[float] | np.ndarray = (),
) -> FittedDuration:
    """Fit fixed, exponential, lognormal and gamma models by maximum likelihood; keep the
    lowest AIC. ``ks`` is the chosen model's Kolmogorov-Smirnov statistic, ``candidates``
    every model's. ``censored`` are waits known only to have lasted at least that long (a
    timeout came first); they enter the likelihood through the survival function."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x) & (x >= 0)]
    if len(x) == 0:
        return FittedDuration(Fixed(seconds=0.0), ks=0.0, n=0)
    mean = float(x.mean())
    if len(x) < _MIN_SAMPLES or float(x.std()) <= 0.01 * max(mean, 1e-9):
        return FittedDuration(Fixed(seconds=max(mean, 0.0)), ks=0.0, n=len(x), candidates={})
    positive = np.maximum(x, 1e-6)
    candidates = _uncensored_candidates(x, positive, mean=mean)
    cens = np.asarray(censored, dtype=np.float64)
    cens = np.maximum(cens[np.isfinite(cens) & (cens > 0)], 1e-6)
    if len(cens):
        candidates.update(_censored_candidates(positive, cens, mean=mean))
    finite = {k: v for k, v in candidates.items() if np.isfinite(v[2])} or candidates
    best = min(finite, key=lambda k: finite[k][2])
    return FittedDuration(
        candidates[best][0],
        ks=candidates[best][1],
        n=len(x),
        candidates={k: v[1] for k, v in candidates.items()},
    )


_Candidate = tuple[DurationModel, float, float]
"""A fitted model, its Kolmogorov-Smirnov statistic and its AIC."""


def _lognormal_moments(positive: np.ndarray) -> tuple[float, float]:
    """The mean and (bounded) standard deviation of the logs: the lognormal's fit."""
    logs = np.log(positive)
    return float(logs.mean()), float(min(max(logs.std(), 1e-3), 5.0))


def _uncensored_candidates(
    x: np.ndarray, positive: np.ndarray, *, mean: float
) -> dict[str, _Candidate]:
    """Exponential, lognormal and (when it fits) gamma by maximum likelihood on the values."""
    from scipy import stats

    candidates: dict[str, _Candidate] = {}
    candidates["exponential"] = (
        Exponential(mean_s=max(mean, 1e-6)),
        float(stats.kstest(x, "expon", args=(0, mean)).statistic),
        2 * 1 - 2 * float(stats.expon.logpdf(positive, 0, mean).sum()),
    )
    mu, sigma = _lognormal_moments(positive)
    candidates["lognormal"] = (
        LogNormal(median_s=math.exp(mu), sigma=sigma),
        float(stats.kstest(positive, "lognorm", args=(sigma, 0, math.exp(mu))).statistic),
        2 * 2 - 2 * float(stats.lognorm.logpdf(positive, sigma, 0, math.exp(mu)).sum()),
    )
    with np.errstate(all="ignore"):
        shape, _, scale = stats.gamma.fit(positive, floc=0)
    if np.isfinite(shape) and shape > 0:
        candidates["gamma"] = (
            Gamma(shape=float(shape), mean_s=float(shape * scale)),
            float(stats.kstest(positive, "gamma", args=(shape, 0, scale)).statistic),
            2 * 2 - 2 * float(stats.gamma.logpdf(positive, shape, 0, scale).sum()),
        )
    return candidates


def _censored_candidates(
    positive: np.ndarray, cens: np.ndarray, *, mean: float
) -> dict[str, _Candidate]:
    """The three families refitted with the censored waits in the likelihood (Nelder-Mead)."""
    from scipy import optimize, stats

    mu, sigma = _lognormal_moments(positive)
    families = {
        "exponential": (stats.expon, lambda p: (0, math.exp(p[0])), [math.log(mean)]),
        "lognormal": (
            stats.lognorm,
            lambda p: (math.exp(p[1]), 0, math.exp(p[0])),
            [mu, math.log(sigma)],
        ),
        "gamma": (
            stats.gamma,
            lambda p: (math.exp(p[1]), 0, math.exp(p[0] - p[1])),
            [math.log(mean), 0.0],
        ),
    }
    candidates: dict[str, _Candidate] = {}
    for name, (dist, unpack, start) in families.items():

        def nll(p: np.ndarray, dist: Any = dist, unpack: Any = unpack) -> float:
            args = unpack(p)
            value = -(dist.logpdf(positive, *args).sum() + dist.logsf(cens, *args).sum())
            return float(value) if np.isfinite(value) else 1e300

        fit = optimize.minimize(nll, np.asarray(start), method="Nelder-Mead")
        args = unpack(fit.x)  # type: ignore[no-untyped-call]
        if name == "exponential":
            model: DurationModel = Exponential(mean_s=float(args[1]))
        elif name == "lognormal":
            model = LogNormal(median_s=float(args[2]), sigma=float(min(args[0], 5.0)))
        else:
            model = Gamma(shape=float(args[0]), mean_s=float(args[0] * args[2]))
        ks = float(stats.kstest(positive, dist.cdf, args=args).statistic)
        candidates[name] = (model, ks, 2 * len(start) + 2 * fit.fun)
    return candidates


def _max_concurrency(starts: np.ndarray, ends: np.ndarray) -> int:
    if len(starts) == 0:
        return 0
    times = np.concatenate([starts, ends])
    deltas = np.concatenate([np.ones(len(starts)), -np.ones(len(ends))])
    order = np.lexsort((deltas, times))  # ends before starts at equal times
    return int(np.cumsum(deltas[order]).max())


def _hour_of_week_counts(
    started: pl.Series, origin: Any, hours: int
) -> tuple[np.ndarray, np.ndarray]:
    """Arrivals per hour of the week (UTC), and how often each hour occurs in the span."""
    started = started.drop_nulls()
    bins = np.asarray(
        (
            (started.dt.weekday().cast(pl.Int32) - 1) * 24 + started.dt.hour().cast(pl.Int32)
        ).to_numpy(),
        dtype=np.int64,
    )
    counts = np.bincount(bins, minlength=HOURS_PER_WEEK).astype(np.float64)
    exposure = np.zeros(HOURS_PER_WEEK)
    for h in range(hours):
        t = origin + timedelta(hours=h)
        exposure[t.weekday() * 24 + t.hour] += 1
    return counts, exposure


def _as_profile(rate: np.ndarray) -> HourOfWeekProfile:
    if rate.sum() <= 0:
        rate = np.ones(HOURS_PER_WEEK)
    return HourOfWeekProfile(timezone="UTC", weights=tuple(float(r) for r in rate))


def _profile(started: pl.Series, origin: Any, hours: int) -> HourOfWeekProfile:
    """Arrivals per hour of the week over how often each hour occurs in the span (UTC)."""
    counts, exposure = _hour_of_week_counts(started, origin, hours)
    rate = np.divide(counts, exposure, out=np.zeros(HOURS_PER_WEEK), where=exposure > 0)
    seen = exposure > 0
    fill = rate[seen].mean() if seen.any() and rate[seen].mean() > 0 else 1.0
    rate[~seen] = fill
    return _as_profile(rate)


PROFILE_PRIOR_ARRIVALS = 4.0
"""How many arrivals' worth of the pooled profile a workflow's own profile starts from."""


def _own_profile(
    started: pl.Series, pooled: pl.Series, origin: Any, hours: int
) -> HourOfWeekProfile:
    """One workflow's hour-of-week profile: its own arrivals, shrunk towards every workflow's.

    Workflows start at different hours (a scheduled escalation at night, a laptop request in
    office hours), and when a wait runs on the business calendar the hour it starts decides
    how long it lasts on the clock; one pooled profile would move every workflow's starts to
    the average hour. A sparse workflow borrows the pooled shape, as a prior worth
    :data:`PROFILE_PRIOR_ARRIVALS` arrivals; hours the span never saw take the pooled rate.
    """
    own, exposure = _hour_of_week_counts(started, origin, hours)
    every, _ = _hour_of_week_counts(pooled, origin, hours)
    seen = exposure > 0
    share = every / max(every.sum(), 1.0)
    rate = np.divide(
        own + PROFILE_PRIOR_ARRIVALS * share,
        exposure,
        out=np.zeros(HOURS_PER_WEEK),
        where=seen,
    )
    pooled_rate = _profile(pooled, origin, hours).weights
    scale = own.sum() / max(every.sum(), 1.0)
    rate[~seen] = np.asarray(pooled_rate)[~seen] * scale
    return _as_profile(rate)


def _slug(index: int) -> str:
    return f"calibrated-{index}"


@dataclass
class Calibration:
    """A fitted scenario with what was fitted, and (once measured) its error."""

    scenario: Scenario
    durations: pl.DataFrame
    signals: pl.DataFrame
    workers: pl.DataFrame
    arrivals: pl.DataFrame
    error: pl.DataFrame | None = None
    platform: pl.DataFrame | None = None

    def max_error(self, *, quantities: Sequence[str] | None = None) -> float:
        """The largest relative error in :attr:`error` (over ``quantities`` if given)."""
        if self.error is None:
            raise ValueError("measure the error first (calibration_error)")
        frame = self.error
        if quantities is not None:
            frame = frame.filter(pl.col("quantity").is_in(list(quantities)))
        value = frame["relative_error"].drop_nulls().max()
        return float(value) if value is not None else 0.0  # type: ignore[arg-type]


def _business(steps: pl.DataFrame, calendar: BusinessCalendar) -> pl.Series:
    from protocol_lab.analytics.business_columns import business_seconds

    return steps.select(business_seconds(pl.col("start"), pl.col("end"), calendar).alias("b"))[
        "b"
    ].cast(pl.Float64)


def _timeouts(events: pl.DataFrame, workflow_name: str, step: SignalStep) -> pl.DataFrame:
    """Waits of ``step`` that a timeout ended: start (the wait began) and end (the timeout)."""
    mine = events.filter(pl.col("workflow_name") == workflow_name).sort(
        "workflow_id", "timestamp", maintain_order=True
    )
    began = mine.filter(
        (pl.col("step") == step.id) & (pl.col("event").cast(pl.String) == "activity_started")
    ).select("workflow_id", pl.col("timestamp").alias("start"))
    ended = mine.filter(
        (pl.col("step") == step.id)
        & pl.col("event")
        .cast(pl.String)
        .is_in(["activity_completed", "workflow_failed", "workflow_cancelled"])
        & (pl.col("outcome").cast(pl.String) == "timed_out")
    ).select("workflow_id", pl.col("timestamp").alias("end"))
    return began.join(ended, on="workflow_id").with_columns(
        ((pl.col("end") - pl.col("start")).dt.total_microseconds() / 1e6).alias("total_s")
    )


def _fit_arrivals(
    wf: pl.DataFrame, catalog: Catalog, origin: datetime, span_h: int
) -> tuple[Arrivals, tuple[Rule, ...], pl.DataFrame]:
    """One ticket stream per workflow name at its observed rate and with its own hour-of-week
    profile, and an inline rule per stream that starts that workflow on its observed queue."""
    streams: list[ArrivalStream] = []
    rules: list[Rule] = []
    arrival_rows: list[dict[str, Any]] = []
    mix = (
        wf.group_by("workflow_name")
        .agg(
            pl.len().alias("n"),
            pl.col("task_queue").cast(pl.String).mode().first().alias("queue"),
            pl.col("trigger_type").cast(pl.String).mode().first().alias("trigger"),
            *(
                [pl.col("priority").cast(pl.String).drop_nulls().mode().first().alias("priority")]
                if "priority" in wf.columns
                else []
            ),
        )
        .sort("workflow_name")
    )
    for i, row in enumerate(mix.iter_rows(named=True)):
        if row["workflow_name"] not in catalog:
            continue
        own = _own_profile(
            wf.filter(pl.col("workflow_name") == row["workflow_name"])["started_at"],
            wf["started_at"],
            origin,
            span_h,
        )
        per_week = row["n"] * HOURS_PER_WEEK / float(own.hourly_factors(origin, span_h).sum())
        priority = row.get("priority") or "P3"
        category = _slug(i)
        streams.append(
            ArrivalStream(
                category=category,
                priority=Priority(priority) if priority in Priority.__members__ else Priority.P3,
                tickets_per_week=per_week,
                titles={row["workflow_name"]: 1.0},
                profile=own,
            )
        )
        trigger = row["trigger"] if row["trigger"] in ("automatic", "event_based") else "automatic"
        rules.append(
            Rule(
                name=f"Start {row['workflow_name']}",
                trigger=Trigger.ON_TICKET_CREATED,
                conditions={"category": category},
                action=StartWorkflowAction(
                    workflow_name=row["workflow_name"],
                    task_queue=TaskQueue(row["queue"]),
                    trigger_type=trigger,
                ),
            )
        )
        arrival_rows.append(
            {"workflow_name": row["workflow_name"], "workflows": row["n"], "per_week": per_week}
        )
    arrivals = Arrivals(profile=_profile(wf["started_at"], origin, span_h), streams=tuple(streams))
    return arrivals, tuple(rules), pl.DataFrame(arrival_rows, infer_schema_length=None)


def _fit_workers(
    events: pl.DataFrame, steps: pl.DataFrame, catalog: Catalog, base: Scenario | None
) -> tuple[dict[TaskQueue, TaskQueueConfig], pl.DataFrame]:
    """Workers per task queue: the peak of activities running at once, with a margin above it
    where no activity ever waited for a worker."""
    queues: dict[TaskQueue, TaskQueueConfig] = {}
    worker_rows: list[dict[str, Any]] = []
    busy = steps.filter(pl.col("kind").is_in(["activity", "compensation"]))
    for queue in TaskQueue:
        part = busy.filter(pl.col("task_queue").cast(pl.String) == queue.value)
        slots = base.task_queue(queue).slots if base is not None else 1
        if part.height == 0:
            if base is not None:
                queues[queue] = base.task_queue(queue)
            continue
        starts = part["start"].dt.epoch("us").to_numpy() / 1e6
        ends = part["end"].dt.epoch("us").to_numpy() / 1e6
        peak = _max_concurrency(starts, ends)
        acts = part.filter(pl.col("kind") == "activity")
        # Waits for a worker: activities that became ready while the peak number of others
        # ran (a gap before an activity is otherwise the platform's latency, fitted below).
        full, n_acts = ready_when_full(
            events, steps, catalog=catalog, capacities={queue: peak}
        ).get(queue, (0, acts.height))
        waited = full >= max(_MIN_SAMPLES, 0.02 * n_acts)
        capacity = peak if waited else max(peak + 1, math.ceil(peak * 1.5))
        workers = max(1, math.ceil(capacity / slots))
        queues[queue] = TaskQueueConfig(workers=workers, slots=slots)
        worker_rows.append(
            {
                "task_queue": queue.value,
                "peak_concurrency": peak,
                "waits_seen": waited,
                "workers": workers,
                "slots": slots,
            }
        )
    return queues, pl.DataFrame(worker_rows, infer_schema_length=None)


def _fit_activities(
    steps: pl.DataFrame,
    catalog: Catalog,
    known: Mapping[tuple[str, str], float],
    platform: PlatformFit,
) -> tuple[dict[str, dict[str, DurationModel]], dict[str, dict[str, float]], pl.DataFrame]:
    """Per plan step: its duration model (the platform's overhead taken out first; a known
    fixed duration kept) and its failure probability."""
    durations: dict[str, dict[str, DurationModel]] = {}
    failures: dict[str, dict[str, float]] = {}
    duration_rows: list[dict[str, Any]] = []
    attempts = steps.filter(pl.col("kind") == "activity")
    for (wf_name, step_id), part in attempts.group_by(
        ["workflow_name", "step"], maintain_order=True
    ):
        plan = catalog.get(str(wf_name))
        if plan is None:
            continue
        try:
            step = plan.step(str(step_id))
        except KeyError:
            continue
        if not isinstance(step, ActivityStep):
            continue
        values = part["active_s"].to_numpy()
        values = values[values < step.timeout_s * 0.999]  # timed-out attempts are cut short
        if (str(wf_name), str(step_id)) in known:
            # the platform's overhead was fitted from exactly these steps: what is left of
            # them is the known duration, and a fit would only model the overhead's noise
            fitted = FittedDuration(
                Fixed(seconds=known[(str(wf_name), str(step_id))]), ks=0.0, n=len(values)
            )
        else:
            # the activity overhead is the platform's, not the step's own work
            queue = TaskQueue(str(part["task_queue"].cast(pl.String).mode().first()))
            values = deconvolve(values, *platform.moments_for(queue, step.activity))
            fitted = fit_duration(values)
        failed = int((part["outcome"] == "failed").sum())
        p_fail = failed / part.height if part.height else 0.0
        durations.setdefault(str(wf_name), {})[str(step_id)] = fitted.model
        failures.setdefault(str(wf_name), {})[str(step_id)] = round(p_fail, 6)
        duration_rows.append(
            {
                "workflow_name": wf_name,
                "step": step_id,
                "n": fitted.n,
                "model": fitted.model.dist,
                "parameters": fitted.model.model_dump_json(exclude={"dist"}),
                "ks": fitted.ks,
                "failure_probability": p_fail,
            }
        )
    return durations, failures, pl.DataFrame(duration_rows, infer_schema_length=None)


def _fit_signals(
    events: pl.DataFrame,
    steps: pl.DataFrame,
    catalog: Catalog,
    base: Scenario | None,
    calendar: BusinessCalendar,
) -> tuple[dict[str, SignalConfig], pl.DataFrame]:
    """Per signal: its response model (business seconds for people at work; waits a timeout
    ended are censored) and its rejection probability."""
    signal_rows: list[dict[str, Any]] = []
    signal_configs: dict[str, SignalConfig] = {}
    # waits a timeout ended are censored (below), not waits that ended with the signal
    received = steps.filter((pl.col("kind") == "signal") & (pl.col("outcome") != "timed_out"))
    failed_events = events.filter(pl.col("event").cast(pl.String) == "workflow_failed")
    for (wf_name, step_id), part in received.group_by(
        ["workflow_name", "step"], maintain_order=True
    ):
        plan = catalog.get(str(wf_name))
        if plan is None:
            continue
        try:
            step = plan.step(str(step_id))
        except KeyError:
            continue
        if not isinstance(step, SignalStep):
            continue
        configured = base.signal(step.signal) if base is not None else SignalConfig()
        business = step.human and configured.business_hours
        waits = (_business(part, calendar) if business else part["total_s"]).to_numpy()
        timed_out = _timeouts(events, str(wf_name), step)
        cut = (_business(timed_out, calendar) if business else timed_out["total_s"]).to_numpy()
        fitted = fit_duration(waits, cut)
        rejected = failed_events.filter(
            (pl.col("workflow_name") == wf_name)
            & (pl.col("step") == step_id)
            & (pl.col("outcome").cast(pl.String) == "rejected")
        ).height
        p_reject = rejected / part.height if part.height else 0.0
        signal_configs[step.signal] = SignalConfig(
            business_hours=configured.business_hours,
            reject_probability=round(p_reject, 6),
            response=fitted.model,
        )
        signal_rows.append(
            {
                "workflow_name": wf_name,
                "step": step_id,
                "signal": step.signal,
                "business_hours": business,
                "n": fitted.n,
                "model": fitted.model.dist,
                "parameters": fitted.model.model_dump_json(exclude={"dist"}),
                "ks": fitted.ks,
                "reject_probability": p_reject,
            }
        )
    return signal_configs, pl.DataFrame(signal_rows, infer_schema_length=None)


def calibrate(
    timelines: Timelines,
    *,
    base: Scenario | None = None,
    catalog: Catalog | None = None,
    name: str = "Calibrated",
    seed: int = 0,
    measure: bool = True,
    replications: int = 3,
    compression: float | None = None,
) -> Calibration:
    """Fit a scenario to ``timelines`` (see the module docstring).

    ``base`` gives the catalog, calendar, signal calendars, slots per worker, the durations
    known to be fixed and the platform's ``workflow_start`` to start from (default: the shipped
    catalog and data/sla.yaml). ``compression`` is the log's simulated seconds per wall second
    (default: the base's platform compression, else 1): the platform's latency is fitted in
    wall-clock seconds (:mod:`protocol_lab.sim.platform_fit`) and :attr:`Calibration.platform`
    lists it. With ``measure``, the fitted scenario is simulated ``replications`` times and
    :attr:`Calibration.error` is filled.
    """
    from protocol_lab.domain import load_catalog
    from protocol_lab.domain.sla import load_sla_config

    events, wf = timelines.collect()
    if wf.height == 0:
        raise ValueError("no workflows to calibrate from")
    catalog = (
        catalog
        if catalog is not None
        else (base.load_catalog() if base is not None else load_catalog())
    )
    calendar = base.business_calendar() if base is not None else load_sla_config().calendar
    steps = timelines.steps().collect().with_columns(pl.col("kind").cast(pl.String))

    origin, span_h = _observed_window(wf)
    arrivals, rules, arrival_rows = _fit_arrivals(wf, catalog, origin, span_h)
    queues, worker_rows = _fit_workers(events, steps, catalog, base)
    known = known_fixed_durations(catalog, base.durations if base is not None else {})
    fitted_platform = _fit_platform_of(
        events,
        steps,
        catalog=catalog,
        base=base,
        queues=queues,
        known=known,
        compression=compression,
    )
    durations, failures, duration_rows = _fit_activities(steps, catalog, known, fitted_platform)
    signal_configs, signal_rows = _fit_signals(events, steps, catalog, base, calendar)
    scenario = Scenario(
        name=name,
        description="Fitted from observed timelines by protocol_lab.sim.calibration.",
        start=origin,
        horizon_hours=float(span_h),
        warmup_hours=0.0,
        drain=True,
        seed=seed,
        catalog=base.catalog if base is not None else "definitions",
        rules=rules,
        arrivals=arrivals,
        task_queues=queues,
        job_queues=dict(base.job_queues) if base is not None else {},
        signals=signal_configs,
        calendar=calendar,
        durations=durations,
        failure_probabilities=failures,
        platform=fitted_platform.config,
    )
    result = Calibration(
        scenario=scenario,
        durations=duration_rows,
        signals=signal_rows,
        workers=worker_rows,
        arrivals=arrival_rows,
        platform=fitted_platform.rows,
    )
    if measure:
        result.error = calibration_error(timelines, scenario, replications=replications)
    return result


def _observed_window(wf: pl.DataFrame) -> tuple[datetime, int]:
    """The hour the first workflow started in, and whole hours from it past the last start."""
    first: datetime = wf["started_at"].min()  # type: ignore[assignment]
    last: datetime = wf["started_at"].max()  # type: ignore[assignment]
    origin = first.replace(minute=0, second=0, microsecond=0)
    return origin, max(1, math.ceil((last - origin).total_seconds() / 3600.0 + 1e-9))


def _fit_platform_of(
    events: pl.DataFrame,
    steps: pl.DataFrame,
    *,
    catalog: Catalog,
    base: Scenario | None,
    queues: Mapping[TaskQueue, TaskQueueConfig],
    known: Mapping[tuple[str, str], float],
    compression: float | None,
) -> PlatformFit:
    """The platform's latency in wall-clock seconds, at the log's compression (else the base's,
    else 1)."""
    c = (
        compression
        if compression is not None
        else (base.platform.compression if base is not None else 1.0)
    )
    return fit_platform(
        events,
        steps,
        catalog=catalog,
        compression=c,
        known_durations=known,
        capacities={q: cfg.capacity for q, cfg in queues.items()},
        workflow_start=base.platform.workflow_start if base is not None else None,
        fit=empirical_model,
    )


def observed_measures(timelines: Timelines) -> pl.DataFrame:
    """Per task queue: samples of cycle time, worker-queue wait and signal wait (seconds).

    Columns ``task_queue``, ``quantity`` (cycle_time, queue_wait, signal_wait), ``value_s``.
    """
    wf = timelines.workflows.select("task_queue", "cycle_time_s").collect()
    steps = timelines.steps().collect().with_columns(pl.col("kind").cast(pl.String))
    frames = [
        wf.drop_nulls("cycle_time_s").select(
            pl.col("task_queue").cast(pl.String),
            pl.lit("cycle_time").alias("quantity"),
            pl.col("cycle_time_s").alias("value_s"),
        ),
        steps.filter(pl.col("kind") == "activity").select(
            pl.col("task_queue").cast(pl.String),
            pl.lit("queue_wait").alias("quantity"),
            pl.col("wait_s").alias("value_s"),
        ),
        steps.filter(pl.col("kind") == "signal").select(
            pl.col("task_queue").cast(pl.String),
            pl.lit("signal_wait").alias("quantity"),
            pl.col("total_s").alias("value_s"),
        ),
    ]
    return pl.concat(frames, how="vertical_relaxed")


_Z90 = 1.645


def _quantile_spread(obs: pl.DataFrame) -> pl.DataFrame:
    """Per task queue, quantity and stat: how precisely the sample pins its p50/p95 down, as
    the half-width of a distribution-free 90% interval (order statistics around q*n) over the
    quantile (floor 1 s), column ``observed_spread``; infinite where that interval would need
    an order statistic beyond the sample's smallest or largest value."""
    rows = []
    for (queue, quantity), part in obs.group_by(["task_queue", "quantity"]):
        x = np.sort(part["value_s"].drop_nulls().to_numpy())
        n = len(x)
        for stat, q in (("p50", 0.5), ("p95", 0.95)):
            if n == 0:
                continue
            half = _Z90 * math.sqrt(n * q * (1 - q))
            lo = math.floor(n * q - half) - 1
            hi = math.ceil(n * q + half) - 1
            value = float(np.quantile(x, q))
            # an interval reaching past the sample's extreme values is open on that side: the
            # sample does not bound the quantile there (the p95 of a dozen values)
            spread = (
                math.inf
                if lo < 0 or hi > n - 1
                else (float(x[hi]) - float(x[lo])) / 2 / max(value, 1.0)
            )
            rows.append((str(queue), str(quantity), stat, spread))
    return pl.DataFrame(
        rows,
        schema={
            "task_queue": pl.String,
            "quantity": pl.String,
            "stat": pl.String,
            "observed_spread": pl.Float64,
        },
        orient="row",
    )


def calibration_error(
    observed: Timelines,
    scenario: Scenario,
    *,
    replications: int = 3,
) -> pl.DataFrame:
    """Simulate ``scenario`` and compare p50/p95 per task queue and quantity with ``observed``.

    Columns: task_queue, quantity, stat (p50 / p95), observed_s, simulated_s, n_observed,
    observed_spread (how precisely the observed sample pins the quantile down: half-width of a
    distribution-free 90% interval, relative), absolute_error_s, relative_error (absolute error
    over the observed value, with a floor of one second so that near-zero waits do not divide
    by zero), and ``within_target``: within :data:`TARGET_RELATIVE_ERROR` (10%), or for queue
    waits within that or :data:`TARGET_QUEUE_WAIT_S` (1 s).
    """
    from protocol_lab.sim.model import simulate

    runs = [
        observed_measures(simulate(scenario, seed=scenario.seed + k).timelines)
        for k in range(max(1, replications))
    ]
    sim = pl.concat(runs)
    obs = observed_measures(observed)

    def quantiles(frame: pl.DataFrame, suffix: str) -> pl.DataFrame:
        return (
            frame.group_by("task_queue", "quantity")
            .agg(
                pl.col("value_s").quantile(0.5, "linear").alias("p50"),
                pl.col("value_s").quantile(0.95, "linear").alias("p95"),
            )
            .unpivot(index=["task_queue", "quantity"], variable_name="stat", value_name=suffix)
        )

    counts = obs.group_by("task_queue", "quantity").agg(pl.len().cast(pl.Int64).alias("n_observed"))
    table = (
        quantiles(obs, "observed_s")
        .join(quantiles(sim, "simulated_s"), on=["task_queue", "quantity", "stat"], how="left")
        .join(counts, on=["task_queue", "quantity"], how="left")
        .join(_quantile_spread(obs), on=["task_queue", "quantity", "stat"], how="left")
    )
    return (
        table.with_columns(
            (pl.col("simulated_s") - pl.col("observed_s")).abs().alias("absolute_error_s"),
        )
        .with_columns(
            (
                pl.col("absolute_error_s") / pl.max_horizontal(pl.col("observed_s"), pl.lit(1.0))
            ).alias("relative_error")
        )
        .with_columns(
            (
                (pl.col("relative_error") <= TARGET_RELATIVE_ERROR)
                | (
                    (pl.col("quantity") == "queue_wait")
                    & (pl.col("absolute_error_s") <= TARGET_QUEUE_WAIT_S)
                )
            )
            .fill_null(value=False)
            .alias("within_target")
        )
        .sort("task_queue", "quantity", "stat")
    )
