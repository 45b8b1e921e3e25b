"""Checked rows of a foreign log into timeline events in the foreign vocabulary.

Input rows carry ``__case``, ``__label`` (activity or state), ``__ts`` (UTC), ``__opened``,
``__order``, ``__group``, ``__resource``, ``__trigger``, ``__lifecycle`` and the source row
number. Everything is column expressions over one sort by (case, time, order, row): no loop
over cases, so a log of n rows costs O(n log n).

Equal times keep the log's order: each event gets a sequence number from the position of the
row or interval it comes from (3 per position: the case's start, the row's own events, the
interval's end), and the events are sorted by (case, time, sequence).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import polars as pl

from protocol_lab.analytics.log_readers import ROW
from protocol_lab.analytics.vocabulary import FOREIGN_SCHEMA

if TYPE_CHECKING:
    from protocol_lab.analytics.log_mapping import LogMapping

__all__ = ["INTERVAL_KEYS", "log_events"]

INTERVAL_KEYS: Final = ("__label", "__group", "__resource")
"""A state log's interval ends when any of these changes: state, group, resource."""

_LIFECYCLE: Final = {"start": "activity_started", "complete": "activity_completed"}
_GIVEN: Final = frozenset(
    {"workflow_id", "event", "timestamp", "step", "detail", "task_queue", "actor", "trigger_type"}
)


def _ordered(rows: pl.LazyFrame) -> pl.LazyFrame:
    return rows.sort("__case", "__ts", "__order", ROW, nulls_last=True).with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("__i"),
        pl.col("__case").ne_missing(pl.col("__case").shift(1)).alias("__first"),
        pl.col("__case").ne_missing(pl.col("__case").shift(-1)).alias("__last"),
    )


def _event(
    frame: pl.LazyFrame,
    event: str | pl.Expr,
    *,
    at: str | pl.Expr,
    seq: pl.Expr,
    step: pl.Expr | None,
    detail: pl.Expr | None = None,
) -> pl.LazyFrame:
    return frame.select(
        pl.col("__case").alias("workflow_id"),
        (pl.lit(event) if isinstance(event, str) else event).alias("event"),
        (pl.col(at) if isinstance(at, str) else at).alias("timestamp"),
        seq.alias("__seq"),
        (step if step is not None else pl.lit(None, dtype=pl.String)).alias("step"),
        (detail if detail is not None else pl.lit(None, dtype=pl.String)).alias("detail"),
        pl.col("__group").alias("task_queue"),
        pl.col("__resource").alias("actor"),
        pl.col("__trigger").alias("trigger_type"),
    )


def _closing(mapping: LogMapping) -> pl.Expr:
    """Whether a row ends its case: its last row, in a final state (or any, for finished
    cases)."""
    if mapping.complete_cases:
        return pl.col("__last")
    return pl.col("__last") & pl.col("__label").is_in(list(mapping.final))


def _started(lf: pl.LazyFrame) -> pl.LazyFrame:
    start = pl.min_horizontal("__ts", "__opened")
    return _event(
        lf.filter(pl.col("__first")),
        "workflow_started",
        at=start,
        seq=pl.col("__i") * 3,
        step=None,
    )


def _state_events(rows: pl.LazyFrame, mapping: LogMapping) -> list[pl.LazyFrame]:
    lf = _ordered(rows)
    changed = pl.col("__first")
    for key in INTERVAL_KEYS:
        changed = changed | pl.col(key).ne_missing(pl.col(key).shift(1))
    runs = (
        lf.filter(changed)
        .with_columns(
            pl.col("__case").ne_missing(pl.col("__case").shift(-1)).alias("__last"),
            pl.when(pl.col("__case").shift(-1) == pl.col("__case"))
            .then(pl.col("__ts").shift(-1))
            .alias("__end"),
        )
        .with_columns(_closing(mapping).alias("__closes"))
    )
    intervals = runs.filter(~pl.col("__closes"))
    return [
        _started(lf),
        _event(
            intervals,
            "activity_started",
            at="__ts",
            seq=pl.col("__i") * 3 + 1,
            step=pl.col("__label"),
        ),
        _event(
            intervals.filter(pl.col("__end").is_not_null()),
            "activity_completed",
            at="__end",
            seq=pl.col("__i") * 3 + 2,
            step=pl.col("__label"),
        ),
        _event(
            runs.filter(pl.col("__closes")),
            "workflow_completed",
            at="__ts",
            seq=pl.col("__i") * 3 + 1,
            step=None,
            detail=pl.col("__label"),
        ),
    ]


def _activity_events(rows: pl.LazyFrame, mapping: LogMapping) -> list[pl.LazyFrame]:
    lf = _ordered(rows).with_columns(_closing(mapping).alias("__closes"))
    transition = pl.col("__lifecycle").str.strip_chars().str.to_lowercase()
    event = transition.replace(_LIFECYCLE).fill_null("activity_completed")
    return [
        _started(lf),
        _event(lf, event, at="__ts", seq=pl.col("__i") * 3 + 1, step=pl.col("__label")),
        _event(
            lf.filter(pl.col("__closes")),
            "workflow_completed",
            at="__ts",
            seq=pl.col("__i") * 3 + 2,
            step=None,
            detail=pl.col("__label"),
        ),
    ]


def log_events(rows: pl.LazyFrame, mapping: LogMapping) -> pl.LazyFrame:
    """The timeline events of checked log rows, in :data:`FOREIGN_SCHEMA`, ordered by case,
    time and the log's own order."""
    parts = (
        _state_events(rows, mapping) if mapping.is_state_log else _activity_events(rows, mapping)
    )
    return (
        pl.concat(parts, how="vertical_relaxed")
        .sort("workflow_id", "timestamp", "__seq")
        .select(_column(name, dtype, mapping) for name, dtype in FOREIGN_SCHEMA.items())
    )


def _column(name: str, dtype: pl.DataType, mapping: LogMapping) -> pl.Expr:
    """A timeline column of the events built above: given, the process name, or null."""
    if name in _GIVEN:
        return pl.col(name).cast(dtype)
    if name == "workflow_name":
        return pl.lit(mapping.process, dtype=pl.String).alias(name)
    return pl.lit(None, dtype=dtype).alias(name)
