"""Business time: a calendar's working intervals and the clock over them, one implementation.

The analytics (SLA business time, over whole columns: :mod:`protocol_lab.analytics.calendar`) and
the simulator (human waits on the working calendar: :mod:`protocol_lab.sim.calendar`) both ask
:class:`BusinessTime`, so they give the same answers on the same inputs.

A working interval is one working day's opening hours, from ``start`` to ``end`` in the
calendar's local time (``end: "24:00"`` is the next midnight), converted to UTC instants, so
daylight-saving changes are honoured. A day is not working when its weekday is not among
``weekdays``, when it is among ``holidays``, or when the ``holidays`` package lists it for the
calendar's ``country`` (and ``subdivision``). Intervals are built a year at a time around the
instants asked about.

The clock ``B(t)`` counts working seconds from a fixed anchor (the first interval built), so the
business time between two instants is ``B(end) - B(start)``; ``add`` inverts it. Both are a
binary search over the intervals: vectorised for columns, logarithmic for one wait.
"""

from __future__ import annotations

import functools
import math
import threading
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np

from protocol_lab.domain.sla import BusinessCalendar

__all__ = ["BusinessTime", "business_time", "calendar_holidays"]

_DAY: Final = timedelta(days=1)
_MIDNIGHT: Final = time(0, 0)
# years built at once, and how far a single wait may run before the calendar is declared empty
_CHUNK_YEARS: Final = 1
_MAX_YEARS: Final = 400


def _clock_time(text: str) -> time | None:
    """``HH:MM`` as a time of day; ``24:00`` as None (the next midnight)."""
    if text == "24:00":
        return None
    return time.fromisoformat(text)


@functools.cache
def _country_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    import holidays

    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))


def calendar_holidays(calendar: BusinessCalendar, year: int) -> frozenset[date]:
    """The holidays of ``calendar`` in ``year``: its own dates and its country's."""
    own = {date.fromisoformat(d) for d in calendar.holidays}
    listed = (
        _country_holidays(calendar.country, calendar.subdivision, year)
        if calendar.country
        else frozenset()
    )
    return frozenset({d for d in own if d.year == year} | listed)


