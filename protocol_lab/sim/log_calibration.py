"""From a foreign log to a simulation: fit a state-model scenario, simulate it, measure the gap.

:func:`calibrate_from_log` reads the timelines of an ITSM log (:meth:`Timelines.from_log`:
ServiceNow, Jira, XES) and fits a :class:`~protocol_lab.sim.state_model.StateModel` scenario:

- **arrivals**: one Poisson stream per priority at its observed rate, shaped by one
  hour-of-week profile (cases opened per hour of the week over how often that hour occurs in the
  log's span), the profile and rate the workflow calibration fits too;
- **routing**: per node (state, group, visit number), the shares of the next state and group,
  the end of the case included, per priority where the priority has ``MIN_ROUTING`` exits from
  the node, else pooled over priorities. Entries likewise. This holds reassignments (a work
  state to itself under another group), waits, and reopens (a stopping state back to work);
- **dwells**: per transition, the time in the node before it; a dwell depends on where the
  case goes next (semi-Markov), on the priority, the visit and the group, taken from the most
  specific of these samples with ``MIN_DWELL`` values. When the priority's own samples are too
  few, the pooled sample is scaled by the priority's median time in that state over everyone's
  (priority stretches or shrinks time in a state; the shape is shared: an accelerated-failure-
  time assumption). Each sample is fitted with exponential, lognormal and gamma models by
  maximum likelihood (:func:`~protocol_lab.sim.calibration.fit_duration`, lowest AIC); the fit
  is kept when the Kolmogorov-Smirnov test does not reject it at 5%, else the sample's own
  quantiles are resampled (an empirical model). Logs stamp times to the minute and mix kinds of
  work within a state, so the empirical model is often the one that fits;
- **capacity**: *work states* are those neither pausing nor stopping in which most intervals
  name a resource (someone of the group holds the case). Per group, the most work intervals
  open at once is its capacity. A state log cannot show a case waiting for an agent (the wait
  is part of the time in the state), so that peak is the fewest slots that carried what the log
  shows; with ``capacity="unlimited"``, or when the log names no resources, groups have no
  limit.

Intervals still open at the log's end have no known exit; so that routing and dwells are not
biased towards quick exits, a state's transitions are counted from the intervals that began at
least its 99th-percentile dwell before the end. The simulation runs over the log's span and
stops at its end, as the export did (:mod:`protocol_lab.sim.state_flow`).

:func:`compare_resolution` measures the result: per priority, p50 and p95 of the resolution time
(opening to the last entry into a stopping state, :func:`resolution_times`), log against
simulation, with the relative error and whether it is within :data:`TARGET_RESOLUTION_ERROR`.
Everything is group-bys over the intervals and one fit per distinct sample: polynomial (in
fact O(n log n)) in the log's size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import polars as pl

from protocol_lab.analytics.states import (
    DEFAULT_PAUSING,
    DEFAULT_STOPPING,
    clock_stops,
    is_state,
    step_intervals,
)
from protocol_lab.domain.durations import DurationModel, Empirical
from protocol_lab.domain.tickets import Priority
from protocol_lab.sim.calibration import _max_concurrency, _profile, fit_duration
from protocol_lab.sim.profiles import HOURS_PER_WEEK
from protocol_lab.sim.scenario import Arrivals, ArrivalStream, Scenario
from protocol_lab.sim.state_model import StateEntry, StateModel, StateRouting, StateTransition

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from protocol_lab.analytics import Timelines

__all__ = [
    "MIN_CASES",
    "MIN_DWELL",
    "MIN_ROUTING",
    "TARGET_RESOLUTION_ERROR",
    "LogCalibration",
    "calibrate_from_log",
    "compare_resolution",
    "plot_resolution_ecdf",
    "resolution_times",
]

MIN_CASES: Final = 50
"""Fewer cases than this cannot be calibrated from."""
MIN_ROUTING: Final = 20
"""Exits from a node a priority needs for routing of its own."""
MIN_DWELL: Final = 30
"""Values a dwell sample needs to be fitted on its own."""
TARGET_RESOLUTION_ERROR: Final = 0.15
"""How close a simulated p50/p95 of resolution time must come to the log's (relative)."""

