"""Fitting the platform's latency (:mod:`protocol_lab.sim.platform`) from timelines.

A timeline shows the platform's latency only in the gaps between events, so each parameter is
read from the gaps that hold it (times on the log's clock, divided by ``compression`` to give
wall-clock seconds):

- ``workflow_task``: from an activity's end to the next signal wait's start, and from the last
  step's end to ``workflow_completed`` (a workflow task and nothing else); but where those
  gaps are clearly longer than the whole gap before an activity (the service's workflow records
  its state when a wait begins and when it closes), or where the gaps before activities are no
  sum of such a task and an independent draw (:func:`_sum_of_two`: on a loaded machine both
  latencies rise and fall together, and read as a sum the gaps' median came out 70-170% too
  high), they become ``wait_task`` and the workflow task is the whole gap before an activity,
  pooled over the queues;
- ``first_workflow_task``: from ``workflow_started`` to a first step that is a signal wait;
- ``signal_delivery``: from a signal's receipt (or a wait's timeout) to the next signal wait;
- ``schedule_to_start`` per task queue: the gap before an activity that follows an activity,
  less the workflow task in it (the difference of the two samples' means and variances, see
  :func:`deconvolve`), counting only activities that found a free slot (fewer activities running
  on the queue than its capacity when the gap began), so that waiting for a worker is left to
  the worker model;
- where no pure gap exists (a plan without signal waits) the same difference is taken from the
  gaps before activities;
- ``activity_overhead`` per task queue: an activity's active time less its known duration, from
  the steps whose duration model in the base scenario is fixed (the rest of a step's time is
  its own work, which calibration fits as the step's duration), pooled over the queues for a
  queue with fewer than eight such steps; and per activity kind where
  a kind has enough such steps (a ticket update writes the store, a job goes to Redis: their
  costs differ, whatever the queue);
- ``workflow_start`` (the rule engine's time from the ticket event to the workflow's start) is
  not in a timeline; the replay pipeline measures it from its own calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from protocol_lab.domain.catalog import ActivityKind, ActivityStep, Catalog, SignalStep
from protocol_lab.domain.durations import DurationModel, Empirical, Fixed
from protocol_lab.domain.queues import TaskQueue
from protocol_lab.sim.platform import PlatformConfig, QueueLatency

__all__ = [
    "PlatformFit",
    "deconvolve",
    "empirical_model",
    "fit_model",
    "fit_platform",
    "known_fixed_durations",
    "latency_row",
    "platform_rows",
    "ready_when_full",
    "workflow_task_by_hour",
]

_MIN = 3
_MIN_OWN_OVERHEAD = 8
"""Steps of known duration a task queue or an activity kind needs for an activity overhead of
its own; a queue with fewer takes the pool of every queue's, a kind with fewer none. The
embedded service runs every queue in one worker process, so what differs between queues is
mostly noise until a queue has enough steps: in a demo's warm-up, itsm-high-priority's 3 steps
gave a mean of 32 ms where the queues with 14-56 steps gave 21-23 ms."""


@dataclass(frozen=True)
class PlatformFit:
    """The fitted platform and the samples behind it.

    ``rows`` has one row per fitted parameter: parameter, task_queue, n (gaps used), mean_ms
    and p95_ms (wall clock, of the fitted model), model (its family) and source (which gaps).
    ``overhead_moments`` maps a task queue to the mean and variance (simulated seconds) of its
    activity overhead, for the duration fits to take out; ``kind_moments`` the same per
    activity kind, where the kind has its own overhead.
    """

    config: PlatformConfig
    rows: pl.DataFrame
    overhead_moments: dict[TaskQueue, tuple[float, float]]
    kind_moments: dict[ActivityKind, tuple[float, float]] = field(default_factory=dict)

    def moments_for(self, queue: TaskQueue, kind: ActivityKind) -> tuple[float, float]:
        """The overhead's mean and variance (simulated seconds) for a step of ``kind`` on
        ``queue``: the kind's own where fitted, else the queue's."""
        return self.kind_moments.get(kind, self.overhead_moments[queue])


def deconvolve(values: np.ndarray, other_mean: float, other_var: float) -> np.ndarray:
    """Samples of X from samples of X + Y, Y independent with the given mean and variance.

    The sample is shifted by Y's mean and its spread around the mean narrowed so that its
    variance is the difference of the variances (the shape of the sample is kept); values are
    clipped at zero.
    """
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0 or (other_mean == 0 and other_var == 0):
        return x
    mean, var = float(x.mean()), float(x.var())
    rest = max(var - other_var, 0.0)
    factor = np.sqrt(rest / var) if var > 0 else 0.0
    return np.maximum(mean - other_mean + (x - mean) * factor, 0.0)


def fit_model(values: np.ndarray) -> DurationModel:
    """The best fit of a sample of latencies (a near-zero sample is Fixed(0))."""
    from protocol_lab.sim.calibration import fit_duration

    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0 or float(np.mean(x)) <= 1e-7:
        return Fixed(seconds=0.0)
    return fit_duration(np.maximum(x, 0.0)).model


_MAX_EMPIRICAL = 5000


def empirical_model(values: np.ndarray) -> DurationModel:
    """The sample itself as the model (resampled; at most 5,000 values kept, evenly spaced
    quantiles beyond that), for measured latencies whose tails no family fits."""
    x = np.asarray(values, dtype=np.float64)
    x = np.maximum(x[np.isfinite(x)], 0.0)
    if len(x) == 0 or float(np.mean(x)) <= 1e-7:
        return Fixed(seconds=0.0)
    if len(x) > _MAX_EMPIRICAL:
        x = np.quantile(x, np.linspace(0.0, 1.0, _MAX_EMPIRICAL))
    return Empirical(values_s=tuple(float(v) for v in np.sort(x)))


def _moments(model: DurationModel, sample: np.ndarray) -> tuple[float, float]:
    if isinstance(model, Fixed):
        return model.seconds, 0.0
    return float(model.mean()), float(np.var(sample)) if len(sample) else 0.0


def _kinds(catalog: Catalog) -> pl.DataFrame:
    rows = [
        (plan.name, step.id, "signal" if isinstance(step, SignalStep) else "activity")
        for plan in catalog.values()
        for step in plan.steps
    ]
    return pl.DataFrame(
        rows,
        schema={"workflow_name": pl.String, "step": pl.String, "kind": pl.String},
        orient="row",
    )


def _gaps(events: pl.DataFrame, catalog: Catalog) -> pl.DataFrame:
    """Every gap before a step's start or a completion, with what came before it."""
    kinds = _kinds(catalog)
    frame = (
        events.sort("workflow_id", "timestamp", maintain_order=True)
        .with_columns(
            pl.col("event").cast(pl.String),
            pl.col("task_queue").cast(pl.String),
            pl.col("workflow_name").cast(pl.String),
        )
        .join(kinds, on=["workflow_name", "step"], how="left")
        .with_columns(
            pl.col("event").shift(1).over("workflow_id").alias("prev_event"),
            pl.col("kind").shift(1).over("workflow_id").alias("prev_kind"),
            pl.col("timestamp").shift(1).over("workflow_id").alias("prev_ts"),
        )
        .with_columns(
            ((pl.col("timestamp") - pl.col("prev_ts")).dt.total_microseconds() / 1e6).alias("gap_s")
        )
    )
    attempt = pl.col("attempt") if "attempt" in frame.columns else pl.lit(None)
    after = (
        pl.when(pl.col("prev_event") == "workflow_started")
        .then(pl.lit("first"))
        .when((pl.col("prev_event") == "activity_completed") & (pl.col("prev_kind") == "activity"))
        .then(pl.lit("task"))
        .when(
            (pl.col("prev_event") == "signal_received")
            | ((pl.col("prev_event") == "activity_completed") & (pl.col("prev_kind") == "signal"))
        )
        .then(pl.lit("delivery"))
        .otherwise(None)
    )
    return (
        frame.filter(
            (
                (pl.col("event") == "activity_started")
                & pl.col("kind").is_not_null()
                & (attempt.fill_null(1) <= 1)
            )
            | (pl.col("event") == "workflow_completed")
        )
        .with_columns(
            after.alias("after"),
            pl.when(pl.col("event") == "workflow_completed")
            .then(pl.lit("close"))
            .otherwise(pl.col("kind"))
            .alias("what"),
        )
        .filter(pl.col("after").is_not_null() & pl.col("gap_s").is_not_null())
        .select("task_queue", "after", "what", "prev_ts", "timestamp", "gap_s")
    )


