"""Step durations (active, waiting, human waits), bottleneck ranking, directly-follows times.

A *step instance* is one run of a plan step inside one workflow:

- an activity: ``wait_s`` from the previous event of the workflow to ``activity_started``
  (waiting for a worker), ``active_s`` from there to ``activity_completed``/``activity_failed``;
- a signal wait: the time from the previous event to ``signal_received`` (or, for a wait that
  timed out and went on, to its ``activity_completed`` with outcome ``timed_out``); it goes to
  ``human_wait_s`` when the catalog marks the signal as human (approvals, confirmations) or
  the step is unknown to the catalog, else to ``wait_s`` (system callbacks);
- a compensation: ``active_s`` from ``compensation_started`` to ``compensation_completed``.

All functions take the events frame (:attr:`Timelines.events`) and return a frame of the same
kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import polars as pl

from protocol_lab.analytics._case_order import in_case_order, known_order
from protocol_lab.analytics._frames import (
    By,
    FrameT,
    case_codes,
    group_keys,
    same_kind,
    seconds,
)

if TYPE_CHECKING:
    from protocol_lab.domain import Catalog

__all__ = [
    "STEP_KINDS",
    "activity_label",
    "bottlenecks",
    "directly_follows",
    "label_codes",
    "step_durations",
]

STEP_KINDS: Final = ("activity", "signal", "compensation")

_ACTIVITY_EVENTS: Final = ("activity_started", "activity_completed", "activity_failed")
_COMP_EVENTS: Final = ("compensation_started", "compensation_completed")


def _human_lookup(catalog: Catalog | None) -> pl.LazyFrame:
    from protocol_lab.domain import SignalStep, load_catalog

    cat = catalog if catalog is not None else load_catalog()
    rows = [
        (plan.name, step.id, step.human)
        for plan in cat.values()
        for step in plan.steps
        if isinstance(step, SignalStep)
    ]
    return pl.LazyFrame(
        rows,
        schema={"workflow_name": pl.String, "step": pl.String, "__human": pl.Boolean},
        orient="row",
    )


def step_durations(
    events: FrameT,
    *,
    workflows: pl.DataFrame | pl.LazyFrame | None = None,
    catalog: Catalog | None = None,
) -> FrameT:
    """One row per step instance with its start, end, wait, human wait and active time.

    Columns: ``workflow_id``, ``workflow_name``, ``task_queue``, ``trigger_type``, ``step``,
    ``kind`` (activity / signal / compensation), ``human``, ``start``, ``end``, ``outcome``
    (completed / failed / received / timed_out), ``wait_s``, ``human_wait_s``, ``active_s``,
    ``total_s``; with ``workflows``, its attribute columns (``priority``, ...) too, for grouping.
    """
    lf = (
        events.lazy()
        .sort("workflow_id", "timestamp", maintain_order=True)
        .with_columns(
            pl.col("event").cast(pl.String).alias("__event"),
            pl.col("timestamp").shift(1).over("workflow_id").alias("__prev"),
        )
    )
    out = (
        pl.concat([_paired_steps(lf), _signal_waits(lf, catalog)], how="vertical_relaxed")
        .with_columns(
            pl.col("kind").cast(pl.Enum(list(STEP_KINDS))),
            (pl.col("wait_s") + pl.col("human_wait_s") + pl.col("active_s")).alias("total_s"),
        )
        .sort("workflow_id", "end", maintain_order=True)
    )
    if workflows is not None:
        out = _with_workflow_attributes(out, workflows)
    return same_kind(events, out)


_STEP_KEYS: Final = ("workflow_id", "workflow_name", "task_queue", "trigger_type")


def _wait_timed_out() -> pl.Expr:
    """A signal wait that timed out and went on: it closes as activity_completed, timed_out."""
    return (pl.col("__event") == "activity_completed") & pl.col("outcome").cast(
        pl.String
    ).eq_missing("timed_out")


def _paired_steps(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Activities and compensations: each closing event paired with the event that opened it."""
    event = pl.col("__event")
    return (
        lf.filter(
            event.is_in([*_ACTIVITY_EVENTS, *_COMP_EVENTS])
            & pl.col("step").is_not_null()
            & ~_wait_timed_out()
        )
        .with_columns(
            pl.when(event.is_in(_COMP_EVENTS))
            .then(pl.lit("compensation"))
            .otherwise(pl.lit("activity"))
            .alias("kind")
        )
        .with_columns(
            pl.col("timestamp").shift(1).over("workflow_id", "step", "kind").alias("start"),
            pl.col("__prev").shift(1).over("workflow_id", "step", "kind").alias("__before"),
            event.shift(1).over("workflow_id", "step", "kind").alias("__opened_by"),
        )
        .filter(
            event.is_in(["activity_completed", "activity_failed", "compensation_completed"])
            & pl.col("__opened_by").is_in(["activity_started", "compensation_started"])
        )
        .select(
            *_STEP_KEYS,
            "step",
            "kind",
            pl.lit(value=False).alias("human"),
            "start",
            pl.col("timestamp").alias("end"),
            pl.when(event == "activity_failed")
            .then(pl.lit("failed"))
            .otherwise(pl.lit("completed"))
            .alias("outcome"),
            pl.when(pl.col("kind") == "activity")
            .then(seconds(pl.col("start") - pl.col("__before")).fill_null(0.0))
            .otherwise(0.0)
            .alias("wait_s"),
            pl.lit(0.0).alias("human_wait_s"),
            seconds(pl.col("timestamp") - pl.col("start")).alias("active_s"),
        )
    )


