"""Business-hours arithmetic for human waits, on the simulation clock.

A :class:`BusinessClock` puts a :class:`protocol_lab.domain.BusinessCalendar` on the simulation
clock (seconds since the scenario start) and answers "when are ``d`` business seconds done,
starting at ``t``?" through :class:`protocol_lab.domain.business_time.BusinessTime`, the same
arithmetic the analytics use, so a wait the simulator measures in business time reads the same in
the SLA tables.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from protocol_lab.domain.business_time import BusinessTime, business_time
from protocol_lab.domain.sla import BusinessCalendar

__all__ = ["BusinessClock"]


class BusinessClock:
    """A business calendar on the simulation clock, with ``add`` and ``is_open``.

    ``calendar`` is the calendar itself or a function that loads it (the SLA file's, read when
    the run first asks about working hours). The working intervals are built on the first
    question asked: a run without human waits never loads the country holidays.
    """

    def __init__(
        self,
        calendar: BusinessCalendar | Callable[[], BusinessCalendar],
        *,
        origin: datetime,
        days: int = 60,
    ) -> None:
        if origin.tzinfo is None:
            origin = origin.replace(tzinfo=UTC)
        self._origin = origin.timestamp()
        self._days = days
        self._built: tuple[BusinessTime, float] | None = None
        if callable(calendar):
            self._load: Callable[[], BusinessCalendar] | None = calendar
            return
        self._load = None
        self.calendar = calendar
        # fail now, not in the middle of a run, for a calendar without working hours; a
        # country's holidays (a few days a year) cannot empty a calendar, so the check runs
        # without them and without importing the holidays package
        own = business_time(calendar.model_copy(update={"country": None, "subdivision": None}))
        own.add(self._origin, 0.0)
        own.at(self._origin + days * 86400.0)

    def _clock(self) -> tuple[BusinessTime, float]:
        """The calendar's arithmetic and its reading at the origin, built once."""
        if self._built is None:
            if self._load is not None:
                self.calendar = self._load()
                self._load = None
            arithmetic = business_time(self.calendar)
            arithmetic.at(self._origin + self._days * 86400.0)
            self._built = (arithmetic, arithmetic.at(self._origin))
        return self._built

    def is_open(self, t: float) -> bool:
        """Whether ``t`` (simulation seconds) falls in working hours."""
        return self._clock()[0].is_open(self._origin + t)

    def position(self, t: float) -> float:
        """Business seconds elapsed from the origin up to ``t``."""
        arithmetic, base = self._clock()
        return arithmetic.at(self._origin + t) - base

    def add(self, t: float, business_seconds: float) -> float:
        """The simulation time at which ``business_seconds`` of working time after ``t`` end."""
        return self._clock()[0].add(self._origin + t, business_seconds) - self._origin

    def business_seconds(self, start: float, end: float) -> float:
        """Working seconds between two simulation times."""
        return self.position(end) - self.position(start)
