"""Arrival profiles and the non-homogeneous Poisson arrivals drawn from them."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from protocol_lab.sim import HourOfWeekProfile, load_scenario
from protocol_lab.sim.arrivals import generate_arrivals


def test_weekday_shorthand_expands_to_168_weights_with_weekly_mean_one() -> None:
    p = HourOfWeekProfile.model_validate(
        {"weekday": [1.0] * 12 + [3.0] * 12, "saturday": [0.5] * 24}
    )
    assert len(p.weights) == 168
    assert p.normalised().mean() == pytest.approx(1.0)
    assert p.weights[-1] == 0.5  # sunday defaults to saturday


def test_profile_is_read_in_its_time_zone() -> None:
    weights = [0.0] * 168
    weights[9] = 1.0  # Monday 09:00 local
    p = HourOfWeekProfile(timezone="America/New_York", weights=tuple(weights))
    factors = p.hourly_factors(datetime(2026, 11, 2, tzinfo=UTC), 48)
    assert int(np.argmax(factors)) == 14  # 09:00 New York is 14:00 UTC in November


def test_bad_profiles_are_rejected() -> None:
    with pytest.raises(ValueError, match="168"):
        HourOfWeekProfile(weights=(1.0,) * 10)
    with pytest.raises(ValueError, match="24"):
        HourOfWeekProfile.model_validate({"weekday": [1.0] * 5})


def test_arrivals_follow_rates_and_profile() -> None:
    s = load_scenario("service_desk_month").with_horizon(24 * 14, warmup_hours=0)
    a = generate_arrivals(s, np.random.default_rng(1))
    expected = s.arrivals.tickets_per_week * 2
    assert abs(len(a) - expected) < 4 * np.sqrt(expected)
    assert np.all(np.diff(a.times) >= 0)
    hours = (a.times // 3600).astype(int) % 24
    daytime = np.mean((hours >= 9) & (hours < 17))
    assert daytime > 0.6  # office hours dominate
    counts = np.bincount(a.stream, minlength=len(s.arrivals.streams))
    share = counts / counts.sum()
    want = np.array([st.tickets_per_week for st in s.arrivals.streams])
    assert np.allclose(share, want / want.sum(), atol=0.01)


def test_max_tickets_caps_the_arrivals() -> None:
    s = load_scenario("mmc_validation").model_copy(update={"max_tickets": 500})
    assert len(generate_arrivals(s, np.random.default_rng(2))) == 500