def _free_slot(
    gaps: pl.DataFrame, steps: pl.DataFrame, capacities: Mapping[TaskQueue, int] | None
) -> pl.Series:
    """True for each gap whose activity found a worker slot free when the gap began."""
    free = np.ones(gaps.height, dtype=bool)
    if not capacities or gaps.height == 0:
        return pl.Series("free", free)
    busy = steps.filter(pl.col("kind").cast(pl.String).is_in(["activity", "compensation"]))
    for queue, capacity in capacities.items():
        mine = (gaps["task_queue"] == queue.value).to_numpy()
        if not mine.any():
            continue
        part = busy.filter(pl.col("task_queue").cast(pl.String) == queue.value)
        starts = np.sort(part["start"].dt.epoch("us").to_numpy())
        ends = np.sort(part["end"].dt.epoch("us").to_numpy())
        ready = gaps["prev_ts"].dt.epoch("us").to_numpy()[mine]
        began = gaps["timestamp"].dt.epoch("us").to_numpy()[mine]
        running = np.searchsorted(starts, ready, "right") - np.searchsorted(ends, ready, "right")
        running -= (began <= ready).astype(np.int64)  # the activity itself, started at once
        free[np.flatnonzero(mine)] = running < capacity
    return pl.Series("free", free)


def workflow_task_by_hour(
    events: pl.DataFrame, *, catalog: Catalog, compression: float
) -> pl.DataFrame:
    """The workflow task (an activity's end to the next wait or the close, wall-clock ms) per
    hour of the log's clock: hour (the hour's start), n, p50_ms, mean_ms. It shows whether the
    platform's latency held steady over a run or rose with the load."""
    gaps = _gaps(events, catalog).filter(
        (pl.col("after") == "task") & pl.col("what").is_in(["signal", "close"])
    )
    return (
        gaps.with_columns(
            pl.col("timestamp").dt.truncate("1h").alias("hour"),
            (pl.col("gap_s") / compression * 1000).alias("ms"),
        )
        .group_by("hour")
        .agg(
            pl.len().cast(pl.Int64).alias("n"),
            pl.col("ms").median().alias("p50_ms"),
            pl.col("ms").mean().alias("mean_ms"),
        )
        .sort("hour")
    )