_POOLED: Final = "*"
_QUANTILES: Final = 200
_FIT_SAMPLE: Final = 5000
_KS_5PCT: Final = 1.358
_WINDOW_QUANTILE: Final = 0.99

Capacity = Literal["peak", "unlimited"]


@dataclass
class LogCalibration:
    """A fitted state-model scenario, what was fitted, and (once measured) its error."""

    scenario: Scenario
    arrivals: pl.DataFrame
    routing: pl.DataFrame
    dwells: pl.DataFrame
    capacities: pl.DataFrame
    error: pl.DataFrame | None = None
    simulated: tuple[Timelines, ...] = ()

    @property
    def within_target(self) -> bool:
        """Whether every p50/p95 in :attr:`error` is within the target."""
        return bool(self._measured()["within_target"].all())

    @property
    def agrees(self) -> bool:
        """Whether every p50/p95 in :attr:`error` agrees with the log: within the target, or
        inside the log's own sampling interval where the log cannot tell the target apart."""
        return bool(self._measured()["agrees"].all())

    def _measured(self) -> pl.DataFrame:
        if self.error is None:
            raise ValueError("measure the error first (compare_resolution)")
        return self.error


# -- resolution times -------------------------------------------------------------------


def resolution_times(
    timelines: Timelines, *, stopping: Sequence[str] = DEFAULT_STOPPING
) -> pl.DataFrame:
    """Per resolved case: ``workflow_id``, ``priority`` (null if the log has none),
    ``opened_at``, ``resolved_at`` (its last entry into a stopping state) and
    ``resolution_h``. Cases not resolved (or reopened and not resolved again) are left out."""
    events, wf = timelines.collect()
    stops = clock_stops(step_intervals(events), stopping).filter(pl.col("stopped_at").is_not_null())
    priority = (
        pl.col("priority").cast(pl.String)
        if "priority" in wf.columns
        else pl.lit(None, dtype=pl.String)
    )
    return (
        wf.select(
            "workflow_id", priority.alias("priority"), pl.col("started_at").alias("opened_at")
        )
        .join(
            stops.select("workflow_id", pl.col("stopped_at").alias("resolved_at")), on="workflow_id"
        )
        .with_columns(
            ((pl.col("resolved_at") - pl.col("opened_at")).dt.total_microseconds() / 3.6e9).alias(
                "resolution_h"
            )
        )
        .sort("workflow_id")
    )


