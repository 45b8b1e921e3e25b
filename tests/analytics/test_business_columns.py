"""Business time: working hours in a time zone, weekends, holidays, daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from protocol_lab.analytics import business_seconds
from protocol_lab.analytics.business_columns import working_day_seconds
from protocol_lab.domain import BusinessCalendar

LONDON = BusinessCalendar(
    timezone="Europe/London",
    start="09:00",
    end="17:30",
    holidays=("2026-12-25", "2026-12-28"),
)


def _hours(start: datetime, end: datetime, calendar: BusinessCalendar = LONDON) -> float:
    frame = pl.DataFrame({"s": [start], "e": [end]}).lazy()
    value = frame.select(business_seconds(pl.col("s"), pl.col("e"), calendar)).collect().item()
    return float(value) / 3600


def d(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (d(2026, 12, 1, 10, 0), d(2026, 12, 1, 12, 30), 2.5),  # inside one working day
        (d(2026, 12, 1, 7, 0), d(2026, 12, 1, 20, 0), 8.5),  # a whole day, clipped
        (d(2026, 11, 27, 17, 0), d(2026, 11, 30, 10, 0), 1.5),  # Friday evening to Monday
        (d(2026, 11, 28, 10, 0), d(2026, 11, 29, 16, 0), 0.0),  # a weekend
        (d(2026, 12, 24, 16, 0), d(2026, 12, 29, 10, 0), 2.5),  # over two holidays
        (d(2026, 7, 1, 8, 0), d(2026, 7, 1, 9, 0), 1.0),  # 08:00 UTC is 09:00 in summer
        (d(2026, 12, 1, 10, 0), d(2026, 12, 8, 10, 0), 5 * 8.5),  # one week
        (d(2027, 3, 26, 17, 0), d(2027, 3, 29, 9, 0), 1.5),  # Monday 09:00 UTC is 10:00 BST
    ],
)
def test_known_business_hours(start: datetime, end: datetime, hours: float) -> None:
    assert _hours(start, end) == pytest.approx(hours)


def test_custom_working_week_and_zone() -> None:
    gulf = BusinessCalendar(
        timezone="Asia/Dubai", start="08:00", end="16:00", weekdays=(6, 0, 1, 2, 3)
    )
    # Friday 2026-12-04 and Saturday are off; Sunday 08:00-10:00 Dubai = 04:00-06:00 UTC
    assert _hours(d(2026, 12, 4, 0, 0), d(2026, 12, 6, 6, 0), gulf) == pytest.approx(2.0)
    assert working_day_seconds(gulf) == 8 * 3600


def test_nulls_stay_null() -> None:
    frame = pl.DataFrame(
        {"s": [d(2026, 12, 1, 10, 0)], "e": [None]},
        schema={"s": pl.Datetime("us", "UTC"), "e": pl.Datetime("us", "UTC")},
    )
    assert frame.select(business_seconds(pl.col("s"), pl.col("e"), LONDON)).item() is None