def ready_when_full(
    events: pl.DataFrame,
    steps: pl.DataFrame,
    *,
    catalog: Catalog,
    capacities: Mapping[TaskQueue, int],
) -> dict[TaskQueue, tuple[int, int]]:
    """Per task queue: (activities that became ready while ``capacity`` others ran, all
    activities), from the gaps before activities; the first count shows waits for a worker."""
    gaps = _gaps(events, catalog).filter(pl.col("what") == "activity")
    gaps = gaps.with_columns(_free_slot(gaps, steps, capacities))
    out: dict[TaskQueue, tuple[int, int]] = {}
    for queue in capacities:
        mine = gaps.filter(pl.col("task_queue") == queue.value)
        out[queue] = (int((~mine["free"]).sum()), mine.height)
    return out


_ROW_SCHEMA = {
    "parameter": pl.String,
    "task_queue": pl.String,
    "n": pl.Int64,
    "model": pl.String,
    "mean_ms": pl.Float64,
    "source": pl.String,
}

_Moments = tuple[float, float]


@dataclass(frozen=True)
class _TaskFit:
    """The workflow task, the wait task where the log tells them apart, and their samples."""

    task: DurationModel
    sample: np.ndarray
    moments: _Moments
    wait: DurationModel | None
    from_activities: bool  # no pure gap: the task was read from the gaps before activities


def latency_row(
    parameter: str, queue: str | None, n: int, model: DurationModel, source: str
) -> dict[str, object]:
    """One latency as a row of a platform table (:data:`_ROW_SCHEMA`; mean in wall ms)."""
    return {
        "parameter": parameter,
        "task_queue": queue,
        "n": n,
        "model": model.dist,
        "mean_ms": float(model.mean()) * 1000,
        "source": source,
    }


