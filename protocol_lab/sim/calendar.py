"""Business-hours arithmetic for human waits, on the simulation clock.

A :class:`BusinessClock` puts a :class:`protocol_lab.domain.BusinessCalendar` on the simulation
clock (seconds since the scenario start) and answers "when are ``d`` business seconds done,
starting at ``t``?" through :class:`protocol_lab.domain.business_time.BusinessTime`, the same
arithmetic the analytics use, so a wait the simulator measures in business time reads the same in
the SLA tables.
"""

from __future__ import annotations

from datetime import UTC, datetime

from protocol_lab.domain.business_time import business_time
from protocol_lab.domain.sla import BusinessCalendar

__all__ = ["BusinessClock"]


class BusinessClock:
    """A business calendar on the simulation clock, with ``add`` and ``is_open``."""

    def __init__(self, calendar: BusinessCalendar, *, origin: datetime, days: int = 60) -> None:
        if origin.tzinfo is None:
            origin = origin.replace(tzinfo=UTC)
        self.calendar = calendar
        self._time = business_time(calendar)
        self._origin = origin.timestamp()
        # fail now, not in the middle of a run, for a calendar without working hours
        self._time.add(self._origin, 0.0)
        self._time.at(self._origin + days * 86400.0)
        self._base = self._time.at(self._origin)

    def is_open(self, t: float) -> bool:
        """Whether ``t`` (simulation seconds) falls in working hours."""
        return self._time.is_open(self._origin + t)

    def position(self, t: float) -> float:
        """Business seconds elapsed from the origin up to ``t``."""
        return self._time.at(self._origin + t) - self._base

    def add(self, t: float, business_seconds: float) -> float:
        """The simulation time at which ``business_seconds`` of working time after ``t`` end."""
        return self._time.add(self._origin + t, business_seconds) - self._origin

    def business_seconds(self, start: float, end: float) -> float:
        """Working seconds between two simulation times."""
        return self.position(end) - self.position(start)
