"""``protocol-lab serve --workers N``: N worker processes answer on one port, each logging
through the service's set-up (a worker starts as a new interpreter)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from waiting import eventually_sync

from service.stack import free_port

CLI = [sys.executable, "-m", "protocol_lab.cli"]


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _is_uvicorn_worker(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except FileNotFoundError:
        return False
    return b"multiprocessing" in command and b"resource_tracker" not in command


def test_serve_runs_the_workers_asked_for_and_each_logs_its_requests(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "STATE_DIR": str(tmp_path / "state"),
        # Nothing listens there: the API starts all the same (lazy Temporal client).
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "API_WORKERS": "1",  # the option wins over the setting
    }
    env.pop("DATABASE_URL", None)
    log_path = tmp_path / "serve.log"
    log = log_path.open("wb")
    proc = subprocess.Popen([*CLI, "serve", "--workers", "2"], env=env, stdout=log, stderr=log)
    try:

        def two_workers_answer() -> bool:
            assert proc.poll() is None, log_path.read_text()
            workers = [c for c in _children(proc.pid) if _is_uvicorn_worker(c)]
            try:
                healthy = (
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
                )
            except httpx.TransportError:
                return False
            return healthy and len(workers) == 2

        eventually_sync(two_workers_answer, within_s=90, every_s=0.3)
        for _ in range(20):  # new connections, spread over the workers
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        log.close()
    text = log_path.read_text()
    access = [line for line in text.splitlines() if "uvicorn.access" in line and "/healthz" in line]
    assert len(access) >= 21, text
