"""Business time at its edges: the opening and closing instants, weekends, holidays, years.

One arithmetic (:class:`~protocol_lab.domain.business_time.BusinessTime`) serves the analytics'
columns (:mod:`protocol_lab.analytics.business_columns`) and the simulator's waits
(:mod:`protocol_lab.sim.business_clock`); each is checked here at the instants where a day opens or
closes, one second to either side, and against a day-by-day count written out plainly.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from protocol_lab.analytics.business_columns import (
    business_clock,
    business_seconds,
    working_day_seconds,
)
from protocol_lab.domain import BusinessCalendar, SlaConfig, SlaTarget
from protocol_lab.domain.business_time import BusinessTime, business_time, calendar_holidays
from protocol_lab.sim.business_clock import BusinessClock

H = 3600.0
DAY = 24 * H
OFFICE = BusinessCalendar(timezone="UTC", start="09:00", end="17:00")
MONDAY = datetime(2026, 11, 2, tzinfo=UTC)  # 00:00 on a Monday


def ts(day: int, hours: float = 0.0, seconds: float = 0.0) -> float:
    """Epoch seconds ``day`` days and ``hours`` after Monday 2026-11-02 00:00 UTC."""
    return MONDAY.timestamp() + day * DAY + hours * H + seconds


def _by_hand(calendar: BusinessCalendar, start: float, end: float) -> float:
    """Working seconds between two instants of a UTC calendar, day by day."""
    opens = int(calendar.start[:2]) * H + int(calendar.start[3:]) * 60
    closes = int(calendar.end[:2]) * H + int(calendar.end[3:]) * 60
    own = {date.fromisoformat(d) for d in calendar.holidays}
    total = 0.0
    day = datetime.fromtimestamp(start, tz=UTC).date() - timedelta(days=1)
    while datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() <= end:
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        if day.weekday() in calendar.weekdays and day not in own:
            total += max(0.0, min(end, midnight + closes) - max(start, midnight + opens))
        day += timedelta(days=1)
    return total


# --- opening and closing instants ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "is_open"),
    [
        (ts(0, 9, -1), False),  # Monday 08:59:59
        (ts(0, 9), True),  # the opening instant is working time
        (ts(0, 9, 1), True),
        (ts(0, 17, -1), True),
        (ts(0, 17), False),  # the closing instant is not
        (ts(0, 17, 1), False),
        (ts(4, 12), True),  # Friday noon
        (ts(5, 12), False),  # Saturday noon
        (ts(6, 12), False),  # Sunday noon
        (ts(7, 9), True),  # Monday again
    ],
)
def test_a_day_is_open_from_its_opening_instant_to_before_its_closing_one(
    instant: float, is_open: bool
) -> None:
    assert BusinessTime(OFFICE).is_open(instant) is is_open
    clock = BusinessClock(OFFICE, origin=MONDAY, days=10)
    assert clock.is_open(instant - MONDAY.timestamp()) is is_open


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (ts(0, 9), ts(0, 17), 8.0),  # the whole day, edge to edge
        (ts(0, 8), ts(0, 9), 0.0),  # the hour before opening
        (ts(0, 17), ts(0, 18), 0.0),  # the hour after closing
        (ts(0, 9, -1), ts(0, 9, 1), 1 / 3600),  # one second each side of the opening
        (ts(0, 17, -1), ts(0, 17, 1), 1 / 3600),  # and of the closing
        (ts(0, 12), ts(0, 12), 0.0),
        (ts(4, 17), ts(7, 9), 0.0),  # Friday close to Monday open: the weekend is empty
        (ts(4, 16), ts(7, 10), 2.0),
        (ts(5, 0), ts(7, 0), 0.0),  # Saturday and Sunday
        (ts(0, 0), ts(7, 0), 40.0),  # a week
        (ts(0, 12), ts(0, 10), -2.0),  # backwards is negative
    ],
)
def test_known_business_hours_at_the_edges(start: float, end: float, hours: float) -> None:
    time = BusinessTime(OFFICE)
    assert time.between(start, end) == pytest.approx(hours * H, abs=1e-6)
    clock = BusinessClock(OFFICE, origin=MONDAY, days=10)
    base = MONDAY.timestamp()
    assert clock.business_seconds(start - base, end - base) == pytest.approx(hours * H, abs=1e-6)
    frame = pl.DataFrame(
        {
            "s": [datetime.fromtimestamp(start, tz=UTC)],
            "e": [datetime.fromtimestamp(end, tz=UTC)],
        }
    )
    column = frame.select(business_seconds(pl.col("s"), pl.col("e"), OFFICE)).item()
    assert column == pytest.approx(hours * H, abs=1e-6)


@pytest.mark.parametrize(
    ("start", "work_h", "done"),
    [
        (ts(0, 9), 0.0, ts(0, 9)),  # nothing to do at opening: done at once
        (ts(0, 9), 8.0 - 1 / 3600, ts(0, 17, -1)),
        # Work that ends exactly at a closing instant is done at the next opening: add gives
        # the first instant at which the clock reads the target that is working time (so
        # add(t, 0) is the next working instant, which the simulator's waits rely on).
        (ts(0, 9), 8.0, ts(1, 9)),
        (ts(0, 9), 8.0 + 1 / 3600, ts(1, 9, 1)),  # one second more runs into Tuesday
        (ts(0, 17), 0.0, ts(1, 9)),  # at closing time work waits for the next opening
        (ts(0, 17, -1), 0.0, ts(0, 17, -1)),
        (ts(0, 8), 1.0, ts(0, 10)),  # before opening: counted from 09:00
        (ts(4, 16), 1.0 - 1 / 3600, ts(4, 17, -1)),  # Friday's last hour
        (ts(4, 16), 1.0, ts(7, 9)),
        (ts(4, 16), 2.0, ts(7, 10)),  # over the weekend
        (ts(5, 12), 0.0, ts(7, 9)),  # Saturday: Monday's opening
        (ts(0, 12), 40.0, ts(7, 12)),  # a working week later, same time
    ],
)
def test_adding_working_time_at_the_edges(start: float, work_h: float, done: float) -> None:
    assert BusinessTime(OFFICE).add(start, work_h * H) == pytest.approx(done, abs=1e-6)
    clock = BusinessClock(OFFICE, origin=MONDAY, days=10)
    base = MONDAY.timestamp()
    assert clock.add(start - base, work_h * H) == pytest.approx(done - base, abs=1e-6)


@pytest.mark.parametrize("seconds", [-1.0, -1e-9, float("nan"), float("inf")])
def test_adding_a_negative_or_endless_time_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="finite and >= 0"):
        BusinessTime(OFFICE).add(ts(0, 10), seconds)


def test_the_clock_stands_still_outside_working_hours() -> None:
    time = BusinessTime(OFFICE)
    assert time.at(ts(0, 17)) == time.at(ts(0, 20)) == time.at(ts(1, 9))
    assert time.at(ts(1, 9, 1)) - time.at(ts(1, 9)) == pytest.approx(1.0)
    assert time.at(ts(4, 17)) == time.at(ts(7, 9))
    column = time.clock(np.array([ts(0, 17), ts(0, 20), ts(1, 9), ts(1, 10), np.nan]))
    assert column[:4] == pytest.approx([time.at(ts(0, 17))] * 3 + [time.at(ts(1, 10))])
    assert np.isnan(column[4])
    assert np.isnan(time.clock(np.array([np.nan, np.nan]))).all()


@pytest.mark.parametrize("name", ["weekend shift", "to midnight", "half hours"])
def test_vectorised_and_single_instant_clocks_agree_on_every_edge(name: str) -> None:
    calendar = {
        "weekend shift": BusinessCalendar(weekdays=(5, 6), start="10:00", end="14:00"),
        "to midnight": BusinessCalendar(start="20:00", end="24:00"),
        "half hours": BusinessCalendar(start="08:30", end="16:45", holidays=("2026-11-04",)),
    }[name]
    time = BusinessTime(calendar)
    edges = [
        ts(day, hours, nudge)
        for day in range(-2, 9)
        for hours in (0, 8.5, 10, 14, 16.75, 20, 24)
        for nudge in (-1, 0, 1)
    ]
    vectorised = time.clock(np.array(edges))
    single = [time.at(t) for t in edges]
    assert vectorised == pytest.approx(single, abs=1e-6)
    first = edges[0]
    for t in edges:
        assert time.between(first, t) == pytest.approx(_by_hand(calendar, first, t), abs=1e-6)


def test_a_day_to_midnight_and_a_round_the_clock_calendar() -> None:
    late = BusinessCalendar(start="20:00", end="24:00")
    assert BusinessTime(late).between(ts(0, 0), ts(1, 0)) == pytest.approx(4 * H)
    assert BusinessTime(late).is_open(ts(0, 24, -1))
    assert not BusinessTime(late).is_open(ts(1, 0))  # Tuesday 00:00 opens at 20:00
    always = BusinessCalendar(start="00:00", end="24:00", weekdays=(0, 1, 2, 3, 4, 5, 6))
    assert BusinessTime(always).between(ts(0, 0), ts(7, 0)) == pytest.approx(7 * DAY)
    assert BusinessTime(always).add(ts(5, 23), 2 * H) == pytest.approx(ts(6, 1))
    assert working_day_seconds(late) == 4 * H
    assert working_day_seconds(always) == DAY
    assert working_day_seconds(BusinessCalendar(start="09:30", end="17:15")) == 7.75 * H


# --- holidays and years -------------------------------------------------------------------------


def test_own_holidays_count_only_in_their_year() -> None:
    calendar = BusinessCalendar(holidays=("2026-11-03", "2027-01-04"))
    assert calendar_holidays(calendar, 2026) == frozenset({date(2026, 11, 3)})
    assert calendar_holidays(calendar, 2027) == frozenset({date(2027, 1, 4)})
    assert calendar_holidays(calendar, 2028) == frozenset()
    time = BusinessTime(calendar)
    assert time.between(ts(1, 0), ts(2, 0)) == 0.0  # Tuesday 3 November is off
    assert time.between(ts(0, 0), ts(1, 0)) == pytest.approx(8 * H)


def test_a_country_adds_its_public_holidays_to_the_calendars_own() -> None:
    calendar = BusinessCalendar(country="GB", subdivision="ENG", holidays=("2026-11-03",))
    off = calendar_holidays(calendar, 2026)
    assert {date(2026, 12, 25), date(2026, 11, 3)} <= off
    assert date(2026, 11, 2) not in off


@settings(max_examples=60, deadline=None)
@given(
    start=st.floats(-400 * DAY, 800 * DAY),
    length=st.one_of(st.just(0.0), st.floats(0, 40 * DAY)),
    snap=st.booleans(),
)
def test_the_clock_agrees_with_a_day_by_day_count_across_years(
    start: float, length: float, snap: bool
) -> None:
    # years are built on demand, before and after the first one: the count must not care
    calendar = BusinessCalendar(start="09:00", end="17:30", holidays=("2026-12-25", "2027-01-01"))
    a = ts(0) + start
    if snap:  # land on an opening or closing instant
        a = ts(0) + round(start / DAY) * DAY + 9 * H
    b = a + length
    time = business_time(calendar)
    assert time.between(a, b) == pytest.approx(_by_hand(calendar, a, b), abs=1e-5)
    done = time.add(a, time.between(a, b))
    assert time.between(a, done) == pytest.approx(time.between(a, b), abs=1e-5)


def test_years_built_later_keep_the_answers_of_those_built_first() -> None:
    time = BusinessTime(OFFICE)
    week = time.between(ts(0), ts(7))
    long_ago = datetime(2020, 3, 2, tzinfo=UTC).timestamp()  # a Monday
    assert time.between(long_ago, long_ago + 7 * DAY) == pytest.approx(40 * H)
    far_on = datetime(2031, 3, 3, tzinfo=UTC).timestamp()  # a Monday
    assert time.between(far_on, far_on + 7 * DAY) == pytest.approx(40 * H)
    assert time.between(ts(0), ts(7)) == pytest.approx(week)
    assert time.add(long_ago, 39 * H) == pytest.approx(long_ago + 4 * DAY + 16 * H)
    # a wait longer than the years built runs on into new ones
    assert BusinessTime(OFFICE).add(ts(0, 9), 8 * H * 600) > ts(0) + 2 * 365 * DAY


def test_a_calendar_with_no_working_day_is_refused_when_asked() -> None:
    never = BusinessCalendar(weekdays=())
    with pytest.raises(ValueError, match="no working hours"):
        BusinessTime(never).at(ts(0))
    only_holidays = BusinessCalendar(weekdays=(0,), holidays=("2026-11-02",))
    # one Monday off among the year's Mondays: still working time after it
    assert BusinessTime(only_holidays).add(ts(0, 9), H) == pytest.approx(ts(7, 10))


def test_business_clock_columns_keep_nulls_and_count_from_one_origin() -> None:
    frame = pl.DataFrame(
        {"t": [MONDAY + timedelta(hours=10), None, MONDAY + timedelta(hours=12)]},
        schema={"t": pl.Datetime("us", "UTC")},
    )
    values = frame.select(business_clock(pl.col("t"), OFFICE)).to_series().to_list()
    assert values[1] is None
    assert values[2] - values[0] == pytest.approx(2 * H)


# --- the simulator's clock ----------------------------------------------------------------------


def test_the_simulation_clock_counts_from_its_origin() -> None:
    naive_monday_9 = datetime(2026, 11, 2, 9)  # read as UTC
    clock = BusinessClock(OFFICE, origin=naive_monday_9, days=10)
    assert clock.position(0.0) == 0.0
    assert clock.position(2 * H) == pytest.approx(2 * H)
    assert clock.position(10 * H) == pytest.approx(8 * H)  # 19:00: the day is done
    assert clock.add(0.0, 7 * H) == pytest.approx(7 * H)
    assert clock.is_open(0.0)
    assert not clock.is_open(8 * H)


def test_the_simulation_clock_loads_its_calendar_on_the_first_question() -> None:
    loaded: list[BusinessCalendar] = []

    def load() -> BusinessCalendar:
        loaded.append(OFFICE)
        return OFFICE

    clock = BusinessClock(load, origin=MONDAY, days=10)
    assert loaded == []
    assert clock.add(0.0, H) == pytest.approx(10 * H)
    assert clock.is_open(10 * H)
    assert clock.business_seconds(0.0, DAY) == pytest.approx(8 * H)
    assert loaded == [OFFICE]  # once
    assert clock.calendar is OFFICE


# --- the calendar and target models -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "valid"),
    [
        ({"start": "09:00", "end": "09:00"}, False),  # closing at the opening instant
        ({"start": "09:00", "end": "09:01"}, True),
        ({"start": "00:00", "end": "24:00"}, True),
        ({"start": "24:00"}, False),
        ({"weekdays": (0, 6)}, True),
        ({"weekdays": (-1,)}, False),
        ({"weekdays": (7,)}, False),
        ({"weekdays": ()}, True),
        ({"country": "G"}, False),
        ({"country": "GB"}, True),
        ({"country": "GBRX"}, False),
        ({"country": "GB", "subdivision": ""}, False),
        ({"start": "9:00"}, False),
    ],
)
def test_calendar_bounds(fields: dict[str, object], valid: bool) -> None:
    if valid:
        BusinessCalendar.model_validate(fields)
    else:
        with pytest.raises(ValidationError):
            BusinessCalendar.model_validate(fields)


@pytest.mark.parametrize(
    ("fields", "valid"),
    [
        ({"target_hours": 0}, False),
        ({"target_hours": 1e-9}, True),
        ({"target_hours": -1}, False),
        ({"target_hours": 1, "at_risk_fraction": 0}, False),
        ({"target_hours": 1, "at_risk_fraction": 1}, False),
        ({"target_hours": 1, "at_risk_fraction": 0.999}, True),
        ({"target_hours": 1, "at_risk_fraction": 0.001}, True),
    ],
)
def test_target_bounds(fields: dict[str, object], valid: bool) -> None:
    raw = {"priority": "P1", **fields}
    if valid:
        SlaTarget.model_validate(raw)
    else:
        with pytest.raises(ValidationError):
            SlaTarget.model_validate(raw)


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"task_queue": "itsm-fleet"}, ("task_queue", "itsm-fleet")),
        ({"group": "Service Desk"}, ("task_queue", "Service Desk")),
        ({"workflow_name": "Swap"}, ("workflow_name", "Swap")),
        ({"category": "hardware"}, ("category", "hardware")),
        ({"priority": "P2"}, ("priority", "P2")),
    ],
)
def test_each_target_names_one_scope(scope: dict[str, str], expected: tuple[str, str]) -> None:
    target = SlaTarget.model_validate({**scope, "target_hours": 1.5})
    assert target.scope == expected
    assert target.target_seconds == 5400.0
    assert target.at_risk_fraction == 0.8
    assert target.business_hours is False
    with pytest.raises(ValidationError, match="exactly one"):
        SlaTarget.model_validate({**scope, "priority": "P9", "category": "x", "target_hours": 1})
    with pytest.raises(ValidationError, match="exactly one"):
        SlaTarget.model_validate({"target_hours": 1})


def test_a_target_runs_on_its_named_calendar_or_the_files() -> None:
    night = BusinessCalendar(start="20:00", end="24:00")
    config = SlaConfig(
        calendar=OFFICE,
        calendars={"night": night},
        targets=(
            SlaTarget(priority="P1", target_hours=1, calendar="night"),
            SlaTarget(priority="P2", target_hours=1),
        ),
    )
    assert config.calendar_of(config.targets[0]) is night
    assert config.calendar_of(config.targets[1]) is OFFICE
    with pytest.raises(ValidationError, match="calendars: night"):
        SlaConfig(
            calendars={"night": night},
            targets=(SlaTarget(priority="P1", target_hours=1, calendar="day"),),
        )


# --- days of unequal length, and the first day of a year ---------------------------------------


def test_new_years_day_is_a_working_day_when_the_calendar_says_so() -> None:
    friday = datetime(2027, 1, 1, tzinfo=UTC).timestamp()  # a Friday, no holiday of its own
    time = BusinessTime(OFFICE)
    assert time.between(friday, friday + DAY) == pytest.approx(8 * H)
    assert time.is_open(friday + 9 * H)


def test_a_round_the_clock_calendar_counts_every_second_across_daylight_saving() -> None:
    # local days of 23 and 25 hours: working time is wall time exactly, whichever year
    always = BusinessCalendar(
        timezone="Europe/London", start="00:00", end="24:00", weekdays=(0, 1, 2, 3, 4, 5, 6)
    )
    time = BusinessTime(always)
    start = datetime(2027, 1, 10, 12, tzinfo=UTC).timestamp()
    for days in (1, 30, 76, 77, 78, 200, 290, 300, 355):
        end = start + days * DAY + 1234.5
        assert time.between(start, end) == pytest.approx(end - start)
        assert time.add(start, end - start) == pytest.approx(end)
        assert time.is_open(end)
    spring = datetime(2027, 3, 28, tzinfo=UTC).timestamp()  # a 23-hour local day
    assert time.between(spring, spring + DAY) == pytest.approx(DAY)


def test_working_hours_inside_the_daylight_saving_gap_give_no_working_time() -> None:
    # 01:00-02:00 London does not exist on 28 March 2027 (the clocks go from 01:00 to 02:00)
    night = BusinessCalendar(
        timezone="Europe/London", start="01:00", end="02:00", weekdays=(0, 1, 2, 3, 4, 5, 6)
    )
    time = BusinessTime(night)
    saturday_3am = datetime(2027, 3, 27, 3, tzinfo=UTC).timestamp()
    done = time.add(saturday_3am, 0.0)
    assert datetime.fromtimestamp(done, tz=UTC) == datetime(2027, 3, 29, 0, tzinfo=UTC)
    assert time.is_open(done)
    assert time.between(saturday_3am, done) == 0.0


def test_years_built_before_the_first_keep_days_of_unequal_length_in_place() -> None:
    always = BusinessCalendar(
        timezone="Europe/London", start="00:00", end="24:00", weekdays=(0, 1, 2, 3, 4, 5, 6)
    )
    time = BusinessTime(always)
    later = datetime(2031, 6, 1, tzinfo=UTC).timestamp()
    assert time.is_open(later)  # builds 2030 to 2032 first
    # noon on each of the last seven days of March and October: the clocks change on one of them
    instants = [
        datetime(year, month, day, hour, tzinfo=UTC).timestamp()
        for year in (2026, 2027, 2029, 2032, 2033)
        for month, day, hour in [(1, 1, 0), (12, 31, 23)]
        + [(month, day, 12) for month in (3, 10) for day in range(25, 32)]
    ]
    for a in instants:
        for b in (*instants, later):
            assert time.between(a, b) == pytest.approx(b - a), (a, b)
    assert time.clock(np.array(instants)) - time.at(instants[0]) == pytest.approx(
        np.array(instants) - instants[0]
    )


def test_a_reading_of_the_clock_stays_when_earlier_years_are_built() -> None:
    time = BusinessTime(OFFICE)
    later = datetime(2030, 6, 3, 12, tzinfo=UTC).timestamp()  # builds 2029 to 2031
    reading = time.at(later)
    # two years before the first built: the intervals must be built, not read off their edge
    early = datetime(2028, 6, 1, tzinfo=UTC).timestamp()
    assert time.between(early, early + 92 * DAY) == pytest.approx(
        _by_hand(OFFICE, early, early + 92 * DAY)
    )
    assert time.at(later) == reading  # the anchor did not move
