"""The analyses an ITSM log needs: reassignments and ping-pong, handovers, workload, reopens,
time in each state, and the agreement of computed SLA attainment with the log's own flag.

They read the events of any timelines (:meth:`Timelines.from_log` for a ServiceNow, Jira or XES
log, where the group is the ``task_queue`` column and the resource the ``actor``; on
protocol-lab's own timelines a workflow keeps its queue, so it has no reassignments). Each is
column expressions over one sort by (case, time) and group-bys: O(n log n) in the events.

- a *handler run* is a stretch of a case's events with the same group (or resource), nulls
  skipped; a *reassignment* (a *handover*) is a change from one run to the next, and a
  *ping-pong* a return to the handler of two runs before (A -> B -> A);
- a *reopen* is a case leaving a stopping state (resolved) for another state
  (:mod:`protocol_lab.analytics.states`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import polars as pl

from protocol_lab.analytics._frames import By, FrameT, group_keys, same_kind, seconds
from protocol_lab.analytics.states import (
    DEFAULT_PAUSING,
    DEFAULT_STOPPING,
    clock_stops,
    is_state,
    step_intervals,
)

__all__ = [
    "Level",
    "handover_matrix",
    "handovers",
    "reassignment_summary",
    "reassignments",
    "reopen_rate",
    "reopens",
    "sla_agreement",
    "time_in_state",
    "workload",
]

Level = Literal["task_queue", "actor"]
"""Who holds a case: its group (``task_queue``) or its resource (``actor``)."""

_TERMINAL = ("workflow_completed", "workflow_failed", "workflow_cancelled")


def _runs(events: pl.LazyFrame, level: Level) -> pl.LazyFrame:
    """Handler runs in case and time order: ``workflow_id``, ``handler``, ``previous`` (the
    run before, null for the first), ``at`` (when the run began), ``ping_pong``."""
    case = pl.col("workflow_id")
    handler = pl.col("handler")
    return (
        events.select(
            "workflow_id", pl.col(level).cast(pl.String).alias("handler"), pl.col("timestamp")
        )
        .filter(handler.is_not_null() & (handler != ""))
        .sort("workflow_id", "timestamp", maintain_order=True)
        .filter(handler.ne_missing(handler.shift(1)) | case.ne_missing(case.shift(1)))
        .with_columns(
            pl.when(case.shift(1) == case).then(handler.shift(1)).alias("previous"),
            (handler == pl.when(case.shift(2) == case).then(handler.shift(2)))
            .fill_null(False)
            .alias("ping_pong"),
        )
        .rename({"timestamp": "at"})
    )


def _with_attributes(
    frame: pl.LazyFrame, workflows: pl.DataFrame | pl.LazyFrame | None
) -> pl.LazyFrame:
    if workflows is None:
        return frame
    from protocol_lab.analytics.timelines import WORKFLOW_SCHEMA

    wf = workflows.lazy()
    extra = [c for c in wf.collect_schema().names() if c not in WORKFLOW_SCHEMA]
    keep = ["workflow_name", *extra]
    return frame.join(
        wf.select("workflow_id", *keep), on="workflow_id", how="left", maintain_order="left"
    )


def reassignments(
    events: FrameT,
    *,
    level: Level = "task_queue",
    workflows: pl.DataFrame | pl.LazyFrame | None = None,
) -> FrameT:
    """Per case: ``handlers`` (distinct groups or resources), ``reassignments`` (changes of
    handler), ``ping_pongs`` (returns to the handler before the last, A -> B -> A) and
    ``route`` (the handlers in order, ``A > B > A``). Cases with no handler at all count
    zero. With ``workflows``, its ``workflow_name`` and attribute columns (``priority``,
    ``reassignment_count`` of the log, ...) are joined on.
    """
    lf = events.lazy()
    per_case = (
        _runs(lf, level)
        .group_by("workflow_id", maintain_order=True)
        .agg(
            pl.col("handler").n_unique().cast(pl.UInt32).alias("handlers"),
            (pl.len() - 1).cast(pl.UInt32).alias("reassignments"),
            pl.col("ping_pong").sum().cast(pl.UInt32).alias("ping_pongs"),
            pl.col("handler").str.join(" > ").alias("route"),
        )
    )
    cases = lf.select("workflow_id").unique(maintain_order=True)
    counts = ["handlers", "reassignments", "ping_pongs"]
    out = cases.join(per_case, on="workflow_id", how="left", maintain_order="left").with_columns(
        pl.col(counts).fill_null(0)
    )
    return same_kind(events, _with_attributes(out, workflows))


def reassignment_summary(per_case: FrameT, *, by: By = None) -> FrameT:
    """From :func:`reassignments`: ``cases``, ``reassigned`` (cases with one or more),
    ``reassigned_share``, ``mean_reassignments``, ``max_reassignments``, ``ping_pong_cases``
    and ``ping_pong_share``, per group."""
    keys = group_keys(by)
    aggs = [
        pl.len().alias("cases"),
        (pl.col("reassignments") > 0).sum().alias("reassigned"),
        (pl.col("reassignments") > 0).mean().alias("reassigned_share"),
        pl.col("reassignments").mean().alias("mean_reassignments"),
        pl.col("reassignments").max().alias("max_reassignments"),
        (pl.col("ping_pongs") > 0).sum().alias("ping_pong_cases"),
        (pl.col("ping_pongs") > 0).mean().alias("ping_pong_share"),
    ]
    lf = per_case.lazy()
    out = lf.group_by(keys).agg(aggs).sort(keys) if keys else lf.select(aggs)
    return same_kind(per_case, out)


def handovers(events: FrameT, *, level: Level = "task_queue") -> FrameT:
    """Handovers between handlers: ``source``, ``target``, ``n`` (handovers) and ``cases``
    (cases with at least one), most frequent first. The long form of a handover matrix."""
    out = (
        _runs(events.lazy(), level)
        .filter(pl.col("previous").is_not_null())
        .group_by(pl.col("previous").alias("source"), pl.col("handler").alias("target"))
        .agg(pl.len().cast(pl.UInt32).alias("n"), pl.col("workflow_id").n_unique().alias("cases"))
        .sort("n", "source", "target", descending=[True, False, False])
    )
    return same_kind(events, out)


def handover_matrix(pairs: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The output of :func:`handovers` as a matrix: a row per ``source``, a column per target
    (sorted by name), handover counts, 0 where none."""
    frame = pairs.lazy().select("source", "target", "n").collect()
    if frame.is_empty():
        return pl.DataFrame({"source": []}, schema={"source": pl.String})
    targets = sorted(frame["target"].unique().to_list())
    wide = frame.pivot(on="target", index="source", values="n").sort("source")
    missing = [t for t in targets if t not in wide.columns]
    wide = wide.with_columns(pl.lit(0, dtype=pl.UInt32).alias(t) for t in missing)
    return wide.select("source", *targets).with_columns(pl.col(targets).fill_null(0))