class _Fitter:
    """One log's gaps (wall-clock seconds, with whether a worker slot was free) and the rows
    of what has been fitted from them, one method per parameter group."""

    def __init__(
        self, gaps: pl.DataFrame, fit: Callable[[np.ndarray], DurationModel], compression: float
    ) -> None:
        self.gaps = gaps
        self.fit = fit
        self.c = compression
        self.rows: list[dict[str, object]] = []

    def sample(self, after: str, what: tuple[str, ...], queue: str | None = None) -> np.ndarray:
        """The free-slot gaps after ``after`` before one of ``what`` (on ``queue``)."""
        cond = (pl.col("after") == after) & pl.col("what").is_in(list(what)) & pl.col("free")
        if queue is not None:
            cond &= pl.col("task_queue") == queue
        return self.gaps.filter(cond)["wall_s"].to_numpy()

    def row(
        self, parameter: str, queue: str | None, n: int, model: DurationModel, source: str
    ) -> None:
        """Record one fitted parameter."""
        self.rows.append(latency_row(parameter, queue, n, model, source))

    def table(self) -> pl.DataFrame:
        """Every fitted parameter as a row."""
        return pl.DataFrame(self.rows, schema=_ROW_SCHEMA)

    def tasks(self) -> _TaskFit:
        """The workflow task: pure gaps first, else the gaps before activities (then there is
        no schedule-to-start); a wait task where pure gaps are clearly the longer, or where the
        gaps before activities are no sum of a workflow task and an independent draw."""
        pure = self.sample("task", ("signal", "close"))
        before_activities = self.sample("task", ("activity",))
        from_activities = len(pure) < _MIN
        wait: DurationModel | None = None
        if not from_activities and (
            _clearly_below(before_activities, pure) or not _sum_of_two(pure, before_activities)
        ):
            # A wait's or a close's workflow task also records the workflow's state, and may
            # cost more than the whole gap before an activity; and on a loaded machine the gap
            # before an activity is one latency (workflow task and schedule-to-start under the
            # same load), not the sum of two independent ones. Each is then its own latency,
            # and a queue's schedule-to-start is only what its gaps clearly add to the others'.
            wait = self.fit(pure)
            self.row("wait_task", None, len(pure), wait, "gaps before waits and closes")
            sample, source = before_activities, "gaps before activities, all queues"
        elif from_activities:
            sample, source = before_activities, "gaps before activities"
        else:
            sample, source = pure, "gaps before waits and closes"
        task = self.fit(sample)
        self.row("workflow_task", None, len(sample), task, source)
        return _TaskFit(task, sample, _moments(task, sample), wait, from_activities)

    def queues(
        self, tasks: _TaskFit, overheads: pl.DataFrame
    ) -> tuple[dict[TaskQueue, QueueLatency], dict[TaskQueue, _Moments], dict[TaskQueue, _Moments]]:
        """Per task queue: schedule-to-start (its gaps before activities less the workflow
        task) and activity overhead (its own steps of known duration, else every queue's);
        with the moments of both (the overhead's in the log's seconds)."""
        c = self.c
        by_queue = {
            str(queue): part["o"].to_numpy()
            for (queue,), part in overheads.group_by(["task_queue"], maintain_order=True)
        }
        pooled = overheads["o"].to_numpy()
        latencies: dict[TaskQueue, QueueLatency] = {}
        s2s_moments: dict[TaskQueue, _Moments] = {}
        overhead_moments: dict[TaskQueue, _Moments] = {}
        for queue in TaskQueue:
            gaps_q = self.sample("task", ("activity",), queue.value)
            if (
                tasks.from_activities
                or len(gaps_q) < _MIN
                or (tasks.wait is not None and not _clearly_below(tasks.sample, gaps_q))
            ):
                s2s: DurationModel = Fixed(seconds=0.0)
                s2s_sample = np.zeros(0)
            else:
                s2s_sample = deconvolve(gaps_q, *tasks.moments)
                s2s = self.fit(s2s_sample)
            s2s_moments[queue] = _moments(s2s, s2s_sample)
            own = by_queue.get(queue.value, np.zeros(0))
            own_enough = len(own) >= _MIN_OWN_OVERHEAD
            o_sample = own if own_enough else pooled
            overhead = self.fit(o_sample) if len(o_sample) >= _MIN else Fixed(seconds=0.0)
            o_mean, o_var = _moments(overhead, o_sample)
            overhead_moments[queue] = (o_mean * c, o_var * c * c)
            if len(gaps_q) or len(own):
                self.row(
                    "schedule_to_start", queue.value, len(gaps_q), s2s, "gaps before activities"
                )
                self.row(
                    "activity_overhead",
                    queue.value,
                    len(o_sample),
                    overhead,
                    "fixed-duration steps" + ("" if own_enough else ", all queues"),
                )
            latencies[queue] = QueueLatency(schedule_to_start=s2s, activity_overhead=overhead)
        return latencies, s2s_moments, overhead_moments

    def kinds(
        self, overheads: pl.DataFrame
    ) -> tuple[dict[ActivityKind, DurationModel], dict[ActivityKind, _Moments]]:
        """The activity overhead of each kind with enough steps of known duration."""
        kinds: dict[ActivityKind, DurationModel] = {}
        moments: dict[ActivityKind, _Moments] = {}
        for (kind,), part in overheads.group_by(["kind"], maintain_order=True):
            sample = part["o"].to_numpy()
            if len(sample) < _MIN_OWN_OVERHEAD:
                continue
            model = self.fit(sample)
            kinds[ActivityKind(str(kind))] = model
            mean, var = _moments(model, sample)
            moments[ActivityKind(str(kind))] = (mean * self.c, var * self.c * self.c)
            self.row(f"activity_overhead[{kind}]", None, len(sample), model, f"{kind} steps")
        return kinds, moments

    def before_step(
        self, after: str, name: str, s2s_moments: Mapping[TaskQueue, _Moments]
    ) -> DurationModel | None:
        """The gap after ``after`` (the first task, a signal's delivery): from the gaps before
        signal waits, else from those before activities less their schedule-to-start."""
        pure = self.sample(after, ("signal",))
        if len(pure) >= _MIN:
            model = self.fit(pure)
            self.row(name, None, len(pure), model, "gaps before signal waits")
            return model
        mixed = self.gaps.filter(
            (pl.col("after") == after) & (pl.col("what") == "activity") & pl.col("free")
        )
        if mixed.height < _MIN:
            return None
        means = [s2s_moments[TaskQueue(q)] for q in mixed["task_queue"].to_list()]
        other_mean = float(np.mean([m for m, _ in means]))
        other_var = float(np.mean([v for _, v in means]))
        model = self.fit(deconvolve(mixed["wall_s"].to_numpy(), other_mean, other_var))
        self.row(name, None, mixed.height, model, "gaps before activities")
        return model


