"""How workflows end: failure and cancellation rates, their reasons, and process variants."""

from __future__ import annotations

import polars as pl

from protocol_lab.analytics._case_order import in_case_order, known_order
from protocol_lab.analytics._frames import By, FrameT, group_keys, same_kind
from protocol_lab.analytics.steps import label_codes

__all__ = ["failure_rates", "failure_reasons", "variants"]

_STEP_EVENTS = (
    "activity_completed",
    "activity_failed",
    "signal_received",
    "workflow_completed",
    "workflow_failed",
    "workflow_cancelled",
)
"""The events a variant is made of with ``steps_only``: step completions and the terminal one."""


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
    label = label_codes(activity, event_dtype=lf.collect_schema().get("event")).alias("__label")
    kept = (
        pl.col("event").cast(pl.String).is_in(_STEP_EVENTS).alias("__kept") if steps_only else None
    )
    order = known_order(events, column="workflow_id")
    if order is not None:  # a cached timeline's events: gather them in case order
        coded = in_case_order(
            lf,
            order,
            label,
            default_label=activity is None,
            name="__label",
            also=() if kept is None else (kept,),
        )
        case = "__case"
        # each case's times are in order: its first and last are its min and max
        first, last = pl.col("timestamp").first(), pl.col("timestamp").last()
    else:
        # Sorting on time alone is enough: a group keeps its rows in frame order.
        coded = lf.select(
            "workflow_id", "timestamp", label, *([] if kept is None else [kept])
        ).sort("timestamp", maintain_order=True)
        case = "workflow_id"
        first, last = pl.col("timestamp").min(), pl.col("timestamp").max()
    if kept is not None:
        coded = coded.filter(pl.col("__kept"))
    # Group on the sequence of labels (categoricals: integer lists underneath) and spell out
    # each distinct variant once, instead of joining strings for every workflow.
    per_case = coded.group_by(case, maintain_order=order is not None).agg(
        pl.col("__label").alias("__labels"),
        pl.len().alias("length"),
        ((last - first).dt.total_microseconds() / 1e6).alias("__span_s"),
    )
    if order is not None and workflows is not None:
        per_case = per_case.with_columns(
            pl.lit(order.ids).gather(pl.col("__case")).alias("workflow_id")
        )
    if workflows is not None:
        per_case = per_case.join(
            workflows.lazy().select("workflow_id", "cycle_time_s"), on="workflow_id", how="left"
        ).with_columns(pl.coalesce("cycle_time_s", "__span_s").alias("__span_s"))
    hours = pl.col("__span_s") / 3600
    out = (
        per_case.group_by("__labels")
        .agg(
            pl.len().alias("n"),
            hours.mean().alias("mean_h"),
            hours.median().alias("p50_h"),
            hours.quantile(0.9, "linear").alias("p90_h"),
            pl.col("length").first(),
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
