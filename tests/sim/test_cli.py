"""`protocol-lab simulate` and `protocol-lab plan`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from protocol_lab.analytics import Timelines
from protocol_lab.cli import app


def test_simulate_writes_timelines_that_the_analytics_load(tmp_path: Path) -> None:
    out = tmp_path / "tl.parquet"
    res = CliRunner().invoke(
        app, ["simulate", "mmc_validation", "--horizon-hours", "6", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "itsm-workflows" in res.output
    tl = Timelines.from_file(out)
    assert tl.events.collect().height > 1000
    assert (tmp_path / "tl.workflows.parquet").exists()


def test_plan_prints_workers_and_saves_the_picture(tmp_path: Path) -> None:
    fig = tmp_path / "cap.png"
    res = CliRunner().invoke(
        app,
        [
            "plan",
            "mmc_validation",
            "--target",
            "itsm-workflows:p95 wait<=2m",
            "--horizon-hours",
            "6",
            "--replications",
            "2",
            "--processes",
            "1",
            "--figure",
            str(fig),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "itsm-workflows" in res.output
    assert "workers" in res.output
    assert fig.stat().st_size > 1000
