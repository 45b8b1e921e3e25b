"""Simulation against reality: distances are zero for the same run, small for another seed of
the same scenario, and large when reality is slower."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from protocol_lab.analytics import Timelines
from protocol_lab.compare import compare, distribution_distances
from protocol_lab.sim import load_scenario, simulate


def _week(seed: int) -> Timelines:
    scenario = load_scenario("demo_day").with_horizon(24 * 7, warmup_hours=0)
    return simulate(scenario, seed=seed).timelines


def _slower(tl: Timelines, factor: float) -> Timelines:
    events = tl.events.collect()
    start = pl.col("timestamp").min().over("workflow_id")
    stretched = start + (pl.col("timestamp") - start) * factor
    return Timelines.from_frame(events.with_columns(stretched.alias("timestamp")), check=False)


def test_distances_of_known_samples() -> None:
    same = distribution_distances([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same["ks"] == 0.0
    assert same["wasserstein_s"] == 0.0
    shifted = distribution_distances([1.0, 2.0, 3.0], [11.0, 12.0, 13.0])
    assert shifted["ks"] == 1.0
    assert shifted["wasserstein_s"] == 10.0
    empty = distribution_distances([], [1.0])
    assert empty["ks"] is None


def test_same_run_other_seed_and_slower_reality() -> None:
    a = _week(1)
    itself = compare(a, a)
    assert (itself.cycle_times["ks"] == 0).all()
    assert (itself.steps["wasserstein_s"].drop_nulls() == 0).all()

    other = compare(a, _week(2))
    pooled = other.overall
    assert pooled["ks"] < 0.1
    assert (other.counts["started_real"] > 0).all()

    slow = compare(a, _slower(a, 2.0))
    assert slow.overall["ks"] > 2 * pooled["ks"]
    assert slow.overall["wasserstein_s"] > 3 * other.overall["wasserstein_s"]
    assert set(slow.sla.columns) >= {"task_queue", "attainment_sim", "attainment_real"}


def test_html_section_states_the_distances(tmp_path: Path) -> None:
    a = _week(1)
    comparison = compare(a, _week(3), as_of=None)
    html = comparison.to_html(tmp_path)
    assert "Kolmogorov-Smirnov" in html
    assert "Wasserstein" in html
    assert (tmp_path / "sim_vs_real_cycle_times.png").stat().st_size > 1000
    assert (tmp_path / "sim_vs_real_steps.png").stat().st_size > 1000
    lines = comparison.summary_lines()
    assert lines[-1].startswith("all workflows")


def _day(seed: int) -> Timelines:
    return simulate(load_scenario("demo_day"), seed=seed).timelines


def test_more_simulations_join_the_activity_steps_only() -> None:
    """Further replications widen the simulated side of the activity rows (the model's
    distribution instead of one draw of it); signal waits and cycle times stay paired with the
    replayed run, and the distances of a step to another seed of the same model shrink."""
    replayed, reality = _day(1), _day(2)
    more = [_day(seed) for seed in range(3, 12)]
    alone = compare(replayed, reality)
    pooled = compare(replayed, reality, more_simulations=more)
    assert_frame_equal(
        pooled.cycle_times.sort("workflow_name"), alone.cycle_times.sort("workflow_name")
    )
    key = ["workflow_name", "step", "kind"]
    joined = alone.steps.select(*key, "n_sim", "ks").join(
        pooled.steps.select(
            *key, pl.col("n_sim").alias("n_pooled"), pl.col("ks").alias("ks_pooled")
        ),
        on=key,
    )
    signals = joined.filter(pl.col("kind") == "signal")
    activities = joined.filter(pl.col("kind") == "activity")
    assert signals.height > 0
    assert activities.height > 0
    assert (signals["n_pooled"] == signals["n_sim"]).all()
    assert (activities["n_pooled"] > 5 * activities["n_sim"]).all()
    # the same model on both sides: a one-run simulated side is noisier than ten runs
    assert activities["ks_pooled"].mean() < activities["ks"].mean()
