"""Where each case's events are in an in-memory events frame: found once, reused by the analyses.

Grouping a million events by workflow id means hashing a million strings; the per-workflow frame,
the directly-follows graph and the variants each need the events case after case, in time order.
:meth:`Timelines.cache` finds that order once (:func:`find_case_order`, one hash pass that also
yields the per-workflow frame) and files it with the cached events frame (:func:`remember`).
An analysis given that very frame object (:func:`known_order`) gathers its few columns in case
order by row number instead of hashing or sorting the ids again. Any other frame, including one
derived from the cached frame, is not known and takes the general path, so a known order can never
be stale: polars frames are immutable and the order is filed against the object itself.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import polars as pl

from protocol_lab.analytics._frames import ENGINE

__all__ = [
    "CaseOrder",
    "find_case_order",
    "in_case_order",
    "known_order",
    "per_case_columns",
    "remember",
]

_STARTED: Final = "workflow_started"
_TERMINAL: Final = ("workflow_completed", "workflow_failed", "workflow_cancelled")


@dataclass(frozen=True)
class CaseOrder:
    """The events of a frame case after case.

    ``rows``: the frame's row numbers with the cases in order of first appearance and each
    case's rows in time order (rows at the same time in frame order), i.e. the order of a stable
    sort by time and then a stable sort by case. ``case``: the case number (0, 1, ...) of each
    of those rows, hence sorted. ``timestamp``: the timestamps of those rows. ``ids``: each
    case's id; ``first_rows``: each case's first row in the frame; ``lengths``: each case's
    number of events. ``column``: the case column's name. The default activity label of those
    rows (``steps.label_codes``) is computed by the first analysis that asks for it
    (:meth:`default_labels`) and kept: the directly-follows graph and the variants share it,
    and a cached frame never analysed by activity never pays for it.
    """

    column: str
    rows: pl.Series
    case: pl.Series
    timestamp: pl.Series
    ids: pl.Series
    first_rows: pl.Series
    lengths: pl.Series
    _labels: list[pl.Series] = field(default_factory=list, compare=False, repr=False)

    @property
    def n_cases(self) -> int:
        """The number of cases."""
        return self.ids.len()

    def default_labels(self, events: pl.LazyFrame, label: pl.Expr) -> pl.Series:
        """The rows' default activity labels (``label``, the default label expression of
        ``events``, the frame this order was found in) in case order; computed once."""
        if not self._labels:
            self._labels.append(
                events.select(label.gather(self.rows)).collect(engine=ENGINE).to_series()
            )
        return self._labels[0]


def find_case_order(events: pl.DataFrame, *, column: str = "workflow_id") -> CaseOrder:
    """The case order of ``events`` (see :class:`CaseOrder`): one group-by on the case column.

    A group keeps its rows in frame order, so for a frame in time order (a log usually is) the
    groups are the order; otherwise each case's rows are sorted by time afterwards.
    """
    groups = (
        events.lazy()
        .select(column)
        .with_row_index("__row")
        .group_by(column, maintain_order=True)
        .agg(pl.col("__row"))
        .with_columns(pl.col("__row").list.first().alias("__first"))
        .collect(engine=ENGINE)
    )
    lengths = groups["__row"].list.len()
    exploded = groups.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("__case"), "__row"
    ).explode("__row")
    rows, case = exploded["__row"], exploded["__case"].set_sorted()
    # one chunk: gathering by row number from a file's row groups costs several times as much
    ts = events["timestamp"].rechunk()
    if not (ts.null_count() == 0 and ts.is_sorted()):
        rows = (
            pl.DataFrame({"case": case, "ts": ts.gather(rows), "row": rows})
            .sort("case", "ts", maintain_order=True)
            .get_column("row")
        )
    return CaseOrder(
        column=column,
        rows=rows.rename("__row"),
        case=case,
        timestamp=ts.gather(rows),
        ids=groups[column],
        first_rows=groups["__first"],
        lengths=lengths.cast(pl.UInt32),
    )


def per_case_columns(events: pl.DataFrame, order: CaseOrder) -> pl.DataFrame:
    """One row per case, in case order: the aggregates the per-workflow frame is made from.

    Columns: the case column, ``workflow_name``, ``task_queue``, ``trigger_type`` (the case's
    first row's), ``started_at`` (its first ``workflow_started``, else its first event),
    ``last_event_at``, ``__last_event`` (the event at the last time, the first such in the
    frame), ``n_events``, ``completed_at`` (its last terminal event's time), ``__terminal`` and
    ``end_detail`` (that terminal event and its detail, the first such in the frame). The same as
    a group-by with ``min``/``max``/``arg_max``, computed on whole columns in case order; the
    events' timestamps must have no nulls.
    """
    ordered = pl.DataFrame(
        [events["event"].rechunk().gather(order.rows), order.case, order.rows, order.timestamp]
    )
    case = pl.col("__case")
    new_case = case.ne_missing(case.shift(1))
    last_of_case = case.ne_missing(case.shift(-1))
    # the first row at a new time: the last such row of a case is the first at its last time
    new_time = new_case | pl.col("timestamp").ne_missing(pl.col("timestamp").shift(1))
    ends = (order.lengths.cum_sum() - 1).cast(pl.get_index_type())
    starts = (ends + 1 - order.lengths).cast(pl.get_index_type())
    # found by position, not by filtering the whole frame twice: a case's first row is at a
    # new time, so the last such position up to its end is in the case
    at_last = ordered.select(
        pl.when(new_time).then(pl.int_range(pl.len(), dtype=pl.get_index_type())).forward_fill()
    ).to_series()
    started = ordered.filter(pl.col("event") == _STARTED).filter(new_case)
    closed = ordered.filter(pl.col("event").is_in(_TERMINAL)).filter(new_time).filter(last_of_case)
    n = order.n_cases
    # times and events come from the few rows found, already in one chunk; the other columns
    # are filtered, not gathered: a gather by row number from the file's row groups costs more.
    # The cases' first rows are in frame order (cases are in order of first appearance).
    firsts = events.select("workflow_name", "task_queue", "trigger_type").filter(
        _marked(events.height, order.first_rows)
    )
    closed_in_frame_order = closed.sort("__row")
    end_detail = events["detail"].filter(_marked(events.height, closed_in_frame_order["__row"]))
    return pl.DataFrame(
        [
            order.ids,
            *firsts,
            _scattered(n, started["__case"], started["timestamp"])
            .fill_null(order.timestamp.gather(starts))
            .alias("started_at"),
            order.timestamp.gather(ends).alias("last_event_at"),
            ordered["event"].gather(at_last.gather(ends)).alias("__last_event"),
            order.lengths.alias("n_events"),
            _scattered(n, closed["__case"], closed["timestamp"]).alias("completed_at"),
            _scattered(n, closed["__case"], closed["event"]).alias("__terminal"),
            _scattered(n, closed_in_frame_order["__case"], end_detail).alias("end_detail"),
        ]
    )


def _marked(n: int, rows: pl.Series) -> pl.Series:
    """A mask of ``n`` rows, true at ``rows``."""
    return pl.repeat(False, n, eager=True).scatter(rows, True)


def _scattered(n: int, at: pl.Series, values: pl.Series) -> pl.Series:
    """A column of ``n`` nulls with ``values`` put at positions ``at``."""
    return pl.repeat(None, n, dtype=values.dtype, eager=True).scatter(at, values)


_KNOWN: dict[int, tuple[weakref.ref[pl.LazyFrame], CaseOrder]] = {}


def remember(frame: pl.LazyFrame, order: CaseOrder) -> None:
    """File ``order`` as the case order of ``frame`` (this object, as long as it lives).

    An order with a missing case id is not filed: the analyses leave such rows out of every
    case, which the order's case numbers would not.
    """
    if order.ids.null_count():
        return
    key = id(frame)

    def forget(_: weakref.ref[pl.LazyFrame]) -> None:
        _KNOWN.pop(key, None)

    _KNOWN[key] = (weakref.ref(frame, forget), order)


def known_order(frame: pl.DataFrame | pl.LazyFrame, *, column: str) -> CaseOrder | None:
    """The case order filed for ``frame`` by case column ``column``, if any."""
    entry = _KNOWN.get(id(frame))
    if entry is None or entry[0]() is not frame or entry[1].column != column:
        return None
    return entry[1]


def in_case_order(
    events: pl.LazyFrame,
    order: CaseOrder,
    label: pl.Expr,
    *,
    default_label: bool,
    name: str,
    also: Sequence[pl.Expr] = (),
) -> pl.LazyFrame:
    """``events`` (whose case order is ``order``) in case order: ``__case``, ``timestamp``,
    the label as ``name`` and the ``also`` columns, gathered by row number. When
    ``default_label`` (``label`` is the default activity label), the order's kept labels
    (:meth:`CaseOrder.default_labels`), else ``label`` gathered."""
    known = [order.case, order.timestamp]
    gathered = [column.gather(order.rows) for column in also]
    if default_label:
        known.append(order.default_labels(events, label).alias(name))
        return events.select(gathered).with_columns(known) if gathered else pl.LazyFrame(known)
    return events.select(label.gather(order.rows).alias(name), *gathered).with_columns(known)
