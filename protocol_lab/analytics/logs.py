"""Any ITSM event log in: :func:`read_log` behind :meth:`Timelines.from_log`.

Reads the rows (:mod:`~protocol_lab.analytics.log_readers`), reshapes them as the preset needs
(:mod:`~protocol_lab.analytics.presets`), checks each row against the mapping
(:class:`~protocol_lab.analytics.log_mapping.LogMapping`), turns the good ones into timeline
events in the foreign vocabulary (:mod:`~protocol_lab.analytics.log_events`) and the case
attributes into columns of :attr:`Timelines.workflows`.

A bad row (no case id, no activity or state, a time that cannot be read, an order that is not a
number) raises :class:`~protocol_lab.domain.TimelineSchemaError` naming the source row
(zero-based; a CSV's data row r is line r + 2, an XES row the r-th event) and the source column,
or, with ``on_error="set_aside"``, is left out and listed in :attr:`Timelines.rejected`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from protocol_lab.analytics._frames import ENGINE
from protocol_lab.analytics.log_events import log_events
from protocol_lab.analytics.log_mapping import LogMapping
from protocol_lab.analytics.log_readers import ROW, read_rows, source_kind
from protocol_lab.analytics.presets import PRESETS, Preset
from protocol_lab.analytics.presets import preset as find_preset
from protocol_lab.analytics.timelines import REJECTED_SCHEMA, OnError, Timelines
from protocol_lab.domain import TimelineSchemaError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PRESETS", "LogMapping", "case_attributes", "read_log", "resolve_mapping"]

_COLUMN_FIELDS: Final = (
    "case",
    "timestamp",
    "activity",
    "state",
    "lifecycle",
    "resource",
    "group",
    "trigger",
    "priority",
    "category",
    "opened",
    "order",
)
_REQUIRED_FIELDS: Final = ("case", "timestamp", "activity", "state")
_ROLE: Final = {
    "case": "__case",
    "lifecycle": "__lifecycle",
    "resource": "__resource",
    "group": "__group",
    "trigger": "__trigger",
}


def resolve_mapping(
    source: object,
    mapping: LogMapping | Mapping[str, Any] | None,
    preset: str | None,
) -> tuple[LogMapping, Preset | None, frozenset[str]]:
    """The mapping to read with, the preset it came from, and the fields the caller named
    (whose columns must be in the log; a preset's optional columns may be absent)."""
    chosen = find_preset(preset) if preset is not None else None
    if chosen is None and mapping is None:
        if source_kind(source) != "xes":
            raise TimelineSchemaError(
                f"give a preset ({', '.join(sorted(PRESETS))}) or a column mapping"
            )
        chosen = PRESETS["xes"]
    if isinstance(mapping, LogMapping):
        return mapping, chosen, frozenset(f.name for f in fields(LogMapping))
    if mapping is None:
        assert chosen is not None
        return chosen.mapping, chosen, frozenset()
    if chosen is None:
        return LogMapping.from_dict(mapping), None, frozenset(mapping)
    return chosen.mapping.updated(mapping), chosen, frozenset(mapping)


def _null_missing(rows: pl.LazyFrame, missing: tuple[str, ...]) -> pl.LazyFrame:
    schema = rows.collect_schema()
    text = [n for n, d in schema.items() if d == pl.String]
    if not text or not missing:
        return rows
    return rows.with_columns(
        pl.when(pl.col(n).str.strip_chars().is_in(list(missing)))
        .then(None)
        .otherwise(pl.col(n))
        .alias(n)
        for n in text
    )


def _present(
    rows: pl.LazyFrame, mapping: LogMapping, named: frozenset[str]
) -> tuple[pl.LazyFrame, pl.Schema]:
    """Check the mapped columns are there; a preset's absent optional ones read as null."""
    schema = rows.collect_schema()
    absent: list[str] = []
    for name in _COLUMN_FIELDS:
        column = getattr(mapping, name)
        if column is None or column in schema:
            continue
        if name in _REQUIRED_FIELDS or name in named:
            raise TimelineSchemaError(f"missing column {column!r} ({name})", field=column)
        absent.append(column)
    if absent:
        rows = rows.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in absent)
    return rows, rows.collect_schema()


def _text(column: str | None) -> pl.Expr:
    if column is None:
        return pl.lit(None, dtype=pl.String)
    return pl.col(column).cast(pl.String).str.strip_chars()