def workload(
    events: FrameT,
    *,
    level: Level = "actor",
    pausing: Sequence[str] = DEFAULT_PAUSING,
    stopping: Sequence[str] = DEFAULT_STOPPING,
) -> FrameT:
    """Per handler (group or resource): ``cases`` it held, ``intervals`` (step or state
    intervals it held), ``held_h`` (hours of ended intervals in working states: neither
    pausing nor stopping), ``waiting_h`` (in pausing states), ``current`` (intervals open
    now: its backlog), and ``handovers_in`` / ``handovers_out``. Busiest first."""
    lf = events.lazy()
    intervals = step_intervals(lf).with_columns(pl.col(level).cast(pl.String).alias("handler"))
    length = seconds(pl.col("end") - pl.col("start")).fill_null(0.0) / 3600
    paused = is_state("step", pausing)
    stopped = is_state("step", stopping)
    held = (
        intervals.filter(pl.col("handler").is_not_null())
        .group_by("handler")
        .agg(
            pl.col("workflow_id").n_unique().cast(pl.UInt32).alias("cases"),
            pl.len().cast(pl.UInt32).alias("intervals"),
            length.filter(~paused & ~stopped).sum().alias("held_h"),
            length.filter(paused).sum().alias("waiting_h"),
            (pl.col("end").is_null() & ~stopped).sum().cast(pl.UInt32).alias("current"),
        )
    )
    pairs = handovers(lf, level=level)
    given = pairs.group_by(pl.col("source").alias("handler")).agg(
        pl.col("n").sum().alias("handovers_out")
    )
    taken = pairs.group_by(pl.col("target").alias("handler")).agg(
        pl.col("n").sum().alias("handovers_in")
    )
    out = (
        held.join(taken, on="handler", how="left")
        .join(given, on="handler", how="left")
        .with_columns(pl.col("handovers_in", "handovers_out").fill_null(0).cast(pl.UInt32))
        .rename({"handler": level})
        .sort("held_h", level, descending=[True, False])
    )
    return same_kind(events, out)


def reopens(
    events: FrameT,
    *,
    stopping: Sequence[str] = DEFAULT_STOPPING,
    workflows: pl.DataFrame | pl.LazyFrame | None = None,
) -> FrameT:
    """Per case: ``resolved`` (it entered a stopping state, or closed) and ``reopens`` (how
    often it left a stopping state for another one); with ``workflows``, its attributes (the
    log's own ``reopen_count``, ...)."""
    lf = events.lazy()
    intervals = step_intervals(lf)
    stops = clock_stops(intervals, stopping)
    entered = (
        intervals.filter(is_state("step", stopping))
        .select("workflow_id")
        .unique()
        .with_columns(pl.lit(value=True).alias("__entered"))
    )
    closed = (
        lf.filter(pl.col("event").cast(pl.String).is_in(_TERMINAL))
        .select("workflow_id")
        .unique()
        .with_columns(pl.lit(value=True).alias("__closed"))
    )
    out = (
        lf.select("workflow_id")
        .unique(maintain_order=True)
        .join(entered, on="workflow_id", how="left", maintain_order="left")
        .join(closed, on="workflow_id", how="left", maintain_order="left")
        .join(
            stops.select("workflow_id", "reopens"),
            on="workflow_id",
            how="left",
            maintain_order="left",
        )
        .select(
            "workflow_id",
            (pl.col("__entered").fill_null(False) | pl.col("__closed").fill_null(False)).alias(
                "resolved"
            ),
            pl.col("reopens").fill_null(0).cast(pl.UInt32),
        )
    )
    return same_kind(events, _with_attributes(out, workflows))


