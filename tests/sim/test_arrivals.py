"""Arrival profiles and the non-homogeneous Poisson arrivals drawn from them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from protocol_lab.domain import ScenarioError
from protocol_lab.sim import HourOfWeekProfile, load_scenario, simulate
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


def test_observed_arrivals_are_replayed_and_matched_by_the_rules(tmp_path: Path) -> None:
    file = tmp_path / "observed.parquet"
    pl.DataFrame(
        {
            "created_at": [
                datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
                datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
                datetime(2026, 11, 2, 10, 0, tzinfo=UTC),
                datetime(2026, 11, 9, 10, 0, tzinfo=UTC),  # after the horizon
            ],
            "category": ["access", "hardware", "software", "access"],
            "priority": ["P3", "P3", "P4", "P3"],
            "title": ["Password reset please", "Laptop for a contractor", "Install IDE", "x"],
        }
    ).write_parquet(file)
    base = load_scenario("service_desk_month").with_horizon(24, warmup_hours=0)
    arrivals = base.arrivals.model_copy(update={"observed": str(file)})
    result = simulate(base.model_copy(update={"arrivals": arrivals}), seed=1)
    assert result.tickets == 3
    names = sorted(result.workflows["workflow_name"].to_list())
    assert "Laptop Provisioning - New Hire" in names
    assert "Password Reset" in names
    started = result.events.filter(event="workflow_started").sort("timestamp")
    assert started["timestamp"][0] == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_observed_arrivals_without_a_stream_are_refused(tmp_path: Path) -> None:
    file = tmp_path / "observed.csv"
    pl.DataFrame(
        {
            "created_at": ["2026-11-02T09:00:00Z"],
            "category": ["facilities"],
            "priority": ["P2"],
            "title": ["Broken chair"],
        }
    ).write_csv(file)
    base = load_scenario("service_desk_month").with_horizon(24, warmup_hours=0)
    arrivals = base.arrivals.model_copy(update={"observed": str(file)})
    with pytest.raises(ScenarioError, match="facilities/P2"):
        simulate(base.model_copy(update={"arrivals": arrivals}))
