"""The command line as operators expect it (issue 14 item 8): ``serve`` listens on HOST and
PORT, ``plan`` exits non-zero when a target cannot be met, every command's ``--help`` has
examples, and an error is one readable line with a non-zero exit code, not a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import typer
from typer.testing import CliRunner
from waiting import eventually_sync

from protocol_lab.cli import app
from service.stack import free_port

CLI = [sys.executable, "-m", "protocol_lab.cli"]


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every command below ``command`` (a group has ``commands``)."""
    if hasattr(command, "commands"):
        return [
            found
            for name, sub in command.commands.items()
            for found in _commands(sub, (*path, name))
        ]
    return [path]


def test_every_command_has_examples_in_its_help() -> None:
    commands = _commands(typer.main.get_command(app))
    assert len(commands) >= 12
    for path in commands:
        result = CliRunner().invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Example" in result.output, (path, result.output)
        assert "protocol-lab " + path[0] in result.output.split("Example")[1], path


def test_an_error_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    for args in (["simulate", "no_such_scenario"], ["report", str(tmp_path / "missing.parquet")]):
        done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, (args, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("error: "), line
    named = subprocess.run(
        [*CLI, "simulate", "no_such_scenario"], capture_output=True, text=True, timeout=120
    )
    assert "no_such_scenario" in named.stderr


def test_plan_exits_non_zero_when_a_target_cannot_be_met(tmp_path: Path) -> None:
    figure = tmp_path / "cap.png"
    result = CliRunner().invoke(
        app,
        [
            "plan",
            "mmc_validation",
            "--target",
            "itsm-workflows:p95 wait<=1s",
            "--max-workers",
            "1",
            "--horizon-hours",
            "6",
            "--replications",
            "2",
            "--processes",
            "1",
            "--figure",
            str(figure),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "NOT MET" in result.output
    assert "target not met for itsm-workflows with at most 1 workers" in result.output
    assert figure.exists()  # the picture is saved all the same


def test_serve_listens_on_host_and_port(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "STATE_DIR": str(tmp_path / "state"),
        # Nothing listens there: the API starts all the same (lazy Temporal client).
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    env.pop("DATABASE_URL", None)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([*CLI, "serve"], env=env, stdout=log, stderr=log)
    try:

        def healthy() -> bool:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        eventually_sync(healthy, within_s=60, every_s=0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        log.close()
    assert "uvicorn.access" in (tmp_path / "serve.log").read_text()
