"""The embedded stack: real Temporal and Redis start, run work, survive crashes of their parts and
leave nothing behind, even when the process that started them is killed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from bullmq import Queue, Worker
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker as TemporalWorker
from waiting import eventually_sync

from service.settings import Settings
from service.stack import ChildProcess, EmbeddedRedis, Stack, StackError, free_port


@dataclass
class GreetInput:
    name: str


@activity.defn
async def compose_greeting(data: GreetInput) -> str:
    return f"Hello, {data.name}"


@workflow.defn
class GreetingWorkflow:
    @workflow.run
    async def run(self, data: GreetInput) -> str:
        return await workflow.execute_activity(
            compose_greeting, data, start_to_close_timeout=timedelta(seconds=10)
        )


async def test_a_real_workflow_runs_on_the_dev_server(temporal_client: Client) -> None:
    queue = f"test-{uuid.uuid4()}"
    async with TemporalWorker(
        temporal_client,
        task_queue=queue,
        workflows=[GreetingWorkflow],
        activities=[compose_greeting],
    ):
        result = await temporal_client.execute_workflow(
            GreetingWorkflow.run, GreetInput("Temporal"), id=f"wf-{uuid.uuid4()}", task_queue=queue
        )
    assert result == "Hello, Temporal"


async def test_custom_search_attributes_are_registered(temporal_client: Client) -> None:
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    response = await temporal_client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=temporal_client.namespace)
    )
    assert {"ProtocolStatus", "ProtocolName", "ProtocolOrder"} <= set(response.custom_attributes)


async def _round_trip(redis_url: str) -> dict[str, object]:
    name = f"roundtrip-{uuid.uuid4().hex[:8]}"
    done: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()

    async def process(job: object, token: str) -> str:
        data = job.data  # type: ignore[attr-defined]
        if not done.done():
            done.set_result(data)
        return "ok"

    queue = Queue(name, {"connection": redis_url})
    worker = Worker(name, process, {"connection": redis_url})
    try:
        await queue.add("ping", {"ticket": "TKT-1", "n": 7})
        return await asyncio.wait_for(done, timeout=15)
    finally:
        await worker.close()
        await queue.obliterate({"force": True})
        await queue.close()


async def test_bullmq_round_trip_on_embedded_redis(embedded_redis: EmbeddedRedis) -> None:
    assert await _round_trip(embedded_redis.url) == {"ticket": "TKT-1", "n": 7}


async def test_bullmq_round_trip_on_machine_redis(machine_redis_url: str) -> None:
    assert await _round_trip(machine_redis_url) == {"ticket": "TKT-1", "n": 7}


def test_embedded_redis_keeps_data_across_a_restart(tmp_path: Path) -> None:
    import redis

    server = EmbeddedRedis(state_dir=tmp_path)
    server.start()
    try:
        redis.Redis(port=server.port).set("kept", "yes")
        aof = tmp_path / "redis" / "appendonly.aof"
        eventually_sync(lambda: aof.exists() and b"kept" in aof.read_bytes(), within_s=10)
    finally:
        server.stop()
    again = EmbeddedRedis(state_dir=tmp_path, port=server.port)
    again.start()
    try:
        assert redis.Redis(port=again.port).get("kept") == b"yes"
    finally:
        again.stop()


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name, or None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def _parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return None if fields is None else int(fields[1])


def _live_pids() -> list[int]:
    pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    return [pid for pid in pids if _alive(pid)]


def _kill_leftovers(pids: list[int]) -> None:
    """SIGKILL what a failed test left running, so it cannot disturb the next tests."""
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class RunningUp:
    """A ``protocol-lab up`` process with its output in files."""

    proc: subprocess.Popen[bytes]
    state: Path
    port: int
    stdout: Path
    stderr: Path
    token: str = field(default="", init=False)
    seen: set[int] = field(default_factory=set, init=False)
    """Every child pid seen so far, for the clean-up after a failed test."""

    def wait_until_running(self) -> str:
        """The output up to ``running``; fails if ``up`` exits first."""

        def running() -> str | None:
            assert self.proc.poll() is None, self.stderr.read_text()
            output = self.stdout.read_text()
            return output if "running" in output else None

        output = eventually_sync(running, within_s=120, every_s=0.2)
        if "development token (admin): " in output:
            self.token = output.split("development token (admin): ")[1].split()[0]
        return output

    def children(self) -> list[int]:
        """The live child processes of ``up``."""
        children = [pid for pid in _live_pids() if _parent_of(pid) == self.proc.pid]
        self.seen.update(children)
        return children

    def pid_of(self, program: str) -> int | None:
        """The pid of the child of ``up`` whose command line has the word (or program) given."""
        for pid in self.children():
            with contextlib.suppress(OSError):
                words = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
                if any(w == program.encode() or w.endswith(b"/" + program.encode()) for w in words):
                    return pid
        return None

    def get(self, path: str) -> Any:
        """GET on the API with the development token; the answer must be a 200."""
        import httpx  # here, not at the top: the workflow sandbox re-imports this module

        answer = httpx.get(
            f"http://127.0.0.1:{self.port}{path}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def start_workflow(self) -> str | None:
        """Start a short workflow (VPN revocation, timers divided by 100 000); its id, or None
        while the API cannot start it."""
        import httpx

        with contextlib.suppress(httpx.TransportError):
            created = httpx.post(
                f"http://127.0.0.1:{self.port}/v1/workflows",
                headers={"Authorization": f"Bearer {self.token}"},
                json={
                    "name": "VPN Access Revocation",
                    "task_queue": "itsm-network",
                    "input": {"ticket_id": "TKT-1"},
                    "time_scale": 100_000,
                },
                timeout=10,
            )
            if created.status_code == 201:
                return str(created.json()["id"])
        return None


@contextlib.contextmanager
def _up(tmp_path: Path, *parts: str) -> Iterator[RunningUp]:
    """``protocol-lab up`` on a fresh state folder and a free port; SIGKILLed if still running."""
    state = tmp_path / f"state-{uuid.uuid4().hex[:6]}"
    port = free_port()
    env = {**os.environ, "STATE_DIR": str(state), "PORT": str(port)}
    for name in ("TEMPORAL_ADDRESS", "REDIS_URL", "DATABASE_URL", "API_TOKENS"):
        env.pop(name, None)
    cli = str(Path(sys.executable).parent / "protocol-lab")
    stdout, stderr = tmp_path / "up.out", tmp_path / "up.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen([cli, "up", *parts], env=env, stdout=out, stderr=err)
    up = RunningUp(proc, state, port, stdout, stderr)
    try:
        yield up
    finally:
        up.children()
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        _kill_leftovers(sorted(up.seen))


def test_up_restarts_crashed_parts_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    import httpx  # here, not at the top: the workflow sandbox re-imports this module

    with _up(tmp_path) as up:
        output = up.wait_until_running()
        assert "Temporal UI http://" in output, output
        assert "Redis      redis://" in output, output
        assert up.token.startswith("dev_"), output
        assert len(up.children()) == 4  # Temporal, Redis, the worker and the API
        assert up.get("/v1/workflows") == {"has_more": False, "data": []}

        worker = up.pid_of("worker")
        assert worker is not None
        os.kill(worker, signal.SIGKILL)

        def new_worker_while_the_api_answers() -> int | None:
            up.get("/v1/workflows")
            pid = up.pid_of("worker")
            return pid if pid not in (None, worker) else None

        eventually_sync(new_worker_while_the_api_answers, within_s=60)

        # the API next, while the new worker still starts up
        api = up.pid_of("serve")
        assert api is not None
        os.kill(api, signal.SIGKILL)

        def api_answers_from_a_new_process() -> bool:
            pid = up.pid_of("serve")
            if pid in (None, api):
                return False
            with contextlib.suppress(httpx.TransportError):
                return up.get("/v1/workflows") is not None
            return False

        eventually_sync(api_answers_from_a_new_process, within_s=60)
        workflow = eventually_sync(up.start_workflow, within_s=30)
        status = f"/v1/workflows/{workflow}/status"
        eventually_sync(lambda: up.get(status)["status"] == "completed", within_s=120)

        # Operable: ready, and metrics from the API and from the worker's Temporal runtime.
        ready = httpx.get(f"http://127.0.0.1:{up.port}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"].values()) == {"ok"}
        metrics = httpx.get(f"http://127.0.0.1:{up.port}/metrics", timeout=10).text
        assert 'protocol_workflow_starts_total{task_queue="itsm-network"' in metrics, metrics
        assert 'protocol_queue_jobs{queue="email",state="waiting"}' in metrics, metrics
        worker_metrics = output.split("Worker metrics ")[1].split()[0]

        def worker_counted_the_completion() -> bool:
            with contextlib.suppress(httpx.TransportError):
                text = httpx.get(worker_metrics, timeout=10).text
                return "temporal_workflow_completed" in text and "itsm-network" in text
            return False

        eventually_sync(worker_counted_the_completion, within_s=30)

        temporal, redis = up.pid_of("start-dev"), up.pid_of("redis-server")
        assert temporal is not None
        assert redis is not None
        os.kill(temporal, signal.SIGKILL)
        os.kill(redis, signal.SIGKILL)
        eventually_sync(lambda: up.pid_of("start-dev") not in (None, temporal), within_s=30)
        eventually_sync(lambda: up.pid_of("redis-server") not in (None, redis), within_s=30)
        workflow = eventually_sync(up.start_workflow, within_s=60)
        status = f"/v1/workflows/{workflow}/status"
        eventually_sync(lambda: up.get(status)["status"] == "completed", within_s=120)

        errors = up.stderr.read_text()
        assert "worker exited with -9; restarting in 1.0 s (restart 1)\n" in errors, errors
        assert "api exited with -9; restarting in 1.0 s (restart 1)\n" in errors, errors
        assert "temporal exited with -9; restarting in 1.0 s (restart 1)\n" in errors, errors
        assert "redis exited with -9; restarting in 1.0 s (restart 1)\n" in errors, errors
        assert "Traceback" not in errors, errors

        children = up.children()
        assert len(children) == 4
        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(timeout=60) == 0, up.stderr.read_text()
        eventually_sync(lambda: not any(_alive(pid) for pid in children), within_s=10)


def test_sigterm_stops_the_dependencies_and_exits_0(tmp_path: Path) -> None:
    with _up(tmp_path, "--no-worker", "--no-api") as up:
        output = up.wait_until_running()
        assert "Redis      redis://" in output, output
        children = up.children()
        assert len(children) == 2  # Temporal and Redis
        up.proc.send_signal(signal.SIGTERM)
        assert up.proc.wait(timeout=60) == 0, up.stderr.read_text()
        eventually_sync(lambda: not any(_alive(pid) for pid in children), within_s=10)
        assert "Traceback" not in up.stderr.read_text()


def test_killing_up_takes_every_child_with_it(tmp_path: Path) -> None:
    with _up(tmp_path) as up:
        up.wait_until_running()
        children = up.children()
        assert len(children) == 4  # Temporal, Redis, the worker and the API
        up.proc.kill()
        up.proc.wait(timeout=10)
        eventually_sync(lambda: not any(_alive(pid) for pid in children), within_s=15)


_PARENT = """
import sys, threading
from pathlib import Path
from service.stack import ChildProcess, EmbeddedRedis
from waiting import eventually_sync

