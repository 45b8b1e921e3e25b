"""Step (state) intervals with their open ends, and what they mean for an SLA clock.

A step interval runs from an ``activity_started`` to the next event of the same case and step
that ends it (``activity_completed``, ``activity_failed`` or ``signal_received``); one that
nothing ended yet is open (``end`` null). An ending event that no start opened (an activity
log with ``complete`` events only, as many XES logs are) is an instant: it starts and ends at
its own time. For a state log read with
:meth:`Timelines.from_log` the intervals are the time in each state; for protocol-lab's own
timelines, the activities and signal waits. :func:`~protocol_lab.analytics.steps.step_durations`
gives the ended ones with their waits; the SLA clock also needs the open one a case sits in.

The SLA clock of a case runs from its start while the case is in neither a *pausing* state
(waiting for the caller, a vendor, on hold) nor a *stopping* one (resolved), and stops for good
when the case enters a stopping state for the last time (a resolved case that was reopened
paused while it was resolved), else when the case closes. State names are compared without
case and surrounding spaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import polars as pl

from protocol_lab.analytics._frames import FrameT, same_kind

__all__ = [
    "DEFAULT_PAUSING",
    "DEFAULT_STOPPING",
    "clock_stops",
    "is_state",
    "pause_intervals",
    "step_intervals",
]

DEFAULT_PAUSING: Final = (
    "Awaiting User Info",
    "Awaiting Vendor",
    "Awaiting Problem",
    "Awaiting Change",
    "Awaiting Evidence",
    "On Hold",
    "Pending",
    "Waiting for customer",
)
"""States that pause an SLA clock unless told otherwise (ServiceNow's awaiting and on-hold
states, Jira Service Management's waiting for customer)."""

DEFAULT_STOPPING: Final = ("Resolved", "Closed", "Done", "Cancelled", "Canceled")
"""States that stop an SLA clock (and, left for another state, make a reopen)."""

_ENDS: Final = ("activity_completed", "activity_failed", "signal_received")


def is_state(column: str | pl.Expr, names: Sequence[str]) -> pl.Expr:
    """Whether ``column`` is one of ``names``, without case and surrounding spaces."""
    col = pl.col(column) if isinstance(column, str) else column
    wanted = sorted({n.strip().lower() for n in names})
    return col.cast(pl.String).str.strip_chars().str.to_lowercase().is_in(wanted).fill_null(False)


def step_intervals(events: FrameT) -> FrameT:
    """One row per step interval, ended or open, in case and time order.

    Columns: ``workflow_id``, ``step``, ``task_queue`` (the group), ``actor``, ``start``,
    ``end`` (null while open; equal to ``start`` for an ending event no start opened).
    """
    event = pl.col("event").cast(pl.String)
    lf = (
        events.lazy()
        .filter(pl.col("step").is_not_null() & event.is_in(["activity_started", *_ENDS]))
        .select(
            "workflow_id",
            "step",
            pl.col("task_queue").cast(pl.String),
            "actor",
            "timestamp",
            event.alias("__event"),
        )
        .sort("workflow_id", "timestamp", maintain_order=True)
        .with_columns(
            pl.col("__event").shift(-1).over("workflow_id", "step").alias("__next"),
            pl.col("timestamp").shift(-1).over("workflow_id", "step").alias("__next_at"),
            pl.col("__event").shift(1).over("workflow_id", "step").alias("__before"),
        )
        .with_columns(pl.col("__event").is_in(list(_ENDS)).alias("__ends"))
        .filter(
            (pl.col("__event") == "activity_started")
            | (pl.col("__ends") & pl.col("__before").ne_missing("activity_started"))
        )
        .select(
            "workflow_id",
            "step",
            "task_queue",
            "actor",
            pl.col("timestamp").alias("start"),
            pl.when(pl.col("__ends"))
            .then(pl.col("timestamp"))
            .when(pl.col("__next").is_in(list(_ENDS)))
            .then(pl.col("__next_at"))
            .alias("end"),
        )
    )
    return same_kind(events, lf)


def workflow_pauses(events: FrameT) -> FrameT:
    """The intervals a workflow was paused (``workflow_paused`` until the next
    ``workflow_resumed``): ``workflow_id``, ``start``, ``end`` (null while still paused)."""
    event = pl.col("event").cast(pl.String)
    lf = (
        events.lazy()
        .filter(event.is_in(["workflow_paused", "workflow_resumed"]))
        .select("workflow_id", "timestamp", event.alias("__event"))
        .sort("workflow_id", "timestamp", maintain_order=True)
        .with_columns(pl.col("timestamp").shift(-1).over("workflow_id").alias("end"))
        .filter(pl.col("__event") == "workflow_paused")
        .select("workflow_id", pl.col("timestamp").alias("start"), "end")
    )
    return same_kind(events, lf)


def clock_stops(intervals: FrameT, stopping: Sequence[str] = DEFAULT_STOPPING) -> FrameT:
    """When each case entered a stopping state for the last time: ``workflow_id``,
    ``stopped_at`` (null when it never did, or left it again and is elsewhere now), and
    ``reopens`` (how often it left a stopping state for another state)."""
    stop = is_state("step", stopping)
    start = pl.col("start")
    last_running = start.filter(~stop).max()
    lf = (
        intervals.lazy()
        .sort("workflow_id", "start", maintain_order=True)
        .group_by("workflow_id")
        .agg(
            start.filter(stop & (start >= last_running.fill_null(start.min())))
            .min()
            .alias("stopped_at"),
            (stop.shift(1) & ~stop).sum().cast(pl.UInt32).alias("reopens"),
        )
    )
    return same_kind(intervals, lf)


def pause_intervals(
    intervals: FrameT,
    pausing: Sequence[str] = DEFAULT_PAUSING,
    stopping: Sequence[str] = DEFAULT_STOPPING,
) -> FrameT:
    """The intervals during which the SLA clock stands still: ``workflow_id``, ``start``,
    ``end`` (null while open): those in a pausing or a stopping state (the ones in a stopping
    state before the last count as paused; from the last on the clock has stopped anyway)."""
    keep = is_state("step", [*pausing, *stopping])
    return same_kind(intervals, intervals.lazy().filter(keep).select("workflow_id", "start", "end"))