def fit_platform(
    events: pl.DataFrame,
    steps: pl.DataFrame,
    *,
    catalog: Catalog,
    compression: float,
    known_durations: Mapping[tuple[str, str], float] | None = None,
    capacities: Mapping[TaskQueue, int] | None = None,
    workflow_start: DurationModel | None = None,
    fit: Callable[[np.ndarray], DurationModel] = fit_model,
) -> PlatformFit:
    """Fit the platform's latency from a log's events and steps (see the module docstring).

    ``known_durations`` maps (workflow name, step id) to a fixed duration in the log's seconds;
    ``capacities`` gives the worker slots per task queue (to leave out activities that waited
    for one); ``workflow_start`` is kept as given (a timeline cannot show it); ``fit`` turns a
    sample of wall-clock seconds into a model (a family by AIC; :func:`empirical_model` keeps
    the sample).
    """
    c = float(compression)
    gaps = _gaps(events, catalog)
    gaps = gaps.with_columns(_free_slot(gaps, steps, capacities)).with_columns(
        (pl.col("gap_s") / c).alias("wall_s")
    )
    fitter = _Fitter(gaps, fit, c)
    tasks = fitter.tasks()
    overheads = _overheads(steps, known_durations or {}, c, catalog)
    queues, s2s_moments, overhead_moments = fitter.queues(tasks, overheads)
    kinds, kind_moments = fitter.kinds(overheads)
    config = PlatformConfig(
        compression=c,
        workflow_start=workflow_start if workflow_start is not None else Fixed(seconds=0.0),
        first_workflow_task=fitter.before_step("first", "first_workflow_task", s2s_moments),
        workflow_task=tasks.task,
        signal_delivery=fitter.before_step("delivery", "signal_delivery", s2s_moments),
        wait_task=tasks.wait,
        queues=queues,
        activities=kinds,
    )
    return PlatformFit(
        config=config,
        rows=fitter.table(),
        overhead_moments=overhead_moments,
        kind_moments=kind_moments,
    )


_SUM_PAIRS = 20_000
_SUM_TOLERANCE = 0.10


