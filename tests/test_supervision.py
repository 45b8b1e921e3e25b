"""Restarts with capped backoff, on real processes that exit."""

from __future__ import annotations

from pathlib import Path

from waiting import eventually_sync

from service.stack import ChildProcess
from service.supervision import Backoff, Supervisor


def test_the_delay_doubles_up_to_the_cap_and_resets_after_a_stable_run() -> None:
    backoff = Backoff(first_s=1.0, cap_s=30.0, stable_after_s=60.0)
    assert [backoff.delay(uptime_s=0.5) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(uptime_s=60.0) == 1.0
    assert backoff.delay(uptime_s=3.0) == 2.0


class _Clock:
    """Supervisor time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_child_that_exits_is_reported_once_and_restarted_after_its_delay(tmp_path: Path) -> None:
    child = ChildProcess("crasher", ["sh", "-c", "exit 3"], tmp_path / "crasher.log")
    lines: list[str] = []
    clock = _Clock()
    supervisor = Supervisor([child], report=lines.append, clock=clock)
    child.start()
    first = child.process
    try:
        eventually_sync(lambda: child.returncode is not None)
        supervisor.check()
        supervisor.check()
        assert lines == ["crasher exited with 3; restarting in 1.0 s (restart 1)"]
        assert child.process is first  # not before its delay

        clock.now += 1.0
        supervisor.check()
        assert child.process is not first
        eventually_sync(lambda: child.returncode is not None)
        supervisor.check()
        assert lines[1:] == ["crasher exited with 3; restarting in 2.0 s (restart 2)"]
    finally:
        child.stop()


def test_a_child_that_cannot_start_is_retried(tmp_path: Path) -> None:
    missing = tmp_path / "program"
    child = ChildProcess("flaky", [str(missing)], tmp_path / "flaky.log")
    lines: list[str] = []
    clock = _Clock()
    supervisor = Supervisor([child], report=lines.append, clock=clock)
    missing.write_text("#!/bin/sh\nexit 4\n")
    missing.chmod(0o755)
    child.start()
    eventually_sync(lambda: child.returncode is not None)
    supervisor.check()
    missing.unlink()
    clock.now += 1.0
    supervisor.check()
    assert lines[1].startswith("flaky could not start (")
    assert lines[1].endswith("retrying in 2.0 s")
    missing.write_text("#!/bin/sh\nexec sleep 60\n")
    missing.chmod(0o755)
    clock.now += 2.0
    supervisor.check()
    try:
        assert child.running
    finally:
        child.stop()
