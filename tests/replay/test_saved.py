"""A turn of the loop saved in a folder and judged again from it, without a service.

The service side here is another seed of the simulation; what matters is that the folder holds
enough to rebuild the same simulation, comparison and platform the turn had.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from protocol_lab.domain.durations import Empirical
from protocol_lab.replay import ReplayScript
from protocol_lab.replay.measure import PlatformMeasurement
from protocol_lab.replay.pipeline import LoopResult, _comparison
from protocol_lab.replay.player import ReplayResult
from protocol_lab.replay.readback import simulated_timelines
from protocol_lab.replay.saved import load_loop, load_warm_up, save_loop
from protocol_lab.sim import load_scenario, simulate
from protocol_lab.sim.platform import PlatformConfig
from protocol_lab.sim.platform_fit import platform_rows


def test_a_saved_turn_is_judged_again_as_it_was(tmp_path: Path) -> None:
    platform = PlatformConfig(workflow_task=Empirical(values_s=(0.01, 0.02, 0.05)))
    scenario = (
        load_scenario("demo_day").as_the_service_runs().with_platform(platform, compression=600)
    )
    script, simulation = ReplayScript.from_simulation(scenario, until_hours=12)
    simulated = simulated_timelines(simulation, until_s=script.end_s)
    other = simulated_timelines(
        simulate(scenario.model_copy(update={"seed": scenario.seed + 1})), until_s=script.end_s
    ).cache()
    warm_events = other.events.collect().head(50)
    loop = LoopResult(
        script=script,
        simulation=simulation,
        simulated=simulated,
        replay=ReplayResult(
            script=script, run_id="saved", compression=600.0, started_at=datetime.now(UTC)
        ),
        real=other,
        comparison=_comparison(
            simulated, other, simulation, script, by="workflow_name", step_replications=3
        ),
        platform=PlatformMeasurement(
            config=scenario.platform,
            table=platform_rows(scenario.platform),
            workflows=1,
            wall_s=1.0,
            events=warm_events,
        ),
        compression=600.0,
    )
    save_loop(loop, tmp_path)
    again = load_loop(tmp_path, calibrate=False)

    assert again.compression == 600.0
    assert again.script.end_s == script.end_s
    assert again.platform is not None
    assert again.platform.config == scenario.platform
    assert_frame_equal(
        again.simulated.events.collect(), simulated.events.collect(), check_dtypes=False
    )
    assert_frame_equal(
        again.real.events.collect().sort("workflow_id", "timestamp"),
        other.events.collect().sort("workflow_id", "timestamp"),
        check_dtypes=False,
    )
    assert_frame_equal(again.comparison.cycle_times, loop.comparison.cycle_times)
    warm = load_warm_up(tmp_path)
    assert warm is not None
    assert warm.height == 50
    assert load_warm_up(tmp_path / "elsewhere") is None
    assert pl.read_parquet(tmp_path / "replay.parquet").height == other.events.collect().height
