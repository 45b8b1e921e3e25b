"""Business-hours arithmetic for human waits, on the simulation clock.

A :class:`BusinessClock` turns a :class:`protocol_lab.domain.BusinessCalendar` (working hours in
a time zone, working weekdays, holidays) into open intervals on the simulation clock (seconds
since the scenario start) and answers "when are ``d`` business seconds done, starting at ``t``?"
in logarithmic time. Intervals are computed day by day in local time, so daylight-saving changes
are honoured; the clock extends itself when a wait runs past what it has computed.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from protocol_lab.domain.sla import BusinessCalendar

__all__ = ["BusinessClock"]

_DAY = timedelta(days=1)


class BusinessClock:
    """Open business intervals on the simulation clock, with ``add`` and ``is_open``."""

    def __init__(self, calendar: BusinessCalendar, *, origin: datetime, days: int = 60) -> None:
        if origin.tzinfo is None:
            origin = origin.replace(tzinfo=UTC)
        self.calendar = calendar
        self._origin = origin
        self._tz = ZoneInfo(calendar.timezone)
        self._open = time.fromisoformat(calendar.start)
        self._close = time.fromisoformat(calendar.end)
        self._holidays = frozenset(date.fromisoformat(d) for d in calendar.holidays)
        self._weekdays = frozenset(calendar.weekdays)
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._cum: list[float] = []
        self._next_day = origin.astimezone(self._tz).date() - _DAY
        self._extend(days + 2)
        if not self._starts:
            raise ValueError("the business calendar has no working hours")

    def _extend(self, days: int) -> None:
        origin = self._origin
        for _ in range(days):
            day = self._next_day
            self._next_day = day + _DAY
            if day.weekday() not in self._weekdays or day in self._holidays:
                continue
            start = datetime.combine(day, self._open, tzinfo=self._tz)
            end = datetime.combine(day, self._close, tzinfo=self._tz)
            if end <= start:
                continue
            s = (start - origin).total_seconds()
            e = (end - origin).total_seconds()
            total = self._cum[-1] + (self._ends[-1] - self._starts[-1]) if self._cum else 0.0
            self._starts.append(s)
            self._ends.append(e)
            self._cum.append(total)

    def _ensure(self, t: float) -> None:
        while not self._ends or self._ends[-1] <= t:
            self._extend(30)

    def is_open(self, t: float) -> bool:
        """Whether ``t`` (simulation seconds) falls in working hours."""
        self._ensure(t)
        i = bisect_right(self._starts, t) - 1
        return i >= 0 and t < self._ends[i]

    def position(self, t: float) -> float:
        """Business seconds elapsed from the first computed interval up to ``t``."""
        self._ensure(t)
        i = bisect_right(self._starts, t) - 1
        if i >= 0 and t < self._ends[i]:
            return self._cum[i] + (t - self._starts[i])
        return self._cum[i + 1] if i + 1 < len(self._cum) else self._cum[-1]

    def add(self, t: float, business_seconds: float) -> float:
        """The simulation time at which ``business_seconds`` of working time after ``t`` end."""
        target = self.position(t) + business_seconds
        while self._cum[-1] + (self._ends[-1] - self._starts[-1]) < target:
            self._extend(30)
        j = bisect_right(self._cum, target) - 1
        return self._starts[j] + (target - self._cum[j])

    def business_seconds(self, start: float, end: float) -> float:
        """Working seconds between two simulation times."""
        return self.position(end) - self.position(start)
