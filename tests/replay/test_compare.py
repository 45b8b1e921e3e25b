"""Simulation against reality: distances are zero for the same run, small for another seed of
the same scenario, and large when reality is slower."""

from __future__ import annotations

from pathlib import Path

import polars as pl

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
