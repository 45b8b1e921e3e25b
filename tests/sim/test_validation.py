"""Validation: Erlang C, and the M/M/c scenario against it over replications."""

from __future__ import annotations

import numpy as np
import pytest

from protocol_lab.sim import simulate
from protocol_lab.sim.replications import replication_seeds
from protocol_lab.sim.validation import confidence_interval, erlang_c, erlang_c_wait, mmc_scenario


def test_erlang_c_known_values() -> None:
    assert erlang_c(servers=1, arrival_rate=0.5, service_rate=1.0) == pytest.approx(0.5)
    assert erlang_c(servers=2, arrival_rate=1.0, service_rate=1.0) == pytest.approx(1 / 3)
    assert erlang_c_wait(servers=2, arrival_rate=1.0, service_rate=1.0) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="unstable"):
        erlang_c(servers=2, arrival_rate=2.0, service_rate=1.0)


def test_mmc_mean_wait_matches_erlang_c_within_replication_ci() -> None:
    servers, rho, mean_s = 8, 0.85, 60.0
    scenario = mmc_scenario(
        servers=servers, utilisation=rho, mean_service_s=mean_s, horizon_hours=36, warmup_hours=4
    )
    exact = erlang_c_wait(
        servers=servers, arrival_rate=rho * servers / mean_s, service_rate=1 / mean_s
    )
    means = []
    for seed in replication_seeds(scenario.seed, 12):
        result = simulate(scenario, rng=np.random.default_rng(seed), record_events=False)
        row = result.queue_summary().row(0, named=True)
        assert row["queue"] == "itsm-workflows"
        means.append(row["mean_wait_s"])
    mean, low, high = confidence_interval(means)
    assert low <= exact <= high, (mean, low, high, exact)
    assert high - low < 0.5 * exact  # the interval is informative, not vacuous


def test_mmc_utilisation_and_littles_law() -> None:
    scenario = mmc_scenario(horizon_hours=24, warmup_hours=2)
    result = simulate(scenario)
    row = result.queue_summary().row(0, named=True)
    assert row["utilisation"] == pytest.approx(0.85, abs=0.03)
    law = result.littles_law()
    assert law["relative_error"].max() < 1e-9
    assert set(law["scope"]) == {"queue", "system"}
