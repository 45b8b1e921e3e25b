"""The platform's own latency in the simulator: zero by default, scaled by the compression the
run stands for, and where the service's history puts it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from protocol_lab.domain.durations import Exponential, Fixed, LogNormal
from protocol_lab.replay import ReplayScript
from protocol_lab.sim import Scenario, load_scenario, save_scenario, simulate
from protocol_lab.sim.platform import PlatformConfig, QueueLatency, scale_duration

WALL = PlatformConfig(
    workflow_start=Fixed(seconds=0.03),
    first_workflow_task=Fixed(seconds=0.05),
    workflow_task=Fixed(seconds=0.02),
    signal_delivery=Fixed(seconds=0.01),
    default_queue=QueueLatency(
        schedule_to_start=Exponential(mean_s=0.01), activity_overhead=Fixed(seconds=0.015)
    ),
)


def _day() -> Scenario:
    return load_scenario("demo_day")


def _gaps(scenario: Scenario) -> pl.DataFrame:
    """Every gap before an event, with the events on both sides and the step kinds."""
    events = simulate(scenario).timelines.events.collect()
    return (
        events.sort("workflow_id", "timestamp", maintain_order=True)
        .with_columns(
            pl.col("event").cast(pl.String),
            pl.col("event").cast(pl.String).shift(1).over("workflow_id").alias("prev"),
            pl.col("step").shift(1).over("workflow_id").alias("prev_step"),
            (
                (pl.col("timestamp") - pl.col("timestamp").shift(1).over("workflow_id"))
                .dt.total_microseconds()
                .truediv(1e6)
            ).alias("gap_s"),
        )
        .drop_nulls("gap_s")
    )


def test_zero_platform_is_the_default_and_changes_nothing() -> None:
    day = _day()
    assert day.platform.is_zero
    plain = simulate(day).timelines.events.collect()
    zero_at_600 = simulate(day.with_platform(PlatformConfig(), compression=600)).timelines
    assert plain.equals(zero_at_600.events.collect())


def test_latency_is_wall_clock_times_the_compression() -> None:
    gaps = _gaps(_day().with_platform(WALL, compression=600))
    # a workflow task alone: an activity's end to the next signal wait, or to the close
    closes = gaps.filter(
        (pl.col("event") == "workflow_completed") & (pl.col("prev") == "activity_completed")
    )
    assert closes.height > 30
    assert np.allclose(closes["gap_s"].to_numpy(), 0.02 * 600)
    # an activity of a fixed 1 s holds its slot 1 s plus the overhead
    resets = gaps.filter(
        (pl.col("event") == "activity_completed")
        & (pl.col("step") == "close_ticket")
        & (pl.col("workflow_name") == "Password Reset")
    )
    assert np.allclose(resets["gap_s"].to_numpy(), 1.0 + 0.015 * 600)
    # activity after activity: a workflow task and the schedule-to-start (mean 6 s)
    chained = gaps.filter(
        (pl.col("event") == "activity_started")
        & (pl.col("prev") == "activity_completed")
        & pl.col("step").is_in(["email_user", "close_ticket"])
    )
    assert chained.height > 60
    assert chained["gap_s"].min() >= 12.0  # type: ignore[operator]
    assert chained["gap_s"].mean() == pytest.approx(12.0 + 6.0, rel=0.15)
    # the first step waits for the first workflow task; a received signal for its delivery
    first = gaps.filter(
        (pl.col("prev") == "workflow_started") & (pl.col("step") == "verify_identity")
    )
    assert np.allclose(first["gap_s"].to_numpy(), 0.05 * 600)
    after_signal = gaps.filter(
        (pl.col("prev") == "signal_received") & (pl.col("step") == "reset_password")
    )
    assert after_signal["gap_s"].min() >= 0.01 * 600 - 1e-6  # type: ignore[operator]


def test_the_same_latency_at_another_compression_scales() -> None:
    slow = _gaps(_day().with_platform(WALL, compression=60))
    closes = slow.filter(pl.col("event") == "workflow_completed")
    assert np.allclose(closes.filter(pl.col("prev") == "activity_completed")["gap_s"], 1.2)


def test_workflows_start_after_the_rule_engine_latency() -> None:
    scenario = _day().with_platform(WALL, compression=600).with_horizon(8, warmup_hours=0)
    script, simulation = ReplayScript.from_simulation(scenario)
    created = {a.ticket: a.at_s for a in script.actions if a.kind == "create_ticket"}
    delays = [w.started_s - created[w.ticket] for w in script.workflows if w.ticket in created]
    assert delays
    assert np.allclose(delays, 0.03 * 600)
    assert simulation.n_workflows == len(script.workflows)


def test_a_platform_is_validated_and_saved_with_the_scenario(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        PlatformConfig(compression=0)
    with pytest.raises(ValidationError):
        PlatformConfig.model_validate({"workflow_task": {"dist": "fixed", "seconds": -1}})
    with pytest.raises(ValidationError):
        PlatformConfig.model_validate({"queues": {"itsm-nowhere": {}}})
    scenario = _day().with_platform(WALL, compression=600)
    again = load_scenario(save_scenario(scenario, tmp_path / "with_platform.yaml"))
    assert again.platform == scenario.platform
    assert again.platform.compression == 600
    assert not again.platform.is_zero


def test_scaling_a_duration_model_scales_its_mean() -> None:
    for model in (Fixed(seconds=2.0), Exponential(mean_s=3.0), LogNormal(median_s=1.0, sigma=0.5)):
        assert scale_duration(model, 600).mean() == pytest.approx(model.mean() * 600)
