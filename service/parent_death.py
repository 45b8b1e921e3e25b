"""Child processes that die with their parent, even when the parent is killed with SIGKILL.

On Linux the child asks the kernel for SIGKILL when its parent goes
(``prctl(PR_SET_PDEATHSIG)``). A tiny Python prologue makes that request and then ``exec``s the
real program, so the child keeps its pid and no ``preexec_fn`` runs in a forked copy of a
threaded parent. The kernel ties the request to the *thread* that forked, not to the process:
children are therefore forked only from the main thread or from one spawner thread that lives as
long as the process, never from a short-lived thread whose end would kill them.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["spawn", "with_parent_death_signal"]

T = TypeVar("T")

# argv: <parent pid> <program> <args...>. The parent may have died between fork and prctl; the
# child then has another parent already and exits instead of running orphaned.
_PROLOGUE = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(1)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


class _Spawner:
    """One daemon thread that runs the forks asked of it; as a daemon it is never joined, so it
    lives until the process itself ends, and so do the children it forked."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="child-spawner", daemon=True).start()

    def _serve(self) -> None:
        while True:
            job, future = self._jobs.get()
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the thread that asked
                future.set_exception(exc)

    def run(self, job: Callable[[], T]) -> T:
        """Run ``job`` on the spawner thread; its result, or its exception raised here."""
        future: Future[T] = Future()
        self._jobs.put((job, future))
        return future.result()


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def with_parent_death_signal(argv: Sequence[str], env: Mapping[str, str] | None) -> list[str]:
    """``argv`` behind the prologue that makes the child die with this process (Linux only).

    The program is looked up on ``PATH`` here, so a missing one fails at once as it would
    without the prologue.
    """
    program = shutil.which(argv[0], path=(env if env is not None else os.environ).get("PATH"))
    if program is None:
        raise FileNotFoundError(f"no such program: {argv[0]!r}")
    if not sys.platform.startswith("linux"):
        return [program, *argv[1:]]
    return [sys.executable, "-I", "-S", "-c", _PROLOGUE, str(os.getpid()), program, *argv[1:]]


def spawn(start: Callable[[], T]) -> T:
    """Run ``start`` (which forks) on the main thread or on the long-lived spawner thread."""
    if threading.current_thread() is threading.main_thread():
        return start()
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
    return _spawner.run(start)