def reopen_rate(per_case: FrameT, *, by: By = None) -> FrameT:
    """From :func:`reopens`: ``cases``, ``resolved``, ``reopened`` (resolved cases reopened
    once or more), ``reopen_rate`` (reopened / resolved; null when none resolved) and
    ``reopens`` (all of them), per group."""
    keys = group_keys(by)
    aggs = [
        pl.len().alias("cases"),
        pl.col("resolved").sum().alias("resolved"),
        (pl.col("resolved") & (pl.col("reopens") > 0)).sum().alias("reopened"),
        pl.col("reopens").sum().alias("reopens"),
    ]
    lf = per_case.lazy()
    grouped = lf.group_by(keys).agg(aggs).sort(keys) if keys else lf.select(aggs)
    out = grouped.with_columns(
        pl.when(pl.col("resolved") > 0)
        .then(pl.col("reopened") / pl.col("resolved"))
        .alias("reopen_rate")
    )
    return same_kind(per_case, out)


def time_in_state(steps: FrameT, *, by: By = "step") -> FrameT:
    """Time in each state (or step) per case, summarised, from
    :func:`~protocol_lab.analytics.steps.step_durations` (whose rows are the visits).

    A case's dwell in a state is the sum of its visits (a state entered again, or held by
    another group, adds up). Columns: the ``by`` keys, ``cases`` (cases that were in it),
    ``visits``, ``visits_per_case``, ``mean_h``, ``p50_h``, ``p90_h`` (of the per-case
    dwell), ``total_h`` and ``share`` (of all the time in states), longest in total first.
    :func:`~protocol_lab.analytics.steps.bottlenecks` ranks the visits themselves.
    """
    keys = group_keys(by)
    per_case = (
        steps.lazy()
        .group_by("workflow_id", *keys)
        .agg(pl.len().alias("__visits"), (pl.col("total_s").sum() / 3600).alias("__h"))
    )
    dwell = pl.col("__h")
    out = (
        per_case.group_by(keys)
        .agg(
            pl.len().cast(pl.UInt32).alias("cases"),
            pl.col("__visits").sum().cast(pl.UInt32).alias("visits"),
            (pl.col("__visits").sum() / pl.len()).alias("visits_per_case"),
            dwell.mean().alias("mean_h"),
            dwell.quantile(0.5, interpolation="linear").alias("p50_h"),
            dwell.quantile(0.9, interpolation="linear").alias("p90_h"),
            dwell.sum().alias("total_h"),
        )
        .with_columns((pl.col("total_h") / pl.col("total_h").sum()).alias("share"))
        .sort("total_h", *keys, descending=[True] + [False] * len(keys))
    )
    return same_kind(steps, out)


def sla_agreement(status: FrameT, *, flag: str = "made_sla", by: By = None) -> FrameT:
    """How computed SLA attainment agrees with the log's own flag (ServiceNow's
    ``made_sla``), from :func:`~protocol_lab.analytics.sla.sla_status` over cases whose clock
    has stopped (resolved or closed: a verdict) and that have the flag.

    Columns: the ``by`` keys, ``cases``, ``both_met``, ``both_breached``, ``met_log_breached``
    (computed met, the log says breached), ``breached_log_met``, ``agree`` and ``agreement``
    (agree / cases; null for none).
    """
    keys = group_keys(by)
    names = status.lazy().collect_schema().names()
    if flag not in names:
        raise ValueError(f"no column {flag!r} to compare with; columns: {names}")
    state = pl.col("sla_state").cast(pl.String)
    log = pl.col(flag).cast(pl.String).str.strip_chars().str.to_lowercase()
    made = log.replace_strict(
        {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False},
        default=None,
        return_dtype=pl.Boolean,
    )
    lf = (
        status.lazy()
        .with_columns(made.alias("__made"), (state == "met").alias("__met"))
        .filter(
            state.is_in(["met", "breached"])
            & pl.col("__made").is_not_null()
            & (pl.col("clock_stopped_at").is_not_null() if "clock_stopped_at" in names else True)
        )
    )
    met, made_it = pl.col("__met"), pl.col("__made")
    aggs = [
        pl.len().cast(pl.UInt32).alias("cases"),
        (met & made_it).sum().alias("both_met"),
        (~met & ~made_it).sum().alias("both_breached"),
        (met & ~made_it).sum().alias("met_log_breached"),
        (~met & made_it).sum().alias("breached_log_met"),
    ]
    grouped = lf.group_by(keys).agg(aggs).sort(keys) if keys else lf.select(aggs)
    out = grouped.with_columns(
        (pl.col("both_met") + pl.col("both_breached")).alias("agree")
    ).with_columns(
        pl.when(pl.col("cases") > 0).then(pl.col("agree") / pl.col("cases")).alias("agreement")
    )
    return same_kind(status, out)