def compare_resolution(
    log: Timelines,
    simulated: Timelines | Sequence[Timelines],
    *,
    stopping: Sequence[str] = DEFAULT_STOPPING,
    target: float = TARGET_RESOLUTION_ERROR,
) -> pl.DataFrame:
    """Per priority, p50 and p95 of the resolution time (hours), log against simulation
    (several simulated runs are pooled).

    Columns: ``priority``, ``stat`` (p50 / p95), ``n_log``, ``n_simulated`` (resolved cases
    per run), ``log_h``, ``log_low_h`` / ``log_high_h`` (a distribution-free 90% interval of the
    log's quantile: with few cases, a p95 is one of the last few values and the log itself is
    only that precise), ``simulated_h``, ``relative_error`` (|simulated - log| / log),
    ``within_sampling`` (the simulated value inside that interval), ``within_target``
    (relative error at most ``target``; false when a side has no case), ``log_precise`` (the
    interval's half-width is within ``target`` of the log's value: the log can tell a
    ``target`` error at all) and ``agrees``: within the target, or, where the log is not that
    precise, within its sampling interval.
    """
    runs = [simulated] if not isinstance(simulated, Sequence) else list(simulated)
    observed = resolution_times(log, stopping=stopping)
    sim = pl.concat([resolution_times(t, stopping=stopping) for t in runs])

    def summary(frame: pl.DataFrame, side: str) -> pl.DataFrame:
        return (
            frame.group_by("priority")
            .agg(
                pl.len().cast(pl.Int64).alias(f"n_{side}"),
                pl.col("resolution_h").quantile(0.5, "linear").alias("p50"),
                pl.col("resolution_h").quantile(0.95, "linear").alias("p95"),
            )
            .unpivot(
                index=["priority", f"n_{side}"],
                on=["p50", "p95"],
                variable_name="stat",
                value_name=f"{side}_h",
            )
        )

    sim_summary = summary(sim, "simulated")
    if len(runs) > 1:
        sim_summary = sim_summary.with_columns(pl.col("n_simulated") // len(runs))
    error = (pl.col("simulated_h") - pl.col("log_h")).abs() / pl.col("log_h")
    inside = (pl.col("simulated_h") >= pl.col("log_low_h")) & (
        pl.col("simulated_h") <= pl.col("log_high_h")
    )
    return (
        summary(observed, "log")
        .join(_sampling_interval(observed), on=["priority", "stat"], how="left")
        .join(sim_summary, on=["priority", "stat"], how="left")
        .select(
            "priority",
            "stat",
            "n_log",
            pl.col("n_simulated").fill_null(0),
            "log_h",
            "log_low_h",
            "log_high_h",
            "simulated_h",
            pl.when(pl.col("log_h") > 0).then(error).alias("relative_error"),
            inside.fill_null(False).alias("within_sampling"),
        )
        .with_columns(
            (pl.col("relative_error") <= target).fill_null(False).alias("within_target"),
            ((pl.col("log_high_h") - pl.col("log_low_h")) / 2 / pl.col("log_h") <= target)
            .fill_null(False)
            .alias("log_precise"),
        )
        .with_columns(
            (pl.col("within_target") | (~pl.col("log_precise") & pl.col("within_sampling"))).alias(
                "agrees"
            )
        )
        .sort("priority", "stat")
    )


_Z90: Final = 1.645


def _sampling_interval(observed: pl.DataFrame) -> pl.DataFrame:
    """Per priority and stat, a distribution-free 90% interval of the log's quantile (order
    statistics around q * n): how far the log's own p50/p95 could be from the process's."""
    rows = []
    for (priority,), part in observed.group_by("priority"):
        x = np.sort(part["resolution_h"].to_numpy())
        n = len(x)
        for stat, q in (("p50", 0.5), ("p95", 0.95)):
            half = _Z90 * math.sqrt(n * q * (1 - q))
            lo = min(n - 1, max(0, math.floor(n * q - half) - 1))
            hi = min(n - 1, max(0, math.ceil(n * q + half) - 1))
            rows.append((priority, stat, float(x[lo]), float(x[hi])))
    return pl.DataFrame(
        rows,
        schema={
            "priority": pl.String,
            "stat": pl.String,
            "log_low_h": pl.Float64,
            "log_high_h": pl.Float64,
        },
        orient="row",
    )


def plot_resolution_ecdf(
    log: Timelines,
    simulated: Timelines | Sequence[Timelines],
    *,
    stopping: Sequence[str] = DEFAULT_STOPPING,
) -> Figure:
    """The resolution time's empirical CDF per priority (one panel each, log scale in hours),
    log against simulation (several runs pooled), p50 and p95 marked."""
    from matplotlib.figure import Figure

    runs = [simulated] if not isinstance(simulated, Sequence) else list(simulated)
    observed = resolution_times(log, stopping=stopping)
    sim = pl.concat([resolution_times(t, stopping=stopping) for t in runs])
    priorities = sorted(observed["priority"].drop_nulls().unique().to_list())
    cols = min(4, max(1, len(priorities)))
    rows = math.ceil(len(priorities) / cols)
    fig = Figure(figsize=(3.6 * cols, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, priority in zip(axes, priorities, strict=False):
        for frame, label, style in ((observed, "log", "-"), (sim, "simulated", "--")):
            x = np.sort(frame.filter(pl.col("priority") == priority)["resolution_h"].to_numpy())
            if len(x) == 0:
                continue
            y = np.arange(1, len(x) + 1) / len(x)
            ax.step(np.maximum(x, 1e-2), y, where="post", linestyle=style, label=label)
        ax.axhline(0.5, color="grey", linewidth=0.6, linestyle=":")
        ax.axhline(0.95, color="grey", linewidth=0.6, linestyle=":")
        ax.set_xscale("log")
        ax.set_title(priority)
        ax.set_xlabel("resolution time (h)")
        ax.set_ylabel("share of resolved cases")
        ax.legend(loc="lower right", fontsize="small")
    for ax in axes[len(priorities) :]:
        ax.set_visible(False)
    return fig


# -- fitting ----------------------------------------------------------------------------


def _fit(values: np.ndarray, rng: np.random.Generator) -> tuple[DurationModel, str, float]:
    """The model of a dwell sample (seconds), how it was chosen, and its KS statistic."""
    x = np.sort(values[np.isfinite(values) & (values >= 0)])  # one sample, one subsample
    quantiles = np.quantile(x, (np.arange(_QUANTILES) + 0.5) / _QUANTILES) if len(x) else [0.0]
    empirical = Empirical(values_s=tuple(float(round(v, 3)) for v in quantiles))
    if len(x) < MIN_DWELL or float(x.max(initial=0.0)) <= 0:
        return empirical, "empirical (few values)", math.nan
    sample = rng.choice(x, size=_FIT_SAMPLE, replace=False) if len(x) > _FIT_SAMPLE else x
    fitted = fit_duration(sample)
    if fitted.model.dist != "fixed" and fitted.ks <= _KS_5PCT / math.sqrt(len(sample)):
        return fitted.model, "maximum likelihood, lowest AIC; KS not rejected", fitted.ks
    return empirical, f"empirical ({fitted.model.dist} rejected by KS)", fitted.ks


def _prepare(timelines: Timelines) -> tuple[pl.DataFrame, pl.DataFrame, datetime]:
    """Intervals with their priority, visit, next node, whether their exit is known, and
    the cases with their priority; the log's end."""
    events, wf = timelines.collect()
    if "priority" not in wf.columns or wf["priority"].drop_nulls().len() == 0:
        raise ValueError(
            "the log has no priority: map a priority column (LogMapping.priority) to calibrate"
        )
    if wf.height < MIN_CASES:
        raise ValueError(
            f"the log has {wf.height} cases; at least {MIN_CASES} are needed to calibrate"
        )
    cases = wf.select(
        "workflow_id",
        pl.col("priority").cast(pl.String).fill_null("(none)"),
        "started_at",
        (pl.col("outcome").cast(pl.String) != "open").alias("closed"),
        pl.col("workflow_name").cast(pl.String),
        pl.col("end_detail").cast(pl.String),
    )
    log_end: datetime = events["timestamp"].max()  # type: ignore[assignment]
    case = pl.col("workflow_id")
    intervals = (
        step_intervals(events)
        .join(cases.select("workflow_id", "priority", "closed"), on="workflow_id", how="inner")
        .sort("workflow_id", "start", maintain_order=True)
        .with_columns(
            pl.col("step").alias("state"),
            pl.col("task_queue").alias("group"),
            (pl.int_range(pl.len()).over("workflow_id", "step") + 1).alias("visit"),
            pl.col("step").shift(-1).over("workflow_id").alias("to_state"),
            pl.col("task_queue").shift(-1).over("workflow_id").alias("to_group"),
            case.ne_missing(case.shift(-1)).alias("last"),
            case.ne_missing(case.shift(1)).alias("first"),
            ((pl.col("end") - pl.col("start")).dt.total_microseconds() / 1e6).alias("dwell_s"),
        )
        .with_columns(
            (~pl.col("last") | (pl.col("closed") & pl.col("end").is_not_null())).alias("known")
        )
    )
    if intervals.is_empty():
        raise ValueError("the log has no state intervals to calibrate from")
    if (intervals["end"] == intervals["start"]).all():
        raise ValueError(
            "the log's events are instants (complete events only, no state changes): there is "
            "no time in a state to fit; calibrate from a log of state changes"
        )
    return intervals, cases, log_end


def _windowed(intervals: pl.DataFrame, log_end: datetime) -> pl.DataFrame:
    """The intervals with a known exit that began early enough for any exit to be seen."""
    known = intervals.filter(pl.col("known"))
    reach = known.group_by("state").agg(
        pl.col("dwell_s").quantile(_WINDOW_QUANTILE, "higher").alias("__reach")
    )
    cutoff = pl.lit(log_end) - pl.duration(microseconds=(pl.col("__reach") * 1e6).cast(pl.Int64))
    windowed = known.join(reach, on="state").filter(pl.col("start") <= cutoff)
    enough = (
        windowed.group_by("state")
        .len()
        .join(known.group_by("state").len(), on="state", suffix="_all")
        .filter(pl.col("len") * 2 >= pl.col("len_all"))["state"]
        .to_list()
    )
    # a state whose window keeps under half its intervals (a short log) keeps them all
    return pl.concat(
        [
            windowed.filter(pl.col("state").is_in(enough)).drop("__reach"),
            known.filter(~pl.col("state").is_in(enough)),
        ]
    )


_LEVEL_FIELDS: Final = {
    5: ("state", "group", "visit", "to_state"),
    4: ("state", "visit", "to_state"),
    3: ("state", "to_state"),
    2: ("state",),
}
"""A dwell sample's fields besides the priority, by the length of its key."""


class _Dwells:
    """Dwell samples by key, fitted once each, chosen from the most specific level."""

    def __init__(self, used: pl.DataFrame, max_visits: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        frame = used.with_columns(pl.col("visit").clip(upper_bound=max_visits))
        self.samples: dict[tuple[object, ...], np.ndarray] = {}
        for depth, fields in _LEVEL_FIELDS.items():
            for pooled in (False, True):
                keys = list(fields) if pooled else ["priority", *fields]
                for row in frame.group_by(keys).agg(pl.col("dwell_s")).iter_rows():
                    key = ((_POOLED,) if pooled else ()) + tuple(row[:-1])
                    self.samples[(depth, *key)] = np.asarray(row[-1], dtype=np.float64)
        self.models: dict[str, DurationModel] = {}
        self.rows: list[dict[str, object]] = []

    def _sample(self, depth: int, key: tuple[object, ...]) -> np.ndarray:
        return self.samples.get((depth, *key), np.empty(0))

    def key(
        self, priority: str, state: str, group: str | None, visit: int, to_state: str | None
    ) -> str:
        """The name of the dwell model of one transition, fitted on first use."""
        chain = [
            (5, (state, group, visit, to_state)),
            (4, (state, visit, to_state)),
            (3, (state, to_state)),
            (2, (state,)),
        ]
        if priority != _POOLED:
            for depth, rest in chain[:3]:
                own = self._sample(depth, (priority, *rest))
                if len(own) >= MIN_DWELL:
                    return self._model(priority, depth, rest, own, 1.0)
        # too few of the priority's own: the pooled shape, at the priority's scale
        for depth, rest in chain:
            pooled = self._sample(depth, (_POOLED, *rest))
            if len(pooled) >= MIN_DWELL or depth == 2:
                scale = self._scale(priority, state)
                return self._model(
                    priority if scale != 1.0 else _POOLED, depth, rest, pooled, scale
                )
        raise AssertionError("unreachable: a state always has a pooled sample")

    def _scale(self, priority: str, state: str) -> float:
        if priority == _POOLED:
            return 1.0
        own = self._sample(2, (priority, state))
        everyone = self._sample(2, (_POOLED, state))
        if len(own) < 5 or len(everyone) == 0:
            return 1.0
        mine, all_ = float(np.median(own)), float(np.median(everyone))
        return mine / all_ if mine > 0 and all_ > 0 else 1.0

    def _model(
        self,
        priority: str,
        depth: int,
        rest: tuple[object, ...],
        values: np.ndarray,
        scale: float,
    ) -> str:
        fields = _LEVEL_FIELDS[depth]
        parts = [
            f"{f}={'end' if v is None and f == 'to_state' else v}"
            for f, v in zip(fields, rest, strict=True)
        ]
        name = f"{priority} | " + ", ".join(parts)
        if scale != 1.0:
            name += f" | x{scale:.3g}"
        if name not in self.models:
            model, how, ks = _fit(values * scale, self.rng)
            self.models[name] = model
            self.rows.append(
                {
                    "dwell": name,
                    "n": len(values),
                    "scale": scale,
                    "model": model.dist,
                    "how": how,
                    "ks": ks,
                    "mean_h": model.mean() / 3600.0,
                }
            )
        return name


def _routing(
    used: pl.DataFrame,
    cases: pl.DataFrame,
    intervals: pl.DataFrame,
    dwells: _Dwells,
    max_visits: int,
) -> tuple[StateRouting, dict[str, StateRouting], pl.DataFrame]:
    node = ["state", "group", "visit"]
    moves = used.with_columns(pl.col("visit").clip(upper_bound=max_visits))
    pooled_counts = moves.group_by(*node, "to_state", "to_group").len()
    own_counts = moves.group_by("priority", *node, "to_state", "to_group").len()
    firsts = intervals.filter(pl.col("first"))
    rows: list[dict[str, object]] = []

    def routing(counts: pl.DataFrame, entries: pl.DataFrame, scope: str) -> StateRouting:
        totals = counts.with_columns(pl.col("len").sum().over(node).alias("__total"))
        transitions = []
        for r in totals.sort(*node, "to_state", "to_group", nulls_last=True).iter_rows(named=True):
            p = r["len"] / r["__total"]
            dwell = dwells.key(scope, r["state"], r["group"], r["visit"], r["to_state"])
            transitions.append(
                StateTransition(
                    state=r["state"],
                    group=r["group"],
                    visit=r["visit"],
                    to_state=r["to_state"],
                    to_group=r["to_group"] if r["to_state"] is not None else None,
                    probability=p,
                    dwell=dwell,
                )
            )
            rows.append(
                {
                    "scope": scope,
                    **{k: r[k] for k in (*node, "to_state", "to_group")},
                    "n": r["len"],
                    "probability": p,
                    "dwell": dwell,
                }
            )
        first = entries.group_by("state", "group").len().sort("state", "group", nulls_last=True)
        n = first["len"].sum()
        return StateRouting(
            entries=tuple(
                StateEntry(state=s, group=g, probability=c / n) for s, g, c in first.iter_rows()
            ),
            transitions=tuple(transitions),
        )

    default = routing(pooled_counts, firsts, _POOLED)
    own: dict[str, StateRouting] = {}
    for priority in cases["priority"].unique().sort().to_list():
        # the priority's own shares where it has enough exits from a node, else everyone's;
        # either way with the priority's own dwells
        counts = own_counts.filter(pl.col("priority") == priority).drop("priority")
        counts = counts.filter(pl.col("len").sum().over(node) >= MIN_ROUTING)
        borrowed = pooled_counts.join(counts.select(node).unique(), on=node, how="anti")
        entries = firsts.filter(pl.col("priority") == priority)
        if entries.height < MIN_ROUTING:
            entries = firsts
        own[priority] = routing(pl.concat([counts, borrowed]), entries, priority)
    table = pl.DataFrame(rows, infer_schema_length=None)
    return default, own, table


def _capacities(
    intervals: pl.DataFrame,
    log_end: datetime,
    *,
    pausing: Sequence[str],
    stopping: Sequence[str],
    capacity: Capacity,
) -> tuple[tuple[str, ...], dict[str, int], pl.DataFrame]:
    """Work states, slots per group, and the table of what they came from."""
    held = intervals.filter(
        ~is_state("state", [*pausing, *stopping]) & pl.col("group").is_not_null()
    )
    share = held.group_by("state").agg(pl.col("actor").is_not_null().mean().alias("named"))
    work = tuple(sorted(share.filter(pl.col("named") >= 0.5)["state"].to_list()))
    busy = held.filter(pl.col("state").is_in(list(work)))
    rows = []
    slots: dict[str, int] = {}
    end_s = log_end.timestamp()
    for (group,), part in busy.group_by("group", maintain_order=True):
        starts = part["start"].dt.epoch("us").to_numpy() / 1e6
        ends = part["end"].dt.epoch("us").fill_null(int(end_s * 1e6)).to_numpy() / 1e6
        peak = _max_concurrency(starts, ends)
        rows.append(
            {
                "group": group,
                "resources": part["actor"].n_unique() - int(part["actor"].null_count() > 0),
                "peak_concurrent": peak,
                "capacity": peak if capacity == "peak" else None,
            }
        )
        if capacity == "peak":
            slots[str(group)] = max(1, peak)
    schema = {
        "group": pl.String,
        "resources": pl.Int64,
        "peak_concurrent": pl.Int64,
        "capacity": pl.Int64,
    }
    table = pl.DataFrame(rows, schema=schema).sort("group")
    return work, slots, table


def _arrivals(
    cases: pl.DataFrame, origin: datetime, span_h: int, *, workflow_name: str
) -> tuple[Arrivals, list[dict[str, Any]]]:
    """One arrival stream per priority at its observed weekly rate, on the observed hourly
    profile; and a row per stream (priority, cases, per week)."""
    profile = _profile(cases["started_at"], origin, span_h)
    exposure = float(profile.hourly_factors(origin, span_h).sum())
    mix = cases.group_by("priority").len().sort("priority")
    streams, arrival_rows = [], []
    ranks = list(Priority)
    for rank, (priority, n) in enumerate(mix.iter_rows()):
        per_week = n * HOURS_PER_WEEK / exposure
        streams.append(
            ArrivalStream(
                category=priority,
                priority=ranks[min(rank, len(ranks) - 1)],
                tickets_per_week=per_week,
                titles={workflow_name: 1.0},
            )
        )
        arrival_rows.append({"priority": priority, "cases": n, "per_week": per_week})
    return Arrivals(profile=profile, streams=tuple(streams)), arrival_rows


def calibrate_from_log(
    timelines: Timelines,
    *,
    name: str = "Calibrated from a log",
    seed: int = 0,
    max_visits: int = 3,
    capacity: Capacity = "peak",
    pausing: Sequence[str] = DEFAULT_PAUSING,
    stopping: Sequence[str] = DEFAULT_STOPPING,
    measure: bool = True,
    replications: int = 3,
) -> LogCalibration:
    """Fit a state-model scenario to a foreign log's ``timelines`` (see the module docstring).

    The log needs a ``priority`` attribute (as the ServiceNow and Jira presets map it) and at
    least :data:`MIN_CASES` cases; otherwise :class:`ValueError` says what is missing. With
    ``measure``, the scenario is simulated ``replications`` times (seeds ``seed``,
    ``seed + 1``, ...) and :attr:`LogCalibration.error` holds :func:`compare_resolution`.
    """
    intervals, cases, log_end = _prepare(timelines)
    used = _windowed(intervals, log_end)
    dwells = _Dwells(used, max_visits, seed)
    default, own, routing_table = _routing(used, cases, intervals, dwells, max_visits)
    work, slots, capacity_table = _capacities(
        intervals, log_end, pausing=pausing, stopping=stopping, capacity=capacity
    )

    first: datetime = cases["started_at"].min()  # type: ignore[assignment]
    origin = first.replace(minute=0, second=0, microsecond=0)
    span_h = max(1, math.ceil((log_end - origin).total_seconds() / 3600.0 + 1e-9))
    workflow_name = str(cases["workflow_name"].drop_nulls().mode().sort().first() or "case")
    arrivals, arrival_rows = _arrivals(cases, origin, span_h, workflow_name=workflow_name)
    seen = set(intervals["state"].unique().to_list())
    end_state = cases["end_detail"].drop_nulls().mode().sort().first()
    model = StateModel(
        workflow_name=workflow_name,
        stopping=tuple(s for s in stopping if s in seen) or tuple(stopping),
        end_state=str(end_state) if end_state is not None else "Closed",
        work_states=work,
        capacities=slots,
        max_visits=max_visits,
        default=default,
        priorities=own,
        dwells=dwells.models,
    )
    scenario = Scenario(
        name=name,
        description="Fitted from a foreign log by protocol_lab.sim.log_calibration.",
        start=origin,
        horizon_hours=float(span_h),
        drain=False,
        seed=seed,
        arrivals=arrivals,
        states=model,
    )
    result = LogCalibration(
        scenario=scenario,
        arrivals=pl.DataFrame(arrival_rows),
        routing=routing_table,
        dwells=pl.DataFrame(dwells.rows, infer_schema_length=None),
        capacities=capacity_table,
    )
    if measure:
        from protocol_lab.sim.state_flow import simulate_states

        runs = [simulate_states(scenario, seed=seed + k) for k in range(max(1, replications))]
        result.error = compare_resolution(timelines, runs, stopping=model.stopping)
        result.simulated = tuple(runs)
    return result
