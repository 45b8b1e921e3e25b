"""``protocol-lab calibrate``: a timelines file in, a scenario YAML and an error table out."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from protocol_lab.cli import app
from protocol_lab.sim import load_scenario, simulate


def test_calibrate_command_writes_a_scenario_that_loads(tmp_path: Path) -> None:
    truth = load_scenario("mmc_validation").with_horizon(24, warmup_hours=0)
    log, _ = simulate(truth).write(tmp_path / "mmc.parquet")
    out = tmp_path / "fitted.yaml"
    result = CliRunner().invoke(
        app,
        ["calibrate", str(log), "--base", "mmc_validation", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "largest relative error" in result.output
    fitted = load_scenario(out)
    assert fitted.task_queue("itsm-workflows").workers == 8
    assert fitted.durations["M/M/c Service"]["serve"].dist in ("exponential", "gamma")
