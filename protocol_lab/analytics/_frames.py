"""Small shared helpers: the frame type variable, grouping keys, same-kind returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal, TypeVar

import polars as pl

__all__ = [
    "ENGINE",
    "GROUPABLE",
    "By",
    "FrameT",
    "as_lazy",
    "case_codes",
    "group_keys",
    "same_kind",
    "seconds",
]

ENGINE: Final[Literal["in-memory"]] = "in-memory"
"""The polars engine the analyses are collected with.

Their plans are sorts by (workflow, time), shifts and group-bys over whole cases: the in-memory
engine runs them with about half the CPU of the streaming engine (polars' default since 2.0),
and only it skips the work of sorting input that is already in case order (see
:meth:`Timelines.cache`). Pass it to ``collect(engine=ENGINE)`` when collecting a lazy result.
"""

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)
"""A polars frame: a DataFrame in gives a DataFrame out, a LazyFrame gives a LazyFrame."""

By = str | Sequence[str] | None
"""Grouping: one column, several, or None for the whole frame."""

GROUPABLE = ("task_queue", "workflow_name", "trigger_type", "priority")
"""The usual grouping columns of the per-workflow frame."""


def group_keys(by: By) -> list[str]:
    """``by`` as a list of column names."""
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    return list(by)


def as_lazy(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """The frame as a LazyFrame (no computation)."""
    return frame.lazy()


def same_kind(template: FrameT, result: pl.LazyFrame) -> FrameT:
    """``result`` collected if ``template`` was eager, left lazy otherwise."""
    if isinstance(template, pl.DataFrame):
        return result.collect(engine=ENGINE)
    return result


def seconds(delta: pl.Expr) -> pl.Expr:
    """A Duration expression as float seconds."""
    return delta.dt.total_microseconds().cast(pl.Float64) / 1e6


def case_codes(column: str) -> pl.Expr:
    """Dense integer codes of a case column (in order of first appearance).

    Sorting and grouping on these is much cheaper than on the workflow id strings. The codes
    come from a Categorical with its own categories, so the ids do not pile up in polars'
    global string pool.
    """
    return pl.col(column).cast(pl.String).cast(pl.Categorical(pl.Categories.random())).to_physical()