class BusinessTime:
    """The working intervals of one calendar, built as needed, with the clock over them."""

    def __init__(self, calendar: BusinessCalendar) -> None:
        self.calendar = calendar
        self._tz = ZoneInfo(calendar.timezone)
        self._open = time.fromisoformat(calendar.start)
        self._close = _clock_time(calendar.end)
        self._weekdays = frozenset(calendar.weekdays)
        self._first_year: int | None = None
        self._last_year: int | None = None
        self._starts = np.empty(0)
        self._ends = np.empty(0)
        self._cum = np.empty(0)  # working seconds from the anchor to each interval's start
        # polars runs the clock of several columns at once on one shared calendar: building
        # years and reading the arrays take turns (the arrays are replaced, never changed)
        self._lock = threading.RLock()

    # -- building ---------------------------------------------------------------------------

    def _year(self, year: int) -> tuple[list[float], list[float]]:
        """Working intervals (UTC epoch seconds) of the local days of ``year``."""
        off = calendar_holidays(self.calendar, year)
        starts: list[float] = []
        ends: list[float] = []
        day, last = date(year, 1, 1), date(year, 12, 31)
        while day <= last:
            if day.weekday() in self._weekdays and day not in off:
                begin = datetime.combine(day, self._open, tzinfo=self._tz)
                end = (
                    datetime.combine(day + _DAY, _MIDNIGHT, tzinfo=self._tz)
                    if self._close is None
                    else datetime.combine(day, self._close, tzinfo=self._tz)
                )
                if end > begin:
                    starts.append(begin.timestamp())
                    ends.append(end.timestamp())
            day += _DAY
        return starts, ends

    def _cover(self, first_year: int, last_year: int) -> None:
        """Build intervals so that the years ``first_year`` to ``last_year`` are covered."""
        if self._first_year is None or self._last_year is None:
            starts, ends = self._year(first_year)
            self._starts, self._ends = np.asarray(starts), np.asarray(ends)
            lengths = self._ends - self._starts
            self._cum = np.concatenate(([0.0], np.cumsum(lengths)[:-1])) if starts else lengths
            self._first_year = self._last_year = first_year
        while self._first_year > first_year:
            year = self._first_year - _CHUNK_YEARS
            starts, ends = self._year(year)
            before = np.asarray(ends) - np.asarray(starts)
            head = -np.cumsum(before[::-1])[::-1] if starts else before
            self._cum = np.concatenate(
                (head + (self._cum[0] if len(self._cum) else 0.0), self._cum)
            )
            self._starts = np.concatenate((starts, self._starts))
            self._ends = np.concatenate((ends, self._ends))
            self._first_year = year
        while self._last_year < last_year:
            year = self._last_year + _CHUNK_YEARS
            starts, ends = self._year(year)
            lengths = np.asarray(ends) - np.asarray(starts)
            base = self._cum[-1] + (self._ends[-1] - self._starts[-1]) if len(self._cum) else 0.0
            tail = base + np.concatenate(([0.0], np.cumsum(lengths)[:-1])) if starts else lengths
            self._cum = np.concatenate((self._cum, tail))
            self._starts = np.concatenate((self._starts, starts))
            self._ends = np.concatenate((self._ends, ends))
            self._last_year = year

    def _cover_instants(self, low: float, high: float) -> None:
        first = datetime.fromtimestamp(low, tz=UTC).astimezone(self._tz).year - 1
        last = datetime.fromtimestamp(high, tz=UTC).astimezone(self._tz).year + 1
        self._cover(first, last)
        if not len(self._starts):
            raise ValueError(
                f"the business calendar has no working hours in {first}-{last}"
                f" (weekdays {sorted(self._weekdays)}, {self.calendar.start}-{self.calendar.end})"
            )

    # -- the clock ---------------------------------------------------------------------------

    def clock(self, t: np.ndarray) -> np.ndarray:
        """Working seconds from the anchor up to each instant of ``t`` (UTC epoch seconds;
        NaN stays NaN)."""
        t = np.asarray(t, dtype=np.float64)
        finite = t[np.isfinite(t)]
        if not finite.size:
            return np.full(t.shape, np.nan)
        with self._lock:
            self._cover_instants(float(finite.min()), float(finite.max()))
            starts, ends, cum = self._starts, self._ends, self._cum
        i = np.searchsorted(starts, np.nan_to_num(t, nan=starts[0]), "right") - 1
        inside = i >= 0
        j = np.where(inside, i, 0)
        length = ends[j] - starts[j]
        value = np.where(inside, cum[j] + np.clip(t - starts[j], 0.0, length), cum[0])
        return np.where(np.isfinite(t), value, np.nan)

    def at(self, t: float) -> float:
        """Working seconds from the anchor up to the instant ``t`` (UTC epoch seconds)."""
        return float(self.clock(np.asarray([t]))[0])

    def between(self, start: float, end: float) -> float:
        """Working seconds between two instants."""
        return self.at(end) - self.at(start)

    def is_open(self, t: float) -> bool:
        """Whether the instant ``t`` falls in working hours."""
        with self._lock:
            self._cover_instants(t, t)
            i = int(np.searchsorted(self._starts, t, "right")) - 1
            return i >= 0 and t < self._ends[i]

    def add(self, t: float, seconds: float) -> float:
        """The instant at which ``seconds`` of working time after ``t`` are done."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"business seconds must be finite and >= 0, got {seconds}")
        with self._lock:
            target = self.at(t) + seconds
            assert self._first_year is not None
            assert self._last_year is not None
            limit = self._last_year + _MAX_YEARS
            while self._cum[-1] + (self._ends[-1] - self._starts[-1]) < target:
                if self._last_year >= limit:
                    raise ValueError(f"{seconds} business seconds run past {limit}")
                self._cover(self._first_year, self._last_year + _CHUNK_YEARS)
            j = int(np.searchsorted(self._cum, target, "right")) - 1
            return float(self._starts[j] + (target - self._cum[j]))


@functools.lru_cache(maxsize=64)
def business_time(calendar: BusinessCalendar) -> BusinessTime:
    """The shared :class:`BusinessTime` of a calendar (calendars are frozen, so cached)."""
    return BusinessTime(calendar)