def _signal_waits(lf: pl.LazyFrame, catalog: Catalog | None) -> pl.LazyFrame:
    """Signal waits, from the previous event; a human wait unless the catalog says system."""
    event = pl.col("__event")
    return (
        lf.filter((event == "signal_received") | _wait_timed_out())
        .with_columns(pl.col("step").fill_null(pl.col("detail")))
        .join(_human_lookup(catalog), on=["workflow_name", "step"], how="left")
        .with_columns(pl.col("__human").fill_null(value=True).alias("human"))
        .with_columns(seconds(pl.col("timestamp") - pl.col("__prev")).fill_null(0.0).alias("__w"))
        .select(
            *_STEP_KEYS,
            "step",
            pl.lit("signal").alias("kind"),
            "human",
            pl.col("__prev").alias("start"),
            pl.col("timestamp").alias("end"),
            pl.when(event == "signal_received")
            .then(pl.lit("received"))
            .otherwise(pl.lit("timed_out"))
            .alias("outcome"),
            pl.when(pl.col("human")).then(0.0).otherwise(pl.col("__w")).alias("wait_s"),
            pl.when(pl.col("human")).then(pl.col("__w")).otherwise(0.0).alias("human_wait_s"),
            pl.lit(0.0).alias("active_s"),
        )
    )


def _with_workflow_attributes(
    out: pl.LazyFrame, workflows: pl.DataFrame | pl.LazyFrame
) -> pl.LazyFrame:
    """``out`` with the workflows' attribute columns (those beyond the workflow schema)."""
    from protocol_lab.analytics.timelines import WORKFLOW_SCHEMA

    wf = workflows.lazy()
    extra = [c for c in wf.collect_schema().names() if c not in WORKFLOW_SCHEMA]
    if not extra:
        return out
    return out.join(
        wf.select("workflow_id", *extra),
        on="workflow_id",
        how="left",
        maintain_order="left",
    )


def bottlenecks(
    steps: FrameT,
    *,
    by: By = ("workflow_name", "step"),
    include_human: bool = False,
) -> FrameT:
    """Rank steps by the time they add to workflows, worst first.

    Input: the output of :func:`step_durations`. The score is the summed ``wait_s +
    active_s`` (plus ``human_wait_s`` when ``include_human``), so a step that is both slow and
    frequent ranks high; human signal waits are reported but, by default, not ranked, since
    adding workers does not shorten them (human signal steps and compensations are then left
    out of the ranking). Columns: the ``by`` keys, ``kind``, ``n``, median
    and p90 of wait, active and human wait, ``total_h`` (the score in hours), ``share`` of
    the summed score, and ``rank`` (1 = worst bottleneck).
    """
    keys: list[str] = group_keys(by)
    score = pl.col("wait_s") + pl.col("active_s")
    if include_human:
        score = score + pl.col("human_wait_s")
    lf = steps.lazy()
    if not include_human:
        lf = lf.filter(
            (pl.col("kind") != "compensation") & ~((pl.col("kind") == "signal") & pl.col("human"))
        )
    ranked = (
        lf.with_columns(score.alias("__score"))
        .group_by(keys)
        .agg(
            pl.col("kind").first(),
            pl.len().alias("n"),
            pl.col("wait_s").median().alias("wait_p50_s"),
            pl.col("wait_s").quantile(0.9, "linear").alias("wait_p90_s"),
            pl.col("active_s").median().alias("active_p50_s"),
            pl.col("active_s").quantile(0.9, "linear").alias("active_p90_s"),
            pl.col("human_wait_s").median().alias("human_wait_p50_s"),
            pl.col("human_wait_s").quantile(0.9, "linear").alias("human_wait_p90_s"),
            (pl.col("__score").sum() / 3600).alias("total_h"),
        )
        .with_columns((pl.col("total_h") / pl.col("total_h").sum()).alias("share"))
        .sort("total_h", *keys, descending=[True] + [False] * len(keys))
        .with_columns(pl.int_range(1, pl.len() + 1).alias("rank"))
    )
    return same_kind(steps, ranked)


