"""The closed loop's one implementation: what it refuses, the platform's latency measured before
the replay, the table of its targets, and ``protocol-lab replay`` through it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from protocol_lab.cli import app
from protocol_lab.client import AsyncClient
from protocol_lab.demo import ServiceHandle
from protocol_lab.domain import load_catalog
from protocol_lab.replay import (
    Action,
    LoopResult,
    ReplayResult,
    ReplayScript,
    ScriptedWorkflow,
    patient_retry,
    run_closed_loop_async,
)
from protocol_lab.replay.measure import sent_to_seen
from protocol_lab.replay.pipeline import describe
from protocol_lab.replay.targets import (
    CYCLE_KS,
    STEP_KS,
    latency_by_hour,
    loop_targets,
    target_lines,
)
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
    # each step row's chance of a miss by sampling alone; none for the paired cycle times
    assert step_rows["by_chance"].is_between(0.0, 1.0).all()
    assert targets.filter(pl.col("limit") != STEP_KS)["by_chance"].is_null().all()
    by_hour = latency_by_hour(loop)
    assert by_hour is not None
    assert by_hour.columns == ["hour", "n", "p50_ms", "mean_ms"]
    assert by_hour["n"].sum() > 0
    assert (by_hour["p50_ms"] > 0).all()


def test_delivery_counts_only_signals_sent_while_their_wait_was_open() -> None:
    """A signal sent before the service's wait began is taken when the wait begins: that is no
    delivery latency, and the warm-up's measurement leaves it out."""
    origin = datetime(2026, 11, 3, tzinfo=UTC)
    script = ReplayScript(
        name="two resets",
        origin=origin,
        actions=(
            Action(at_s=0.0, kind="create_ticket", ticket="T1"),
            Action(at_s=0.0, kind="create_ticket", ticket="T2"),
            Action(
                at_s=10.0,
                kind="signal",
                ticket="T2",
                workflow="w2",
                signal_name="identity_verified",
            ),
            Action(
                at_s=100.0,
                kind="signal",
                ticket="T1",
                workflow="w1",
                signal_name="identity_verified",
            ),
        ),
        workflows=(
            ScriptedWorkflow("w1", "T1", "Password Reset", 0, 0.0),
            ScriptedWorkflow("w2", "T2", "Password Reset", 0, 0.0),
        ),
    )
    played = ReplayResult(
        script=script,
        run_id="t",
        compression=600.0,
        started_at=origin,
        workflows={"w1": "r1", "w2": "r2"},
    )
    rows = [
        ("r1", "workflow_started", None, 6.0),
        ("r1", "activity_started", "verify_identity", 30.0),
        ("r1", "signal_received", "verify_identity", 106.0),
        ("r2", "workflow_started", None, 6.0),
        ("r2", "activity_started", "verify_identity", 30.0),
        ("r2", "signal_received", "verify_identity", 30.0),
    ]
    events = pl.DataFrame(
        {
            "workflow_id": [r[0] for r in rows],
            "workflow_name": ["Password Reset"] * len(rows),
            "event": [r[1] for r in rows],
            "step": [r[2] for r in rows],
            "timestamp": [origin + timedelta(seconds=r[3]) for r in rows],
        }
    )
    starts, signals = sent_to_seen(played, events, load_catalog())
    assert starts.tolist() == pytest.approx([6.0 / 600, 6.0 / 600])
    assert signals.tolist() == pytest.approx([6.0 / 600])


def test_the_warm_up_is_fitted_from_the_workflows_started_after_it_settled() -> None:
    """A long warm-up leaves out only its first hour (the worker warming up), a short one its
    first half, so a longer warm-up fits more workflows."""
    from protocol_lab.replay.measure import SETTLE_HOURS, _settled_workflows

    origin = datetime(2026, 11, 3, 9, tzinfo=UTC)
    hours_in = [0.25, 0.75, 1.25, 2.5, 5.5]
    workflows = pl.DataFrame(
        {
            "workflow_id": [f"wf_{i}" for i in range(len(hours_in))],
            "started_at": [origin + timedelta(hours=h) for h in hours_in],
        }
    )
    assert SETTLE_HOURS == 1.0
    assert _settled_workflows(workflows, origin, 6.0) == ["wf_2", "wf_3", "wf_4"]
    assert _settled_workflows(workflows, origin, 1.0) == ["wf_1", "wf_2", "wf_3", "wf_4"]
    assert _settled_workflows(workflows, origin, 3.0) == ["wf_2", "wf_3", "wf_4"]


def test_the_warm_up_counts_only_completed_activities_as_enough_to_fit() -> None:
    """The warm-up's second half is fitted alone only if it completed enough activities; the
    count leaves out signal waits and failed attempts."""
    from protocol_lab.replay.measure import _completed_activities

    steps = pl.DataFrame(
        {
            "kind": ["activity", "activity", "signal", "activity", "compensation"],
            "outcome": ["completed", "failed", "received", "completed", "completed"],
        }
    ).with_columns(pl.col("kind").cast(pl.Categorical))
    assert _completed_activities(steps) == 2
