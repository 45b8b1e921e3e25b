"""Business time as polars expressions: working hours, weekdays, holidays, in a time zone.

A *business clock* ``B(t)`` counts the working seconds from a fixed origin up to ``t``, so the
business time between two instants is ``B(end) - B(start)``. ``B`` is
:meth:`protocol_lab.domain.business_time.BusinessTime.clock`, the arithmetic the simulator uses
too, applied to whole columns at once (a binary search over the calendar's working intervals),
lazily on any number of rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from protocol_lab.domain import BusinessCalendar

__all__ = ["business_clock", "business_seconds", "working_day_seconds"]


def _hhmm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def working_day_seconds(calendar: BusinessCalendar) -> float:
    """Length of one working day in seconds (``end: "24:00"`` closes at midnight)."""
    return float(max(_hhmm(calendar.end) - _hhmm(calendar.start), 0))


def business_clock(t: pl.Expr, calendar: BusinessCalendar) -> pl.Expr:
    """Working seconds from a fixed origin up to ``t`` (a tz-aware Datetime expression)."""
    # imported here: it loads numpy, pydantic and YAML, which only business time needs
    from protocol_lab.domain.business_time import business_time

    clock = business_time(calendar).clock

    def batch(values: pl.Series) -> pl.Series:
        epoch = values.cast(pl.Float64).to_numpy() / 1e6
        return pl.Series(values.name, clock(epoch), dtype=pl.Float64, nan_to_null=True)

    return t.dt.epoch("us").map_batches(batch, return_dtype=pl.Float64)


def business_seconds(start: pl.Expr, end: pl.Expr, calendar: BusinessCalendar) -> pl.Expr:
    """Working seconds between ``start`` and ``end`` under ``calendar`` (null if either is)."""
    return business_clock(end, calendar) - business_clock(start, calendar)
