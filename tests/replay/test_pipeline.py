"""The closed loop's one implementation: what it refuses, the platform's latency measured before
the replay, the table of its targets, and ``protocol-lab replay`` through it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from protocol_lab.cli import app
from protocol_lab.client import AsyncClient
from protocol_lab.demo import ServiceHandle
from protocol_lab.replay import LoopResult, ReplayScript, patient_retry, run_closed_loop_async
from protocol_lab.replay.pipeline import describe
from protocol_lab.replay.targets import CYCLE_KS, STEP_KS, loop_targets, target_lines
from protocol_lab.sim import SimulationResult, load_scenario

from .conftest import COMPRESSION


def test_a_script_without_its_simulation_is_refused(
    small_script: tuple[ReplayScript, SimulationResult],
) -> None:
    script, simulation = small_script
    client: Any = object()  # never reached
    with pytest.raises(ValueError, match="simulation"):
        asyncio.run(run_closed_loop_async(script, client, compression=COMPRESSION))
    with pytest.raises(ValueError, match="scenario"):
        asyncio.run(
            run_closed_loop_async(
                script, client, compression=COMPRESSION, simulation=simulation, measure=True
            )
        )
    line = describe(script, simulation, COMPRESSION)
    assert f"replaying {len(script)} calls" in line


def test_replay_command_runs_the_loop_and_writes_the_comparison(
    live: ServiceHandle, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app,
        [
            "replay",
            "demo_day",
            "--base-url",
            live.base_url,
            "--token",
            live.token,
            "--compression",
            str(COMPRESSION),
            "--until-hours",
            "10",
            "--concurrency",
            "8",
            "--temporal-address",
            live.temporal_address,
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "replaying" in result.output
    assert "all workflows" in result.output
    assert (tmp_path / "comparison.html").is_file()


def test_the_loop_simulates_with_the_measured_platform_and_checks_its_targets(
    live: ServiceHandle,
) -> None:
    async def main() -> LoopResult:
        async with AsyncClient(
            base_url=live.base_url, token=live.token, retry=patient_retry(), timeout=30.0
        ) as client:
            return await run_closed_loop_async(
                load_scenario("demo_day"),
                client,
                compression=COMPRESSION,
                until_hours=12,
                measure=True,
                measure_hours=2,
                progress=False,
                temporal_address=live.temporal_address,
                replications=1,
            )

    loop = asyncio.run(main())
    assert loop.platform is not None
    measured = loop.platform.config
    # the service takes time between steps, and the simulation compared adds it
    assert measured.workflow_task.mean() > 0
    assert measured.compression == COMPRESSION
    assert loop.simulation.scenario.platform == measured
    assert loop.platform.table.height >= 3

    targets = loop_targets(loop)
    steps = loop.comparison.steps.filter(
        (pl.col("kind") == "activity") & pl.col("ks").is_not_null()
    )
    step_rows = targets.filter(pl.col("limit") == STEP_KS)
    assert step_rows.height == steps.height > 0
    assert sorted(step_rows["measured"].to_list()) == sorted(steps["ks"].to_list())
    ks_rows = targets.filter(pl.col("limit").is_in([CYCLE_KS, STEP_KS]))
    assert (ks_rows["met"] == (ks_rows["measured"] <= ks_rows["limit"])).all()
    missed = targets.filter(~pl.col("met"))
    assert (missed["why"].str.len_chars() > 0).all()
    assert loop.calibration is not None
    assert loop.calibration.error is not None
    assert loop.known_calibration is not None
    assert loop.known_calibration.error is not None
    from_service = targets.filter(pl.col("target").str.contains("service"))
    assert from_service.height == loop.calibration.error.height
    assert len(target_lines(targets)) == targets["target"].n_unique()
