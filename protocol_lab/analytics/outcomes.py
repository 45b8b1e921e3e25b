"""How workflows end: failure and cancellation rates, their reasons, and process variants."""

from __future__ import annotations

import polars as pl

from protocol_lab.analytics._frames import By, FrameT, group_keys, same_kind
from protocol_lab.analytics.steps import label_codes

__all__ = ["failure_rates", "failure_reasons", "variants"]


def failure_rates(workflows: FrameT, *, by: By = "task_queue") -> FrameT:
    """Outcome counts and rates per group (rates over closed workflows).

    Columns: the ``by`` keys, ``workflows``, ``completed``, ``failed``, ``cancelled``,
    ``open``, ``failure_rate``, ``cancellation_rate``.
    """
    keys: list[str] = group_keys(by)
    outcome: pl.Expr = pl.col("outcome").cast(pl.String)
    aggs = [
        pl.len().alias("workflows"),
        *[(outcome == o).sum().alias(o) for o in ("completed", "failed", "cancelled", "open")],
    ]
    lf = workflows.lazy()
    grouped = lf.group_by(keys).agg(aggs).sort(keys) if keys else lf.select(aggs)
    closed = pl.col("workflows") - pl.col("open")
    out = grouped.with_columns(
        (pl.col("failed") / closed).alias("failure_rate"),
        (pl.col("cancelled") / closed).alias("cancellation_rate"),
    )
    return same_kind(workflows, out)


def failure_reasons(workflows: FrameT, *, by: By = None) -> FrameT:
    """Failed and cancelled workflows counted by reason (the detail of the terminal event).

    Columns: the ``by`` keys, ``outcome``, ``reason``, ``n``, ``share`` (of that outcome in
    the group), sorted by count.
    """
    keys: list[str] = group_keys(by)
    outcome: pl.Expr = pl.col("outcome").cast(pl.String)
    out = (
        workflows.lazy()
        .filter(outcome.is_in(["failed", "cancelled"]))
        .group_by(*keys, outcome.alias("outcome"), pl.col("end_detail").alias("reason"))
        .agg(pl.len().alias("n"))
        .with_columns((pl.col("n") / pl.col("n").sum().over(*keys, "outcome")).alias("share"))
        .sort(*keys, "outcome", "n", descending=[False] * (len(keys) + 1) + [True])
    )
    return same_kind(workflows, out)


def variants(
    events: FrameT,
    workflows: pl.DataFrame | pl.LazyFrame | None = None,
    *,
    activity: str | pl.Expr | None = None,
    steps_only: bool = True,
) -> FrameT:
    """Process variants: distinct activity sequences with their frequency and duration.

    The sequence of a workflow is its labels in time order; with ``steps_only`` (default)
    only step completions (``activity_completed``, ``activity_failed``, ``signal_received``)
    and the terminal event are kept, so a variant reads like the plan's path. Durations are
    first-to-last event of each workflow (or ``cycle_time_s`` from ``workflows`` when
    given). Workflows without any kept event are left out. Columns: ``variant``, ``n``,
    ``share``, ``mean_h``, ``p50_h``, ``p90_h``, ``length``.
    """
    lf = events.lazy()
    if steps_only:
        lf = lf.filter(
            pl.col("event")
            .cast(pl.String)
            .is_in(
                [
                    "activity_completed",
                    "activity_failed",
                    "signal_received",
                    "workflow_completed",
                    "workflow_failed",
                    "workflow_cancelled",
                ]
            )
        )
    # Group on the sequence of label codes (cheap integer lists) and spell out each distinct
    # variant once, instead of joining strings for every workflow.
    # Sorting on time alone is enough: a group keeps its rows in frame order.
    coded = lf.select(
        "workflow_id",
        "timestamp",
        label_codes(activity, event_dtype=lf.collect_schema().get("event")).alias("__label"),
    ).sort("timestamp", maintain_order=True)
    per_case = coded.group_by("workflow_id").agg(
        pl.col("__label").to_physical().alias("__codes"),
        pl.col("__label").alias("__labels"),
        pl.len().alias("length"),
        (
            (pl.col("timestamp").max() - pl.col("timestamp").min()).dt.total_microseconds() / 1e6
        ).alias("__span_s"),
    )
    if workflows is not None:
        per_case = per_case.join(
            workflows.lazy().select("workflow_id", "cycle_time_s"), on="workflow_id", how="left"
        ).with_columns(pl.coalesce("cycle_time_s", "__span_s").alias("__span_s"))
    hours = pl.col("__span_s") / 3600
    out = (
        per_case.group_by("__codes")
        .agg(
            pl.len().alias("n"),
            hours.mean().alias("mean_h"),
            hours.median().alias("p50_h"),
            hours.quantile(0.9, "linear").alias("p90_h"),
            pl.col("length").first(),
            pl.col("__labels").first(),
        )
        .with_columns(
            pl.col("__labels")
            .list.eval(pl.element().cast(pl.String))
            .list.join(" > ")
            .alias("variant"),
            (pl.col("n") / pl.col("n").sum()).alias("share"),
        )
        .select("variant", "n", "share", "mean_h", "p50_h", "p90_h", "length")
        .sort("n", "variant", descending=[True, False])
    )
    return same_kind(events, out)
