"""One business-time arithmetic: the analytics and the simulator agree, holidays come from the
``holidays`` package by country, ``24:00`` closes at midnight, calendars are checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from protocol_lab.analytics.business_columns import business_seconds
from protocol_lab.analytics.sla import sla_status
from protocol_lab.domain import BusinessCalendar, SlaConfig
from protocol_lab.domain.business_time import BusinessTime, calendar_holidays
from protocol_lab.sim.business_clock import BusinessClock

H = 3600.0
ORIGIN = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday; the samples span both DST changes
CALENDARS = {
    "london office": BusinessCalendar(
        timezone="Europe/London", start="09:00", end="17:30", country="GB", subdivision="ENG"
    ),
    "new york to midnight": BusinessCalendar(
        timezone="America/New_York", start="08:00", end="24:00", weekdays=(0, 1, 2, 3, 4, 5)
    ),
    "tokyo with own dates": BusinessCalendar(
        timezone="Asia/Tokyo", start="10:00", end="18:00", holidays=("2026-05-04", "2026-05-05")
    ),
}


@pytest.mark.parametrize("name", list(CALENDARS))
def test_analytics_and_simulator_measure_the_same_business_time(name: str) -> None:
    calendar = CALENDARS[name]
    rng = np.random.default_rng(11)
    start = rng.uniform(0, 330 * 24 * H, 400)
    end = start + rng.exponential(5 * 24 * H, 400)
    clock = BusinessClock(calendar, origin=ORIGIN, days=30)
    simulated = np.array([clock.business_seconds(a, b) for a, b in zip(start, end, strict=True)])
    frame = pl.DataFrame(
        {
            "start": [ORIGIN + timedelta(seconds=float(s)) for s in start],
            "end": [ORIGIN + timedelta(seconds=float(e)) for e in end],
        }
    )
    analysed = frame.select(business_seconds(pl.col("start"), pl.col("end"), calendar))
    np.testing.assert_allclose(analysed.to_series().to_numpy(), simulated, atol=1e-3)
    assert (simulated >= 0).all()
    assert (simulated > 0).any()


def test_a_day_to_midnight_counts_sixteen_hours_and_adds_across_it() -> None:
    calendar = CALENDARS["new york to midnight"]
    clock = BusinessClock(calendar, origin=datetime(2026, 11, 2, 5, tzinfo=UTC), days=7)
    # Monday 2026-11-02 00:00 New York (EST, UTC-5): open 08:00 to 24:00
    assert clock.business_seconds(0.0, 24 * H) == pytest.approx(16 * H)
    assert clock.add(23 * H, 2 * H) == pytest.approx(24 * H + 9 * H)  # 1 h left, 1 h Tuesday
    assert clock.is_open(23.5 * H)
    assert not clock.is_open(7 * H)


def test_country_holidays_are_not_working_days() -> None:
    london = CALENDARS["london office"]
    off = calendar_holidays(london, 2027)
    assert datetime(2027, 3, 29).date() in off  # Easter Monday
    time = BusinessTime(london)
    easter_monday_noon = datetime(2027, 3, 29, 11, tzinfo=UTC).timestamp()
    assert not time.is_open(easter_monday_noon)
    # Thursday 25 March 16:30 (GMT) + 2 h: one hour that day; Good Friday, the weekend and
    # Easter Monday are skipped; the other hour on Tuesday from 09:00 BST (08:00 UTC)
    thursday = datetime(2027, 3, 25, 16, 30, tzinfo=UTC).timestamp()
    done = time.add(thursday, 2 * H)
    assert datetime.fromtimestamp(done, tz=UTC) == datetime(2027, 3, 30, 9, 0, tzinfo=UTC)


def test_add_is_the_inverse_of_the_clock() -> None:
    time = BusinessTime(CALENDARS["tokyo with own dates"])
    rng = np.random.default_rng(3)
    base = ORIGIN.timestamp()
    for t, d in zip(rng.uniform(0, 300 * 24 * H, 200), rng.exponential(20 * H, 200), strict=True):
        assert time.between(base + t, time.add(base + t, d)) == pytest.approx(d, abs=1e-6)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"start": "18:00", "end": "09:00"}, "must be after start"),
        ({"start": "25:00"}, "HH:MM"),
        ({"weekdays": (0, 7)}, "weekdays"),
        ({"holidays": ("2026-13-01",)}, "ISO date"),
        ({"subdivision": "ENG"}, "needs its country"),
        ({"country": "XX"}, "holidays package"),
        ({"country": "GB", "subdivision": "ZZZ"}, "no subdivision"),
    ],
)
def test_a_bad_calendar_is_refused_with_a_reason(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BusinessCalendar.model_validate(fields)


def test_a_calendar_without_working_hours_fails_at_once() -> None:
    with pytest.raises(ValueError, match="no working hours"):
        BusinessClock(BusinessCalendar(weekdays=()), origin=ORIGIN)


def test_targets_run_on_their_named_calendar() -> None:
    config = SlaConfig.model_validate(
        {
            "calendar": {"timezone": "UTC", "start": "09:00", "end": "17:00"},
            "calendars": {
                "round the clock": {
                    "start": "00:00",
                    "end": "24:00",
                    "weekdays": [0, 1, 2, 3, 4, 5, 6],
                }
            },
            "targets": [
                {
                    "priority": "P1",
                    "target_hours": 20,
                    "business_hours": True,
                    "calendar": "round the clock",
                },
                {"priority": "P3", "target_hours": 20, "business_hours": True},
            ],
        }
    )
    monday = datetime(2026, 11, 2, 9, tzinfo=UTC)
    workflows = pl.DataFrame(
        {
            "workflow_id": ["a", "b"],
            "priority": ["P1", "P3"],
            "started_at": [monday, monday],
            "completed_at": [monday + timedelta(hours=24)] * 2,
            "last_event_at": [monday + timedelta(hours=24)] * 2,
            "outcome": ["completed", "completed"],
        }
    )
    status = sla_status(workflows, config=config).sort("workflow_id")
    assert status["measured_s"].to_list() == pytest.approx([24 * H, 8 * H])
    assert status["sla_state"].cast(pl.String).to_list() == ["breached", "met"]
    with pytest.raises(ValidationError, match="names calendar 'nights'"):
        SlaConfig.model_validate(
            {"targets": [{"priority": "P1", "target_hours": 1, "calendar": "nights"}]}
        )