def activity_label() -> pl.Expr:
    """The activity name used for variants and directly-follows: step id, else the event."""
    return pl.coalesce(pl.col("step"), pl.col("event").cast(pl.String))


def label_codes(
    activity: str | pl.Expr | None = None, *, event_dtype: pl.DataType | None = None
) -> pl.Expr:
    """An activity label as a Categorical, for cheap sorting and grouping.

    ``activity`` is a column name, an expression, or None for :func:`activity_label`, which
    is then built from categoricals of ``step`` and ``event`` rather than by spelling out a
    string per row first. ``event_dtype`` is the frame's ``event`` type: for an Enum (the
    timeline schema's) the categorical is looked up from the few enum codes instead of being
    cast row by row through strings.
    """
    if activity is None:
        return pl.coalesce(_categorical(pl.col("step")), _event_categorical(event_dtype))
    label = pl.col(activity) if isinstance(activity, str) else activity
    return _categorical(label.cast(pl.String))


def _categorical(text: pl.Expr) -> pl.Expr:
    """A string expression as a Categorical.

    Every string is a category, so the cast cannot fail: a strict one would still look for
    failed rows, which means copying the strings of a many-chunk column into one chunk first.
    """
    return text.cast(pl.Categorical, strict=False)


def _event_categorical(event_dtype: pl.DataType | None) -> pl.Expr:
    """``event`` as a Categorical: for an Enum, its categories gathered by the row's code."""
    if isinstance(event_dtype, pl.Enum):
        names = pl.Series(event_dtype.categories, dtype=pl.String).cast(pl.Categorical)
        return pl.lit(names).gather(pl.col("event").to_physical())
    return _categorical(pl.col("event"))


def directly_follows(
    events: FrameT,
    *,
    activity: str | pl.Expr | None = None,
    case: str = "workflow_id",
) -> FrameT:
    """The performance directly-follows graph: for each pair (a, b) of consecutive events in a
    case, how often and how long from a to b.

    ``activity`` names the label column or expression (default: step id, else event name).
    Columns: ``source``, ``target``, ``n``, ``mean_s``, ``median_s``, ``min_s``, ``max_s``.
    """
    same_case = pl.col("__case").shift(-1) == pl.col("__case")
    label = label_codes(activity, event_dtype=events.lazy().collect_schema().get("event"))
    order = known_order(events, column=case)
    if order is not None:  # a cached timeline's events: gather them in case order
        ordered = in_case_order(
            events.lazy(), order, label, default_label=activity is None, name="source"
        )
    else:
        ordered = (
            events.lazy()
            .select(case_codes(case).alias("__case"), label.alias("source"), pl.col("timestamp"))
            # (case, time) order as two stable sorts: by time (next to free on a log already
            # in time order), then by case code alone through one gather. A sort on both keys
            # is what polars makes of two chained ``sort`` calls, and costs more.
            .sort("timestamp", maintain_order=True)
            .with_columns(
                pl.int_range(pl.len(), dtype=pl.get_index_type())
                .sort_by("__case", maintain_order=True)
                .alias("__at")
            )
            .select(pl.col("__case", "source", "timestamp").gather("__at"))
        )
    # one integer key per (source, target) pair groups faster than the two categoricals; a
    # missing source label gets a code of its own (the top one, which no category has)
    source_code = pl.col("source").to_physical().cast(pl.UInt64).fill_null(2**32 - 1)
    pair = (source_code * 2**32 + pl.col("target").to_physical()).alias("__pair")
    lf = (
        ordered.with_columns(
            pl.col("source").shift(-1).alias("target"),
            seconds(pl.col("timestamp").shift(-1) - pl.col("timestamp")).alias("__d"),
        )
        .filter(same_case & pl.col("target").is_not_null())
        .group_by(pair)
        .agg(
            pl.col("source").first(),
            pl.col("target").first(),
            pl.len().alias("n"),
            pl.col("__d").mean().alias("mean_s"),
            pl.col("__d").median().alias("median_s"),
            pl.col("__d").min().alias("min_s"),
            pl.col("__d").max().alias("max_s"),
        )
        .drop("__pair")
        .with_columns(pl.col("source", "target").cast(pl.String))
        .sort("n", "source", "target", descending=[True, False, False])
    )
    return same_kind(events, lf)
