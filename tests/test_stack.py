"""The embedded stack: real Temporal and Redis start, run work, and leave nothing behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from bullmq import Queue, Worker
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker as TemporalWorker

from service.stack import EmbeddedRedis, free_port


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
        time.sleep(1.2)  # appendfsync everysec
    finally:
        server.stop()
    again = EmbeddedRedis(state_dir=tmp_path, port=server.port)
    again.start()
    try:
        assert redis.Redis(port=again.port).get("kept") == b"yes"
    finally:
        again.stop()


def _processes_mentioning(marker: str) -> list[int]:
    """Pids whose command line or environment names ``marker`` (the stack's state folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in text:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize(
    ("stop_signal", "parts"),
    [(signal.SIGINT, []), (signal.SIGTERM, ["--no-worker", "--no-api"])],
    ids=["ctrl-c-whole-stack", "sigterm-dependencies-only"],
)
def test_up_starts_the_parts_and_leaves_no_process_behind(
    tmp_path: Path, stop_signal: signal.Signals, parts: list[str]
) -> None:
    state = tmp_path / f"state-{uuid.uuid4().hex[:6]}"
    port = free_port()
    env = {**os.environ, "STATE_DIR": str(state), "PORT": str(port)}
    for name in ("TEMPORAL_ADDRESS", "REDIS_URL", "DATABASE_URL", "API_TOKENS"):
        env.pop(name, None)
    cli = str(Path(sys.executable).parent / "protocol-lab")
    proc = subprocess.Popen(
        [cli, "up", *parts],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "running" in line:
                break
        output = "".join(lines)
        assert "Temporal UI http://" in output, output
        assert "Redis      redis://" in output, output
        assert "development token (admin): dev_" in output, output
        # Temporal and Redis; with the whole stack also the worker and the API
        assert len(_processes_mentioning(str(state))) >= (2 if parts else 4)
        if not parts:
            import httpx  # here, not at the top: the workflow sandbox re-imports this module

            token = output.split("development token (admin): ")[1].split()[0]
            answer = httpx.get(
                f"http://127.0.0.1:{port}/v1/workflows",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"] == []
    finally:
        proc.send_signal(stop_signal)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while _processes_mentioning(str(state)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_mentioning(str(state)) == []
