"""Business time as polars expressions: working hours, weekdays, holidays, in a time zone.

The idea: a *business clock* ``B(t)`` counts the working seconds from a fixed Monday up to ``t``
(in the calendar's local wall-clock time), so the business time between two instants is
``B(end) - B(start)``. ``B`` is pure arithmetic on columns (whole weeks, a weekday lookup and
one comparison per holiday), so it runs vectorised and lazily on any number of rows.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from protocol_lab.domain import BusinessCalendar

__all__ = ["business_clock", "business_seconds", "working_day_seconds"]

_MONDAY_OFFSET = 3  # 1970-01-01 was a Thursday: day + 3 counts from Monday 1969-12-29


def _hhmm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def working_day_seconds(calendar: BusinessCalendar) -> float:
    """Length of one working day in seconds."""
    return float(max(_hhmm(calendar.end) - _hhmm(calendar.start), 0))


def business_clock(t: pl.Expr, calendar: BusinessCalendar) -> pl.Expr:
    """Working seconds from a fixed origin up to ``t`` (a tz-aware Datetime expression)."""
    local = t.dt.convert_time_zone(calendar.timezone)
    n = local.dt.date().cast(pl.Int32) + _MONDAY_OFFSET
    weekday = n.mod(7)
    weekdays = sorted(set(calendar.weekdays))
    per_week = len(weekdays)
    before_in_week = {r: sum(1 for d in weekdays if d < r) for r in range(7)}
    holidays = sorted(
        {
            (date.fromisoformat(h) - date(1970, 1, 1)).days + _MONDAY_OFFSET
            for h in calendar.holidays
        }
    )
    working_holidays = [h for h in holidays if h % 7 in weekdays]
    holidays_before: pl.Expr = pl.lit(0, dtype=pl.Int32)
    if working_holidays:
        holidays_before = pl.sum_horizontal([(n > h).cast(pl.Int32) for h in working_holidays])
    full_days = (
        n.floordiv(7) * per_week
        + weekday.replace_strict(before_in_week, return_dtype=pl.Int32)
        - holidays_before
    )
    is_working = weekday.is_in(weekdays)
    if holidays:
        is_working = is_working & n.is_in(holidays).not_()
    start, day_len = _hhmm(calendar.start), working_day_seconds(calendar)
    tod = (
        local.dt.hour().cast(pl.Float64) * 3600
        + local.dt.minute().cast(pl.Float64) * 60
        + local.dt.second().cast(pl.Float64)
        + local.dt.microsecond().cast(pl.Float64) / 1e6
    )
    in_day = pl.when(is_working).then((tod - start).clip(0.0, day_len)).otherwise(0.0)
    return full_days.cast(pl.Float64) * day_len + in_day


def business_seconds(start: pl.Expr, end: pl.Expr, calendar: BusinessCalendar) -> pl.Expr:
    """Working seconds between ``start`` and ``end`` under ``calendar`` (null if either is)."""
    return business_clock(end, calendar) - business_clock(start, calendar)