def _checked_rows(
    rows: pl.LazyFrame, schema: pl.Schema, mapping: LogMapping
) -> tuple[pl.LazyFrame, pl.Expr]:
    """The rows with their typed roles, and the expression naming a bad row's first problem."""
    label = mapping.label
    typed = [_text(getattr(mapping, name)).alias(role) for name, role in _ROLE.items()]
    typed.append(_text(label).alias("__label"))
    typed.append(mapping.time(mapping.timestamp, schema[mapping.timestamp]).alias("__ts"))
    opened = mapping.opened
    if opened is not None:
        typed.append(mapping.time(opened, schema[opened]).alias("__opened"))
    else:
        typed.append(pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("__opened"))
    order = mapping.order
    typed.append(
        (
            pl.col(order).cast(pl.Float64, strict=False)
            if order
            else pl.lit(None, dtype=pl.Float64)
        ).alias("__order")
    )
    lf = rows.with_columns(typed)
    layout = mapping.described_format()

    def unreadable(column: str) -> pl.Expr:
        return pl.format(
            "{}: cannot read '{}' as a time ({})",
            pl.lit(column),
            pl.col(column).cast(pl.String),
            pl.lit(layout),
        )

    checks: list[tuple[pl.Expr, pl.Expr]] = [
        (
            pl.col("__case").is_null() | (pl.col("__case") == ""),
            pl.lit(f"{mapping.case}: is missing"),
        ),
        (pl.col("__label").is_null() | (pl.col("__label") == ""), pl.lit(f"{label}: is missing")),
    ]
    if opened is not None:
        checks.append(
            (pl.col(opened).is_not_null() & pl.col("__opened").is_null(), unreadable(opened))
        )
    checks.append((pl.col(mapping.timestamp).is_null(), pl.lit(f"{mapping.timestamp}: is missing")))
    checks.append((pl.col("__ts").is_null(), unreadable(mapping.timestamp)))
    if order is not None:
        checks.append(
            (
                pl.col(order).is_not_null() & pl.col("__order").is_null(),
                pl.format("{}: '{}' is not a number", pl.lit(order), pl.col(order).cast(pl.String)),
            )
        )
    problem: pl.Expr = pl.lit(None, dtype=pl.String)
    for cond, message in reversed(checks):
        problem = pl.when(cond).then(message).otherwise(problem)
    return lf, problem


def _attribute_columns(schema: pl.Schema, mapping: LogMapping) -> dict[str, str]:
    """Case attribute columns of the log, by the name they take in the workflows frame."""
    named: dict[str, str] = {}
    for role in ("priority", "category"):
        column = getattr(mapping, role)
        if column is not None and column in schema:
            named[role] = column
    prefix = mapping.attribute_prefix
    if prefix:
        for column in schema.names():
            if column.startswith(prefix) and column != mapping.case and column != ROW:
                named.setdefault(column[len(prefix) :], column)
    for column in mapping.attributes:
        if column in schema:
            named.setdefault(column, column)
    return {k: v for k, v in named.items() if k != "workflow_id"}


def _narrowed(frame: pl.DataFrame, mapping: LogMapping) -> pl.DataFrame:
    """Text attribute columns as whole numbers, numbers, booleans or times when every value
    reads so (``made_sla``, ``reassignment_count``, ``resolved_at``, ...)."""
    out = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if name == "workflow_id" or dtype != pl.String:
            out.append(column)
            continue
        given = frame[name].drop_nulls()
        if given.len() == 0:
            out.append(column)
            continue
        text = column.str.strip_chars()
        candidates = [
            text.str.to_integer(strict=False),
            text.cast(pl.Float64, strict=False),
            text.str.to_lowercase().replace_strict(
                {"true": True, "false": False}, default=None, return_dtype=pl.Boolean
            ),
            mapping.time(name, pl.String()),
        ]
        chosen = column
        for candidate in candidates:  # the first that reads every given value
            if frame.select(candidate.drop_nulls().len()).item() == given.len():
                chosen = candidate
                break
        out.append(chosen.alias(name))
    return frame.select(out)


def case_attributes(rows: pl.LazyFrame, mapping: LogMapping) -> pl.DataFrame | None:
    """One row per case with its attributes (the last value the case gives each), or None;
    ``rows`` are in case and time order."""
    named = _attribute_columns(rows.collect_schema(), mapping)
    if not named:
        return None
    frame = (
        rows.group_by("__case", maintain_order=True)
        .agg(pl.col(column).drop_nulls().last().alias(name) for name, column in named.items())
        .rename({"__case": "workflow_id"})
        .collect(engine=ENGINE)
    )
    return _narrowed(frame, mapping)


def read_log(
    source: str | Path | pl.DataFrame | pl.LazyFrame | pd.DataFrame,
    *,
    mapping: LogMapping | Mapping[str, Any] | None = None,
    preset: str | None = None,
    on_error: OnError = "raise",
) -> Timelines:
    """Timelines of a foreign log (see :meth:`Timelines.from_log` and the module docstring)."""
    resolved, chosen, named = resolve_mapping(source, mapping, preset)
    rows = _null_missing(read_rows(source), resolved.missing)
    if chosen is not None and chosen.prepare is not None:
        rows = chosen.prepare(rows, resolved)
    rows, schema = _present(rows, resolved, named)
    lf, problem = _checked_rows(rows, schema, resolved)
    # one pass over the source: the checked rows are split into bad and good afterwards
    flagged = lf.with_columns(problem.alias("__problem")).collect(engine=ENGINE)
    parts = pl.col("__problem").str.split_exact(": ", 1)
    bad = (
        flagged.filter(pl.col("__problem").is_not_null())
        .select(
            pl.col(ROW).cast(pl.Int64).alias("row"),
            parts.struct.field("field_0").alias("field"),
            parts.struct.field("field_1").alias("error"),
        )
        .sort("row")
    )
    if bad.height and on_error == "raise":
        first = bad.row(0, named=True)
        raise TimelineSchemaError(first["error"], row=first["row"], field=first["field"])
    good = (
        flagged.filter(pl.col("__problem").is_null())
        .sort("__case", "__ts", "__order", ROW, nulls_last=True)
        .lazy()
    )
    events = log_events(good, resolved).collect(engine=ENGINE)
    timelines = Timelines.from_frame(
        events, case_attributes(good, resolved), check=False, vocabulary="foreign"
    )
    rejected = bad.cast(REJECTED_SCHEMA) if bad.height else REJECTED_SCHEMA.to_frame()
    return replace(timelines, rejected=rejected)
