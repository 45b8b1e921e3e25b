"""The closed loop's one implementation: what it refuses, and ``protocol-lab replay`` through it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from protocol_lab.cli import app
from protocol_lab.demo import ServiceHandle
from protocol_lab.replay import ReplayScript, run_closed_loop_async
from protocol_lab.replay.pipeline import describe
from protocol_lab.sim import SimulationResult

from .conftest import COMPRESSION


def test_a_script_without_its_simulation_is_refused(
    small_script: tuple[ReplayScript, SimulationResult],
) -> None:
    script, simulation = small_script
    client: Any = object()  # never reached
    with pytest.raises(ValueError, match="simulation"):
        asyncio.run(run_closed_loop_async(script, client, compression=COMPRESSION))
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
            "6",
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
