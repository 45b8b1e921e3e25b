"""Flow: arrivals and completions per period, work in progress, cumulative flow, Little's law.

All functions take the per-workflow frame (:attr:`Timelines.workflows`) and return a frame of
the same kind. Periods are polars durations such as ``"1h"``, ``"1d"``, ``"1w"``; every
period between the first arrival and the last event appears, with zeros where nothing
happened.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from protocol_lab.analytics._frames import By, FrameT, group_keys, same_kind, seconds

__all__ = ["arrival_stats", "arrivals_by_hour", "cumulative_flow", "littles_law", "throughput"]

_OUTCOME_COUNTS = ("completed", "failed", "cancelled")


def throughput(workflows: FrameT, *, every: str = "1d", by: By = None) -> FrameT:
    """Arrivals and departures per period (and per group).

    Columns: ``period`` (start of the period), the ``by`` keys, ``arrivals``, ``departures``
    (workflows that closed), and ``completed`` / ``failed`` / ``cancelled`` (departures by
    outcome).
    """
    keys: list[str] = group_keys(by)
    lf = workflows.lazy()
    arrivals = lf.group_by(pl.col("started_at").dt.truncate(every).alias("period"), *keys).agg(
        pl.len().alias("arrivals")
    )
    outcome: pl.Expr = pl.col("outcome").cast(pl.String)
    departures = (
        lf.filter(pl.col("completed_at").is_not_null())
        .group_by(pl.col("completed_at").dt.truncate(every).alias("period"), *keys)
        .agg(
            pl.len().alias("departures"),
            *[(outcome == o).sum().alias(o) for o in _OUTCOME_COUNTS],
        )
    )
    periods = lf.select(
        pl.datetime_range(
            pl.col("started_at").min().dt.truncate(every),
            pl.max_horizontal(pl.col("last_event_at").max(), pl.col("started_at").max()),
            interval=every,
        ).alias("period")
    )
    grid = periods.join(lf.select(keys).unique(), how="cross") if keys else periods
    counts = ["arrivals", "departures", *_OUTCOME_COUNTS]
    out = (
        grid.join(arrivals, on=["period", *keys], how="left")
        .join(departures, on=["period", *keys], how="left")
        .with_columns([pl.col(c).fill_null(0).cast(pl.UInt32) for c in counts])
        .select("period", *keys, *counts)
        .sort(*keys, "period")
    )
    return same_kind(workflows, out)


def cumulative_flow(workflows: FrameT, *, every: str = "1d", by: By = None) -> FrameT:
    """Cumulative arrivals and departures at the end of each period, and the WIP between.

    Columns: ``period``, the ``by`` keys, ``arrived``, ``departed``, ``completed``,
    ``failed``, ``cancelled`` (all cumulative) and ``wip`` (arrived - departed at the end of
    the period). The bands of a cumulative flow diagram are these columns.
    """
    keys: list[str] = group_keys(by)
    counts = ["arrivals", "departures", *_OUTCOME_COUNTS]
    names = ["arrived", "departed", *_OUTCOME_COUNTS]
    flow = throughput(workflows.lazy(), every=every, by=keys or None)
    over = keys if keys else None

    def cum(col: str) -> pl.Expr:
        expr = pl.col(col).cast(pl.Int64).cum_sum()
        return expr.over(over) if over else expr

    out = flow.with_columns([cum(c).alias(n) for c, n in zip(counts, names, strict=True)]).select(
        "period",
        *keys,
        *names,
        (pl.col("arrived") - pl.col("departed")).alias("wip"),
    )
    return same_kind(workflows, out)


def littles_law(
    workflows: FrameT,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    by: By = None,
    tolerance: float = 0.1,
) -> FrameT:
    """Check L = λW over a window and flag groups where the data do not add up.

    ``L`` is the time-averaged work in progress in the window (each workflow counts from its
    start until it closed, or until the end of the window if it never did); ``λ`` the
    arrival rate in the window; ``W`` the mean cycle time of the workflows that arrived in
    the window and closed. For consistent data ``L ≈ λW``; workflows that never close
    (missing terminal events), negative cycle times or a window much shorter than the cycle
    times break the equality. Columns: the ``by`` keys, ``window_h``, ``arrivals``,
    ``L``, ``lambda_per_h``, ``W_h``, ``lambda_W``, ``relative_error``, ``open``,
    ``negative_cycle_times`` and ``consistent`` (relative error within ``tolerance`` and no
    negative cycle times).
    """
    keys: list[str] = group_keys(by)
    lf = workflows.lazy()
    t0 = (
        pl.lit(start).cast(pl.Datetime("us", "UTC"))
        if start is not None
        else pl.col("started_at").min()
    )
    t1 = (
        pl.lit(end).cast(pl.Datetime("us", "UTC"))
        if end is not None
        else (pl.col("last_event_at").max())
    )
    bounded = lf.with_columns(t0.alias("__t0"), t1.alias("__t1"))
    stop = pl.min_horizontal(pl.coalesce("completed_at", "__t1"), pl.col("__t1"))
    begin = pl.max_horizontal(pl.col("started_at"), pl.col("__t0"))
    inside = (pl.col("started_at") >= pl.col("__t0")) & (pl.col("started_at") <= pl.col("__t1"))
    window_s = seconds(pl.col("__t1").first() - pl.col("__t0").first())
    closed_inside = inside & pl.col("cycle_time_s").is_not_null()
    aggs = [
        (window_s / 3600).alias("window_h"),
        inside.sum().alias("arrivals"),
        (seconds(stop - begin).clip(lower_bound=0).sum() / window_s).alias("L"),
        (inside.sum() / window_s * 3600).alias("lambda_per_h"),
        (pl.col("cycle_time_s").filter(closed_inside).mean() / 3600).alias("W_h"),
        (pl.col("outcome").cast(pl.String) == "open").sum().alias("open"),
        (pl.col("cycle_time_s") < 0).sum().alias("negative_cycle_times"),
    ]
    grouped = bounded.group_by(keys).agg(aggs).sort(keys) if keys else bounded.select(aggs)
    out = (
        grouped.with_columns(
            (pl.col("lambda_per_h") * pl.col("W_h")).alias("lambda_W"),
        )
        .with_columns(
            ((pl.col("L") - pl.col("lambda_W")).abs() / pl.col("L")).alias("relative_error"),
        )
        .with_columns(
            ((pl.col("relative_error") <= tolerance) & (pl.col("negative_cycle_times") == 0)).alias(
                "consistent"
            )
        )
    )
    return same_kind(workflows, out)


def arrival_stats(workflows: FrameT, *, by: By = None) -> FrameT:
    """Arrival counts, mean time between arrivals and arrivals per hour, per group.

    ``mean_interarrival_s`` is the mean gap between consecutive workflow starts, i.e.
    (last start - first start) / (n - 1), as PM4Py's case arrival average.
    """
    keys: list[str] = group_keys(by)
    start = pl.col("started_at")
    span = seconds(start.max() - start.min())
    aggs = [
        pl.len().alias("arrivals"),
        (span / (pl.len() - 1)).alias("mean_interarrival_s"),
        (pl.len() / span * 3600).alias("arrivals_per_hour"),
    ]
    lf = workflows.lazy()
    out = lf.group_by(keys).agg(aggs).sort(keys) if keys else lf.select(aggs)
    return same_kind(workflows, out)


def arrivals_by_hour(workflows: FrameT, *, timezone: str = "UTC", by: By = None) -> FrameT:
    """Arrivals per weekday (0 = Monday) and hour of day in ``timezone``, for heatmaps."""
    keys: list[str] = group_keys(by)
    local = pl.col("started_at").dt.convert_time_zone(timezone)
    out = (
        workflows.lazy()
        .group_by(
            *keys,
            (local.dt.weekday() - 1).cast(pl.Int8).alias("weekday"),
            local.dt.hour().cast(pl.Int8).alias("hour"),
        )
        .agg(pl.len().alias("arrivals"))
        .sort(*keys, "weekday", "hour")
    )
    return same_kind(workflows, out)
