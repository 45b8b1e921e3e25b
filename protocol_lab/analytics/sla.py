"""Cycle times (wall-clock and business), percentiles, SLA attainment, breaches and at-risk work.

All functions take the per-workflow frame (:attr:`Timelines.workflows`) and return a frame of
the same kind (lazy in, lazy out). ``as_of`` — the instant open workflows are measured to —
defaults to the latest event in the data, so analyses of a stored sample are reproducible.

SLA rules:

- a workflow's target is the most specific one that applies: ``workflow_name`` beats
  ``priority`` beats ``category`` beats ``task_queue`` (a target's ``task_queue`` or, for a
  foreign log's groups, ``group``);
- targets with ``business_hours: true`` are measured in business time (on the target's named
  calendar, else the SLA file's calendar), the others in wall-clock time;
- closed workflows (completed or failed) have ``met`` or ``breached``; cancelled ones are
  ``cancelled`` and left out of attainment; open ones are ``breached`` once over the target,
  ``at_risk`` once past ``at_risk_fraction`` of it, ``on_track`` otherwise;
- ``time_to_breach_s`` is target minus measured time: the margin left (negative: exceeded by);
- given the events, the clock pauses in pausing states and while the workflow is paused
  (``workflow_paused`` to ``workflow_resumed``), and stops when the case is resolved
  (:mod:`protocol_lab.analytics.states`): a resolved case counts as closed, and the time it
  spent waiting is not measured, on the target's calendar (overlapping pauses count once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

import polars as pl

from protocol_lab.analytics._frames import By, FrameT, group_keys, same_kind, seconds
from protocol_lab.analytics.business_columns import business_seconds
from protocol_lab.analytics.states import (
    DEFAULT_PAUSING,
    DEFAULT_STOPPING,
    clock_stops,
    pause_intervals,
    step_intervals,
    workflow_pauses,
)

if TYPE_CHECKING:
    from protocol_lab.domain import BusinessCalendar, SlaConfig, SlaTarget

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_QUANTILES",
    "SLA_STATES",
    "SlaSummary",
    "cycle_times",
    "percentiles",
    "sla_status",
    "sla_summary",
]

DEFAULT_QUANTILES: Final = (0.5, 0.9, 0.95, 0.99)
SLA_STATES: Final = ("met", "breached", "at_risk", "on_track", "cancelled", "no_target")


def _as_of(as_of: datetime | None) -> pl.Expr:
    if as_of is None:
        return pl.col("last_event_at").max()
    return pl.lit(as_of).cast(pl.Datetime("us", "UTC"))


def cycle_times(
    workflows: FrameT,
    *,
    calendar: BusinessCalendar | None = None,
    as_of: datetime | None = None,
) -> FrameT:
    """Add wall-clock and business cycle times, and the elapsed time of open workflows.

    New columns: ``business_time_s`` (closed workflows), ``elapsed_s`` and
    ``elapsed_business_s`` (to the end for closed ones, to ``as_of`` for open ones).
    ``calendar`` defaults to the one in ``data/sla.yaml``.
    """
    from protocol_lab.domain import load_sla_config

    cal = calendar if calendar is not None else load_sla_config().calendar
    until = pl.coalesce("completed_at", _as_of(as_of))
    out = workflows.lazy().with_columns(
        business_seconds(pl.col("started_at"), pl.col("completed_at"), cal).alias(
            "business_time_s"
        ),
        seconds(until - pl.col("started_at")).alias("elapsed_s"),
        business_seconds(pl.col("started_at"), until, cal).alias("elapsed_business_s"),
    )
    return same_kind(workflows, out)


def percentiles(
    frame: FrameT,
    column: str,
    *,
    by: By = None,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> FrameT:
    """Count, mean and percentiles (``p50``, ``p90``, ...) of ``column`` per group."""
    keys: list[str] = group_keys(by)
    col: pl.Expr = pl.col(column).drop_nulls()
    aggs = [
        col.count().alias("n"),
        col.mean().alias("mean"),
        *[col.quantile(q, interpolation="linear").alias(f"p{q * 100:g}") for q in quantiles],
        col.max().alias("max"),
    ]
    lf = frame.lazy()
    out = lf.group_by(keys).agg(aggs).sort(keys) if keys else lf.select(aggs)
    return same_kind(frame, out)


def _targets_frame(targets: Sequence[SlaTarget], column: str) -> pl.LazyFrame | None:
    rows = [
        (t.scope[1], t.target_seconds, t.business_hours, t.at_risk_fraction, t.calendar)
        for t in targets
        if t.scope[0] == column
    ]
    if not rows:
        return None
    suffix = f"__{column}"
    return pl.LazyFrame(
        rows,
        schema={
            column: pl.String,
            f"target_s{suffix}": pl.Float64,
            f"business_hours{suffix}": pl.Boolean,
            f"at_risk_fraction{suffix}": pl.Float64,
            f"calendar{suffix}": pl.String,
        },
        orient="row",
    ).unique(subset=column, keep="first")


def sla_status(
    workflows: FrameT,
    *,
    config: SlaConfig | None = None,
    as_of: datetime | None = None,
    events: pl.DataFrame | pl.LazyFrame | None = None,
    pausing: Sequence[str] = DEFAULT_PAUSING,
    stopping: Sequence[str] = DEFAULT_STOPPING,
) -> FrameT:
    """Add the SLA target, measured time, state and time to breach of every workflow.

    New columns: ``target_scope``, ``target_s``, ``business_hours``, ``clock_stopped_at``
    (when the clock stopped: resolved, else closed; null while it runs), ``paused_s`` (time
    the clock stood still before that, on the target's clock), ``measured_s``, ``sla_state``
    (one of :data:`SLA_STATES`), ``time_to_breach_s``, plus those of :func:`cycle_times`.
    ``config`` defaults to ``data/sla.yaml``. With ``events`` (the timelines' events), the
    clock pauses in the ``pausing`` states or steps and stops at the last entry into a
    ``stopping`` one (see :mod:`protocol_lab.analytics.states`); without, it runs from start
    to close.
    """
    from protocol_lab.domain import load_sla_config

    cfg = config if config is not None else load_sla_config()
    lf = _with_targets(cycle_times(workflows.lazy(), calendar=cfg.calendar, as_of=as_of), cfg)
    if events is not None:
        lf, clock = _clock_from_events(
            lf, events, cfg=cfg, as_of=as_of, pausing=pausing, stopping=stopping
        )
    else:
        lf, clock = _clock_from_close(lf, as_of=as_of)
    lf = lf.with_columns((_measured(clock, cfg) - pl.col("paused_s")).alias("measured_s"))
    drop = [c for c in lf.collect_schema().names() if c.startswith("__") or "__" in c]
    out = lf.with_columns(
        _sla_state().cast(pl.Enum(list(SLA_STATES))).alias("sla_state"),
        (pl.col("target_s") - pl.col("measured_s")).alias("time_to_breach_s"),
    ).drop(drop)
    return same_kind(workflows, out)


@dataclass(frozen=True)
class _Clock:
    """When each workflow's clock stops (``until``) and its wall and business time to then."""

    until: pl.Expr
    wall: pl.Expr
    business: pl.Expr


def _with_targets(lf: pl.LazyFrame, cfg: SlaConfig) -> pl.LazyFrame:
    """Each workflow's target from the most specific scope that has one (name first).

    Adds ``target_scope``, ``target_s``, ``business_hours`` and the target's at-risk fraction
    and calendar (as ``__`` columns, dropped at the end).
    """
    names = lf.collect_schema().names()
    scopes = [c for c in ("workflow_name", "priority", "category", "task_queue") if c in names]
    joined: list[str] = []
    for column in scopes:
        lookup = _targets_frame(cfg.targets, column)
        if lookup is None:
            continue
        lf = lf.with_columns(pl.col(column).cast(pl.String).alias(f"__key_{column}")).join(
            lookup.rename({column: f"__key_{column}"}),
            on=f"__key_{column}",
            how="left",
        )
        joined.append(column)
    if not joined:
        return lf.with_columns(
            pl.lit(None, dtype=pl.String).alias("target_scope"),
            pl.lit(None, dtype=pl.Float64).alias("target_s"),
            pl.lit(value=False).alias("business_hours"),
            pl.lit(None, dtype=pl.Float64).alias("__at_risk_fraction"),
            pl.lit(None, dtype=pl.String).alias("__calendar"),
        )

    def pick(field: str) -> pl.Expr:
        return pl.coalesce([pl.col(f"{field}__{c}") for c in joined])

    scope: pl.Expr = pl.lit(None, dtype=pl.String)
    for scoped in reversed(joined):
        scope = (
            pl.when(pl.col(f"target_s__{scoped}").is_not_null())
            .then(pl.lit(scoped))
            .otherwise(scope)
        )
    return lf.with_columns(
        scope.alias("target_scope"),
        pick("target_s").alias("target_s"),
        pick("business_hours").fill_null(value=False).alias("business_hours"),
        pick("at_risk_fraction").alias("__at_risk_fraction"),
        pick("calendar").alias("__calendar"),
    )


def _clock_from_events(
    lf: pl.LazyFrame,
    events: pl.DataFrame | pl.LazyFrame,
    *,
    cfg: SlaConfig,
    as_of: datetime | None,
    pausing: Sequence[str],
    stopping: Sequence[str],
) -> tuple[pl.LazyFrame, _Clock]:
    """The clock that stops at the last entry into a stopping state and pauses in pausing ones.

    Adds ``clock_stopped_at`` and ``paused_s``.
    """
    intervals = step_intervals(events.lazy())
    lf = lf.join(clock_stops(intervals, stopping).drop("reopens"), on="workflow_id", how="left")
    lf = lf.with_columns(pl.coalesce("stopped_at", "completed_at").alias("clock_stopped_at"))
    until = pl.coalesce("clock_stopped_at", _as_of(as_of))
    lf = lf.with_columns(until.alias("__until"))
    pauses = pl.concat(
        [pause_intervals(intervals, pausing, stopping), workflow_pauses(events.lazy())],
        how="vertical_relaxed",
    )
    paused = _paused(lf, pauses, cfg)
    lf = lf.join(paused, on="workflow_id", how="left", maintain_order="left").with_columns(
        pl.col("paused_s").fill_null(0.0)
    )
    wall = seconds(pl.col("__until") - pl.col("started_at"))
    business = business_seconds(pl.col("started_at"), pl.col("__until"), cfg.calendar)
    return lf.drop("stopped_at"), _Clock(until=until, wall=wall, business=business)


def _clock_from_close(lf: pl.LazyFrame, *, as_of: datetime | None) -> tuple[pl.LazyFrame, _Clock]:
    """The clock that runs from start to close, never paused.

    Adds ``clock_stopped_at`` and ``paused_s``.
    """
    lf = lf.with_columns(
        pl.col("completed_at").alias("clock_stopped_at"), pl.lit(0.0).alias("paused_s")
    )
    until = pl.coalesce("completed_at", _as_of(as_of))
    clock = _Clock(until=until, wall=pl.col("elapsed_s"), business=pl.col("elapsed_business_s"))
    return lf, clock


def _measured(clock: _Clock, cfg: SlaConfig) -> pl.Expr:
    """Business time on the target's calendar where the target counts it, else wall time."""
    business = clock.business
    for name, calendar in cfg.calendars.items():
        business = (
            pl.when(pl.col("__calendar") == name)
            .then(business_seconds(pl.col("started_at"), clock.until, calendar))
            .otherwise(business)
        )
    return pl.when(pl.col("business_hours")).then(business).otherwise(clock.wall)


def _sla_state() -> pl.Expr:
    """The SLA state from the measured time, the target and whether the clock stopped."""
    over = pl.col("measured_s") > pl.col("target_s")
    outcome: pl.Expr = pl.col("outcome").cast(pl.String)
    return (
        pl.when(outcome == "cancelled")
        .then(pl.lit("cancelled"))
        .when(pl.col("target_s").is_null())
        .then(pl.lit("no_target"))
        .when(pl.col("clock_stopped_at").is_not_null())
        .then(pl.when(over).then(pl.lit("breached")).otherwise(pl.lit("met")))
        .when(over)
        .then(pl.lit("breached"))
        .when(pl.col("measured_s") >= pl.col("target_s") * pl.col("__at_risk_fraction"))
        .then(pl.lit("at_risk"))
        .otherwise(pl.lit("on_track"))
    )


def _paused(workflows: pl.LazyFrame, pauses: pl.LazyFrame, cfg: SlaConfig) -> pl.LazyFrame:
    """``paused_s`` per workflow with a pause: its pauses clipped to its clock's run
    (``started_at`` to ``__until``), on its target's calendar when it counts business time."""
    clock = ("workflow_id", "started_at", "__until", "business_hours", "__calendar")
    bounds = workflows.select(clock)
    clipped = (
        pauses.join(bounds, on="workflow_id", how="inner")
        .with_columns(
            pl.max_horizontal("start", "started_at").alias("__s"),
            pl.min_horizontal(pl.coalesce("end", "__until"), "__until").alias("__e"),
        )
        .filter(pl.col("__e") > pl.col("__s"))
        .sort("workflow_id", "__s")
        # overlapping pauses (a paused workflow in a waiting state) count once: merge them
        .with_columns(pl.col("__e").cum_max().shift(1).over("workflow_id").alias("__reach"))
        .with_columns(
            (pl.col("__s") > pl.col("__reach"))
            .fill_null(value=True)
            .cum_sum()
            .over("workflow_id")
            .alias("__run")
        )
        .group_by("workflow_id", "__run")
        .agg(
            pl.col("__s").min(),
            pl.col("__e").max(),
            pl.col("business_hours").first(),
            pl.col("__calendar").first(),
        )
    )
    business = business_seconds(pl.col("__s"), pl.col("__e"), cfg.calendar)
    for name, calendar in cfg.calendars.items():
        business = (
            pl.when(pl.col("__calendar") == name)
            .then(business_seconds(pl.col("__s"), pl.col("__e"), calendar))
            .otherwise(business)
        )
    length = (
        pl.when(pl.col("business_hours"))
        .then(business)
        .otherwise(seconds(pl.col("__e") - pl.col("__s")))
    )
    # the length is a column before the aggregate: the calendar's clock runs once on the whole
    # column, not once per workflow
    return (
        clipped.with_columns(length.alias("__length"))
        .group_by("workflow_id")
        .agg(pl.col("__length").sum().alias("paused_s"))
    )


def sla_summary(status: FrameT, *, by: By = "task_queue") -> FrameT:
    """Attainment and breach rates per group, from the output of :func:`sla_status`.

    Columns: ``workflows``, ``closed`` (met + breached), ``met``, ``breached``, ``attainment``
    (met / closed), ``breach_rate``, ``open``, ``at_risk``, ``open_breached``, ``cancelled``,
    ``target_h`` (the target if one per group, else its median), and ``p50_h`` / ``p90_h`` /
    ``p95_h`` of the measured time of closed workflows.
    """
    keys: list[str] = group_keys(by)
    state = pl.col("sla_state").cast(pl.String)
    # open: the clock still runs (a resolved case waiting to be closed is done for its SLA)
    if "clock_stopped_at" in status.lazy().collect_schema().names():
        is_open = pl.col("clock_stopped_at").is_null()
    else:
        is_open = pl.col("outcome").cast(pl.String) == "open"
    closed_time = pl.col("measured_s").filter(state.is_in(["met", "breached"]) & ~is_open) / 3600
    aggs = [
        pl.len().alias("workflows"),
        (state.is_in(["met", "breached"]) & ~is_open).sum().alias("closed"),
        (state == "met").sum().alias("met"),
        (state.is_in(["breached"]) & ~is_open).sum().alias("breached"),
        is_open.sum().alias("open"),
        (state == "at_risk").sum().alias("at_risk"),
        (state.is_in(["breached"]) & is_open).sum().alias("open_breached"),
        (state == "cancelled").sum().alias("cancelled"),
        (pl.col("target_s").median() / 3600).alias("target_h"),
        closed_time.quantile(0.5, "linear").alias("p50_h"),
        closed_time.quantile(0.9, "linear").alias("p90_h"),
        closed_time.quantile(0.95, "linear").alias("p95_h"),
    ]
    lf = status.lazy()
    grouped = lf.group_by(keys).agg(aggs).sort(keys) if keys else lf.select(aggs)
    out = grouped.with_columns(
        # A group with nothing closed yet has no attainment (null), not 0/0 = NaN.
        pl.when(pl.col("closed") > 0).then(pl.col("met") / pl.col("closed")).alias("attainment"),
        pl.when(pl.col("closed") > 0)
        .then(pl.col("breached") / pl.col("closed"))
        .alias("breach_rate"),
    ).select(
        *keys,
        "workflows",
        "closed",
        "met",
        "breached",
        "attainment",
        "breach_rate",
        "open",
        "at_risk",
        "open_breached",
        "cancelled",
        "target_h",
        "p50_h",
        "p90_h",
        "p95_h",
    )
    return same_kind(status, out)


class SlaSummary:
    """An SLA table (a polars DataFrame) with a rich HTML view for notebooks."""

    def __init__(self, frame: pl.DataFrame, *, by: Sequence[str]) -> None:
        self.frame = frame
        self.by = list(by)

    def __repr__(self) -> str:
        return f"SlaSummary(by={self.by})\n{self.frame}"

    def to_pandas(self) -> pd.DataFrame:
        """The table as a pandas DataFrame."""
        return self.frame.to_pandas()

    def _repr_html_(self) -> str:
        from protocol_lab.analytics.reprs import sla_html

        return sla_html(self.frame, by=self.by)
