"""The HTML report and the ``protocol-lab report`` command."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from protocol_lab.analytics import Timelines
from protocol_lab.analytics.report import write_report
from protocol_lab.cli import app

from .factory import frame, laptop


def test_report_writes_html_and_pictures(tmp_path: Path) -> None:
    tl = Timelines.from_frame(frame(laptop("a") + laptop("b", start=90, outcome="failed")))
    index = write_report(tl, tmp_path / "out", every="1h")
    page = index.read_text()
    assert "SLA attainment by task_queue" in page
    assert "Bottlenecks" in page
    for name in ("cumulative_flow.png", "cycle_time_ecdf.png", "throughput.png"):
        assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"
        assert name in page


def test_cli_report_command(tmp_path: Path) -> None:
    source = tmp_path / "t.parquet"
    frame(laptop("a") + laptop("b", start=90)).write_parquet(source)
    result = CliRunner().invoke(
        app, ["report", str(source), "--out", str(tmp_path / "r"), "--every", "1h"]
    )
    assert result.exit_code == 0, result.output
    assert "report written to" in result.output
    assert (tmp_path / "r" / "index.html").exists()
