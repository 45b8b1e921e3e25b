"""Business time: a calendar's working intervals and the clock over them, one implementation.

The analytics (SLA business time, over whole columns:
:mod:`protocol_lab.analytics.business_columns`) and the simulator (human waits on the working
calendar: :mod:`protocol_lab.sim.business_clock`) both ask :class:`BusinessTime`, so they give the
same answers on the same inputs.

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
from bisect import bisect_right
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Intervals:
    """The working intervals built so far: arrays for columns, lists for one instant at a time
    (``bisect`` on a list is what a single wait of the simulator can afford), and the instants
    they answer for (``low`` to ``high``: a year of margin on each side)."""

    first_year: int
    last_year: int
    low: float
    high: float
    starts: np.ndarray
    ends: np.ndarray
    cum: np.ndarray  # working seconds from the anchor to each interval's start
    starts_list: list[float]
    ends_list: list[float]
    cum_list: list[float]

    @property
    def total(self) -> float:
        """Working seconds from the anchor to the end of the last interval."""
        return self.cum_list[-1] + (self.ends_list[-1] - self.starts_list[-1])


class BusinessTime:
    """The working intervals of one calendar, built as needed, with the clock over them.

    Intervals are replaced, never changed: a reader takes the current :class:`_Intervals` and
    needs no lock; building more years takes one (polars runs the clock of several columns at
    once on one shared calendar).
    """

    def __init__(self, calendar: BusinessCalendar) -> None:
        self.calendar = calendar
        self._tz = ZoneInfo(calendar.timezone)
        self._open = time.fromisoformat(calendar.start)
        self._close = _clock_time(calendar.end)
        self._weekdays = frozenset(calendar.weekdays)
        self._intervals: _Intervals | None = None
        self._lock = threading.Lock()

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

    def _new_year(self, year: int) -> float:
        return datetime(year, 1, 1, tzinfo=self._tz).timestamp()

    def _built(self, first_year: int, last_year: int) -> _Intervals:
        """The intervals of ``first_year`` to ``last_year``, keeping the anchor of those built
        before (new years are added around them)."""
        old = self._intervals
        if old is None:
            starts, ends = self._year(first_year)
            s, e = np.asarray(starts), np.asarray(ends)
            lengths = e - s
            cum = np.concatenate(([0.0], np.cumsum(lengths)[:-1])) if starts else lengths
            built_first = built_last = first_year
        else:
            s, e, cum = old.starts, old.ends, old.cum
            built_first, built_last = old.first_year, old.last_year
        while built_first > first_year:
            built_first -= _CHUNK_YEARS
            starts, ends = self._year(built_first)
            before = np.asarray(ends) - np.asarray(starts)
            head = -np.cumsum(before[::-1])[::-1] if starts else before
            cum = np.concatenate((head + (cum[0] if len(cum) else 0.0), cum))
            s, e = np.concatenate((starts, s)), np.concatenate((ends, e))
        while built_last < last_year:
            built_last += _CHUNK_YEARS
            starts, ends = self._year(built_last)
            lengths = np.asarray(ends) - np.asarray(starts)
            base = cum[-1] + (e[-1] - s[-1]) if len(cum) else 0.0
            tail = base + np.concatenate(([0.0], np.cumsum(lengths)[:-1])) if starts else lengths
            cum = np.concatenate((cum, tail))
            s, e = np.concatenate((s, starts)), np.concatenate((e, ends))
        if not len(s):
            raise ValueError(
                f"the business calendar has no working hours in {built_first}-{built_last}"
                f" (weekdays {sorted(self._weekdays)}, {self.calendar.start}-{self.calendar.end})"
            )
        return _Intervals(
            first_year=built_first,
            last_year=built_last,
            low=self._new_year(built_first + 1),
            high=self._new_year(built_last),
            starts=s,
            ends=e,
            cum=cum,
            starts_list=s.tolist(),
            ends_list=e.tolist(),
            cum_list=cum.tolist(),
        )

    def _covering(self, low: float, high: float) -> _Intervals:
        """Intervals that answer for every instant from ``low`` to ``high``."""
        current = self._intervals
        if current is not None and current.low <= low and high <= current.high:
            return current
        with self._lock:
            first = datetime.fromtimestamp(low, tz=UTC).astimezone(self._tz).year - 1
            last = datetime.fromtimestamp(high, tz=UTC).astimezone(self._tz).year + 1
            current = self._intervals
            if current is not None:
                first, last = min(first, current.first_year), max(last, current.last_year)
            self._intervals = self._built(first, last)
            return self._intervals

    def _beyond(self, intervals: _Intervals, seconds: float) -> _Intervals:
        """Intervals whose working time reaches ``seconds`` from the anchor."""
        limit = intervals.last_year + _MAX_YEARS
        while intervals.total < seconds:
            if intervals.last_year >= limit:
                raise ValueError(f"the business calendar has no working time up to {limit}")
            with self._lock:
                self._intervals = self._built(
                    intervals.first_year, intervals.last_year + _CHUNK_YEARS
                )
                intervals = self._intervals
        return intervals

    # -- the clock ---------------------------------------------------------------------------

    def clock(self, t: np.ndarray) -> np.ndarray:
        """Working seconds from the anchor up to each instant of ``t`` (UTC epoch seconds;
        NaN stays NaN)."""
        t = np.asarray(t, dtype=np.float64)
        finite = t[np.isfinite(t)]
        if not finite.size:
            return np.full(t.shape, np.nan)
        iv = self._covering(float(finite.min()), float(finite.max()))
        starts, ends, cum = iv.starts, iv.ends, iv.cum
        i = np.searchsorted(starts, np.nan_to_num(t, nan=starts[0]), "right") - 1
        inside = i >= 0
        j = np.where(inside, i, 0)
        length = ends[j] - starts[j]
        value = np.where(inside, cum[j] + np.clip(t - starts[j], 0.0, length), cum[0])
        return np.where(np.isfinite(t), value, np.nan)

    def at(self, t: float) -> float:
        """Working seconds from the anchor up to the instant ``t`` (UTC epoch seconds)."""
        iv = self._covering(t, t)
        i = bisect_right(iv.starts_list, t) - 1
        if i < 0:
            return iv.cum_list[0]
        start = iv.starts_list[i]
        return iv.cum_list[i] + min(max(t - start, 0.0), iv.ends_list[i] - start)

    def between(self, start: float, end: float) -> float:
        """Working seconds between two instants."""
        return self.at(end) - self.at(start)

    def is_open(self, t: float) -> bool:
        """Whether the instant ``t`` falls in working hours."""
        iv = self._covering(t, t)
        i = bisect_right(iv.starts_list, t) - 1
        return i >= 0 and t < iv.ends_list[i]

    def add(self, t: float, seconds: float) -> float:
        """The instant at which ``seconds`` of working time after ``t`` are done."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"business seconds must be finite and >= 0, got {seconds}")
        target = self.at(t) + seconds
        iv = self._beyond(self._covering(t, t), target)
        j = bisect_right(iv.cum_list, target) - 1
        return iv.starts_list[j] + (target - iv.cum_list[j])


@functools.lru_cache(maxsize=64)
def business_time(calendar: BusinessCalendar) -> BusinessTime:
    """The shared :class:`BusinessTime` of a calendar (calendars are frozen, so cached)."""
    return BusinessTime(calendar)
