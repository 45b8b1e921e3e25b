"""Business-hours arithmetic on the simulation clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from protocol_lab.domain import BusinessCalendar
from protocol_lab.sim.business_clock import BusinessClock

MONDAY = datetime(2026, 11, 2, tzinfo=UTC)  # London is on UTC in November
H = 3600.0


def clock(**kw: object) -> BusinessClock:
    cal = BusinessCalendar(timezone="Europe/London", start="09:00", end="17:00", **kw)  # type: ignore[arg-type]
    return BusinessClock(cal, origin=MONDAY, days=30)


def test_work_inside_a_day_ends_the_same_day() -> None:
    c = clock()
    assert c.add(10 * H, 2 * H) == pytest.approx(12 * H)


def test_work_started_at_night_starts_at_opening() -> None:
    c = clock()
    assert c.add(2 * H, 1 * H) == pytest.approx(10 * H)
    assert not c.is_open(2 * H)
    assert c.is_open(9 * H)


def test_friday_evening_work_resumes_on_monday() -> None:
    c = clock()
    friday_4pm = (4 * 24 + 16) * H
    # one hour left on Friday, one more on Monday 09:00-10:00
    assert c.add(friday_4pm, 2 * H) == pytest.approx((7 * 24 + 10) * H)


def test_holidays_are_skipped() -> None:
    c = clock(holidays=("2026-11-03",))
    monday_4pm = 16 * H
    assert c.add(monday_4pm, 2 * H) == pytest.approx((2 * 24 + 10) * H)


def test_daylight_saving_is_honoured() -> None:
    cal = BusinessCalendar(timezone="Europe/London", start="09:00", end="17:00")
    origin = datetime(2026, 3, 30, tzinfo=UTC)  # Monday after the clocks went forward (BST)
    c = BusinessClock(cal, origin=origin, days=7)
    assert c.add(0.0, 0.0) == pytest.approx(8 * H)  # 09:00 BST is 08:00 UTC


def test_business_seconds_between_two_times() -> None:
    c = clock()
    assert c.business_seconds(0.0, 7 * 24 * H) == pytest.approx(5 * 8 * H)


def test_long_waits_extend_the_calendar() -> None:
    c = clock()
    assert c.add(0.0, 8 * H * 100) > 100 * 24 * H