def _sum_of_two(task: np.ndarray, gaps: np.ndarray) -> bool:
    """True when ``gaps`` read as ``task`` plus an independent draw (:func:`deconvolve`) give
    back their own median within 10%; also when either sample is under three.

    In the simulator's own log they do; on a loaded replay the two latencies rose and fell
    together, and the sum of independent draws put the median of the gaps before activities
    70-170% too high."""
    if len(task) < _MIN or len(gaps) < _MIN:
        return True
    rest = deconvolve(gaps, float(np.mean(task)), float(np.var(task)))
    rng = np.random.default_rng(0)
    pairs = rng.choice(task, _SUM_PAIRS) + rng.choice(rest, _SUM_PAIRS)
    median = float(np.median(gaps))
    return abs(float(np.median(pairs)) - median) <= _SUM_TOLERANCE * max(median, 1e-9)


def _clearly_below(lower: np.ndarray, higher: np.ndarray) -> bool:
    """True when ``lower``'s mean is below ``higher``'s by more than twice the standard error
    of the difference (both samples of at least three)."""
    if len(lower) < _MIN or len(higher) < _MIN:
        return False
    se = float(np.sqrt(np.var(lower) / len(lower) + np.var(higher) / len(higher)))
    return float(np.mean(higher) - np.mean(lower)) > 2 * se


def _overheads(
    steps: pl.DataFrame,
    known: Mapping[tuple[str, str], float],
    compression: float,
    catalog: Catalog,
) -> pl.DataFrame:
    """Active time less the known fixed duration, in wall-clock seconds (``o``), of every
    completed step whose duration is known, with its ``task_queue`` and activity ``kind``."""
    schema = {"task_queue": pl.String, "kind": pl.String, "o": pl.Float64}
    if not known:
        return pl.DataFrame(schema=schema)
    kinds = {
        (plan.name, step.id): step.activity.value
        for plan in catalog.values()
        for step in plan.steps
        if isinstance(step, ActivityStep)
    }
    table = pl.DataFrame(
        [(w, s, float(v), kinds.get((w, s))) for (w, s), v in known.items()],
        schema={
            "workflow_name": pl.String,
            "step": pl.String,
            "fixed_s": pl.Float64,
            "kind": pl.String,
        },
        orient="row",
    )
    return (
        steps.filter(
            (pl.col("kind").cast(pl.String) == "activity") & (pl.col("outcome") == "completed")
        )
        .with_columns(pl.col("workflow_name").cast(pl.String), pl.col("task_queue").cast(pl.String))
        .drop("kind")
        .join(table, on=["workflow_name", "step"], how="inner")
        .select(
            "task_queue",
            "kind",
            ((pl.col("active_s") - pl.col("fixed_s")) / compression).alias("o"),
        )
        .filter(pl.col("kind").is_not_null())
    )


def known_fixed_durations(
    catalog: Catalog, scenario_durations: Mapping[str, Mapping[str, DurationModel]]
) -> dict[tuple[str, str], float]:
    """(workflow, step) -> seconds for every activity step whose duration model is fixed."""
    out: dict[tuple[str, str], float] = {}
    for plan in catalog.values():
        for step in plan.steps:
            if not isinstance(step, ActivityStep):
                continue
            model = scenario_durations.get(plan.name, {}).get(step.id, step.duration)
            if isinstance(model, Fixed):
                out[(plan.name, step.id)] = model.seconds
    return out


def platform_rows(config: PlatformConfig) -> pl.DataFrame:
    """A platform config as a table: parameter, task_queue, model, mean_ms (wall clock)."""
    rows: list[tuple[str, str | None, str, float]] = []

    def add(name: str, queue: str | None, model: DurationModel | None) -> None:
        if model is not None:
            rows.append((name, queue, model.dist, float(model.mean()) * 1000))

    add("workflow_start", None, config.workflow_start)
    add("first_workflow_task", None, config.first_workflow_task or config.workflow_task)
    add("workflow_task", None, config.workflow_task)
    add("signal_delivery", None, config.signal_delivery or config.workflow_task)
    add("wait_task", None, config.wait_task or config.workflow_task)
    for queue in TaskQueue:
        latency = config.queue(queue)
        add("schedule_to_start", queue.value, latency.schedule_to_start)
        add("activity_overhead", queue.value, latency.activity_overhead)
    for kind, model in config.activities.items():
        add(f"activity_overhead[{kind.value}]", None, model)
    return pl.DataFrame(
        rows,
        schema={
            "parameter": pl.String,
            "task_queue": pl.String,
            "model": pl.String,
            "mean_ms": pl.Float64,
        },
        orient="row",
    )
