"""Keep child processes running: a child that exits is started again after a capped backoff.

Each restart is reported in one line (``worker exited with -9; restarting in 1.0 s (restart
1)``). The delay doubles from ``first_s`` up to ``cap_s`` while a child keeps crashing, and goes
back to ``first_s`` once the child has stayed up for ``stable_after_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Backoff", "Restartable", "Supervisor"]


class Restartable(Protocol):
    """What the supervisor needs of a child process."""

    name: str

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has ended, else None."""

    @property
    def uptime_s(self) -> float:
        """Seconds since the last start."""

    def start(self) -> None:
        """Start (again)."""


@dataclass
class Backoff:
    """Capped exponential delays between restarts, reset by a long enough run."""

    first_s: float = 1.0
    cap_s: float = 30.0
    stable_after_s: float = 60.0
    _next_s: float = field(default=0.0, init=False)

    def delay(self, uptime_s: float) -> float:
        """The wait before the next start of a child that ran ``uptime_s`` seconds."""
        if self._next_s == 0.0 or uptime_s >= self.stable_after_s:
            self._next_s = self.first_s
        delay = self._next_s
        self._next_s = min(self.cap_s, delay * 2)
        return delay


@dataclass
class _Watch:
    child: Restartable
    backoff: Backoff
    restarts: int = 0
    due_at: float | None = None


class Supervisor:
    """Restarts the children that exit; call :meth:`check` often (or :meth:`run`)."""

    def __init__(
        self,
        children: Sequence[Restartable],
        *,
        report: Callable[[str], None],
        backoff: Callable[[], Backoff] = Backoff,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._watches = [_Watch(child, backoff()) for child in children]
        self._report = report
        self._clock = clock

    def check(self) -> None:
        """Schedule a restart for each child that has exited; start those whose time has come."""
        now = self._clock()
        for watch in self._watches:
            child = watch.child
            if watch.due_at is None:
                if child.returncode is None:
                    continue
                delay = watch.backoff.delay(child.uptime_s)
                watch.restarts += 1
                watch.due_at = now + delay
                self._report(
                    f"{child.name} exited with {child.returncode}; "
                    f"restarting in {delay:.1f} s (restart {watch.restarts})"
                )
            elif now >= watch.due_at:
                watch.due_at = None
                try:
                    child.start()
                except Exception as exc:  # a failed start is retried, like a crash
                    delay = watch.backoff.delay(0.0)
                    watch.due_at = now + delay
                    self._report(f"{child.name} could not start ({exc}); retrying in {delay:.1f} s")

    def run(self, *, every_s: float = 0.5) -> None:
        """Check forever; only an exception (KeyboardInterrupt on Ctrl-C or SIGTERM) ends it."""
        while True:
            self.check()
            time.sleep(every_s)