def running_sleep(child):
    # the program itself, not the prologue that execs it (the prologue asks for the signal)
    argv0 = Path(f"/proc/{child.process.pid}/cmdline").read_bytes().split(b"\\0")[0]
    return argv0.endswith(b"/sleep")

def start_and_outlive_the_exec(child):
    child.start()
    eventually_sync(lambda: running_sleep(child))

folder = Path(sys.argv[1])
from_thread = ChildProcess("thread", ["sleep", "60"], folder / "thread.log")
starter = threading.Thread(target=start_and_outlive_the_exec, args=(from_thread,))
starter.start()
starter.join()
redis = EmbeddedRedis(state_dir=folder)
redis.start()
from_main = ChildProcess("main", ["sleep", "60"], folder / "main.log")
start_and_outlive_the_exec(from_main)
print(redis.child.process.pid, from_main.process.pid, from_thread.process.pid, flush=True)
sys.stdin.read()
"""


def test_children_die_with_a_parent_killed_by_sigkill(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    children = [int(pid) for pid in parent.stdout.readline().split()]
    try:
        assert len(children) == 3, parent.wait(timeout=30)
        # the child started from a thread outlived the thread while Redis and the other started
        assert all(_alive(pid) for pid in children)
        parent.kill()
        parent.wait(timeout=10)
        eventually_sync(lambda: not any(_alive(pid) for pid in children), within_s=10)
    finally:
        if parent.poll() is None:
            parent.kill()
        _kill_leftovers(children)


class _StopFails(ChildProcess):
    """A child whose stop raises before it does anything (a stop that goes wrong)."""

    def stop(self, *, timeout: float = 10.0) -> None:
        raise OSError(f"{self.name} refused to stop")


def test_a_child_whose_stop_fails_does_not_keep_the_others_running(tmp_path: Path) -> None:
    stack = Stack(Settings(state_dir=tmp_path, temporal_address="-", redis_url="-"))
    first = ChildProcess("first", ["sleep", "60"], tmp_path / "first.log")
    stuck = _StopFails("stuck", ["sleep", "60"], tmp_path / "stuck.log")
    last = ChildProcess("last", ["sleep", "60"], tmp_path / "last.log")
    for child in (first, stuck, last):
        child.start()
        stack.children.append(child)
    try:
        with pytest.raises(StackError, match="stuck refused to stop"):
            stack.stop()
        assert not first.running
        assert not last.running
    finally:
        ChildProcess.stop(stuck)
        first.kill()
