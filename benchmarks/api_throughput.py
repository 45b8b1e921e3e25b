"""Workflow starts through the API against starts straight through the temporalio client.

Starts its own stack (Temporal dev server and Redis from the wheels, the API under uvicorn in a
child process, a SQLite store in a temporary folder), then, in alternating rounds on the same
server and with the same concurrency:

- N workflows started with POST /v1/workflows;
- N workflows started with ``Client.start_workflow`` (the same workflow, input and search
  attributes the API sends);

and prints both rates and their ratio (target: the API reaches at least 0.7 of the direct rate).
Then 32 concurrent clients poll GET /v1/workflows/:id/status and the p50 / p99 latency is printed,
beside the same reads made straight with ``describe()`` as a baseline.
No worker runs: starting and reading status need none, so the figures are the API's own cost.

    .venv/bin/python benchmarks/api_throughput.py [--n 300] [--rounds 3] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from protocol_lab.domain import load_catalog
from protocol_lab.domain.wire import MEMO_STATE, PlanInput
from service.stack import ChildProcess, EmbeddedRedis, EmbeddedTemporal, free_port
from service.temporal import search_attributes as sa
from service.temporal.ids import new_workflow_id, order_of
from service.temporal.workflows import PlanWorkflow
from service.workflows.starter import initial_state

TOKEN = "bench-token"
NAME = "VPN Access Revocation"
QUEUE = "itsm-network"
INPUT = {"ticket_id": "TKT-5102", "user_id": "usr_9xKmPq"}


async def via_api(api: httpx.AsyncClient, n: int, concurrency: int) -> tuple[float, list[str]]:
    gate = asyncio.Semaphore(concurrency)
    ids: list[str] = []

    async def one() -> None:
        async with gate:
            response = await api.post(
                "/v1/workflows",
                json={"name": NAME, "task_queue": QUEUE, "trigger_type": "manual", "input": INPUT},
            )
            response.raise_for_status()
            ids.append(response.json()["id"])

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return n / (time.perf_counter() - start), ids


async def direct(client: Client, n: int, concurrency: int) -> float:
    plan = load_catalog()[NAME]
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        workflow_id = new_workflow_id()
        async with gate:
            await client.start_workflow(
                PlanWorkflow.run,
                PlanInput(
                    name=NAME,
                    task_queue=QUEUE,
                    trigger_type="manual",
                    plan=plan.model_dump(mode="json"),
                    input=dict(INPUT),
                ),
                id=workflow_id,
                task_queue=QUEUE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(sa.STATUS, "active"),
                        SearchAttributePair(sa.NAME, NAME),
                        SearchAttributePair(sa.TRIGGER_TYPE, "manual"),
                        SearchAttributePair(sa.ORDER, order_of(workflow_id)),
                        SearchAttributePair(sa.TICKET_ID, INPUT["ticket_id"]),
                    ]
                ),
                memo={MEMO_STATE: initial_state(plan, status="active")},
            )

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return n / (time.perf_counter() - start)


async def status_latency(
    api: httpx.AsyncClient, ids: list[str], *, clients: int, requests: int
) -> list[float]:
    latencies: list[float] = []
    per_client = requests // clients

    async def poller(k: int) -> None:
        for i in range(per_client):
            workflow_id = ids[(k * per_client + i) % len(ids)]
            start = time.perf_counter()
            response = await api.get(f"/v1/workflows/{workflow_id}/status")
            latencies.append(time.perf_counter() - start)
            response.raise_for_status()

    await asyncio.gather(*(poller(k) for k in range(clients)))
    return latencies


async def describe_latency(
    client: Client, ids: list[str], *, clients: int, requests: int
) -> list[float]:
    """The same reads straight through the client (describe), as a baseline."""
    latencies: list[float] = []
    per_client = requests // clients

    async def poller(k: int) -> None:
        for i in range(per_client):
            workflow_id = ids[(k * per_client + i) % len(ids)]
            start = time.perf_counter()
            await client.get_workflow_handle(workflow_id).describe()
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(poller(k) for k in range(clients)))
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace, temporal: EmbeddedTemporal, api_url: str) -> None:
    client = await Client.connect(temporal.address)
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=api_url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
        limits=limits,
    ) as api:
        # warm up both paths (connections, imports, first writes)
        await via_api(api, 20, args.concurrency)
        await direct(client, 20, args.concurrency)
        api_rates, direct_rates, ids = [], [], []
        for _ in range(args.rounds):
            d = await direct(client, args.n, args.concurrency)
            a, made = await via_api(api, args.n, args.concurrency)
            direct_rates.append(d)
            api_rates.append(a)
            ids += made
        api_rate = statistics.mean(api_rates)
        direct_rate = statistics.mean(direct_rates)
        print(
            f"workflows started: {args.n} x {args.rounds} rounds each way, "
            f"concurrency {args.concurrency}"
        )
        print(f"  direct (temporalio client): {direct_rate:8.1f} /s  rounds {_fmt(direct_rates)}")
        print(f"  API (POST /v1/workflows):   {api_rate:8.1f} /s  rounds {_fmt(api_rates)}")
        print(f"  ratio API / direct:         {api_rate / direct_rate:8.2f}  (target >= 0.70)")
        for label, latencies in (
            (
                "GET /v1/workflows/:id/status",
                await status_latency(api, ids, clients=32, requests=args.status_requests),
            ),
            (
                "baseline: describe() direct",
                await describe_latency(client, ids, clients=32, requests=args.status_requests),
            ),
        ):
            print(f"{label}, 32 concurrent clients, {len(latencies)} requests:")
            print(
                f"  p50 {percentile(latencies, 0.50) * 1000:7.1f} ms   "
                f"p99 {percentile(latencies, 0.99) * 1000:7.1f} ms   "
                f"throughput {len(latencies) / sum(latencies) * 32:7.1f} /s"
            )


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in values) + "]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="workflows per round and path")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--status-requests", type=int, default=3200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="api-bench-") as tmp:
        state = Path(tmp)
        temporal = EmbeddedTemporal(state_dir=state / "temporal", ui=False)
        redis = EmbeddedRedis(state_dir=state)
        temporal.start()
        redis.start()
        port = free_port()
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": temporal.address,
            "REDIS_URL": redis.url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{state / 'service.db'}",
            "STATE_DIR": str(state),
            "API_TOKENS": f"{TOKEN}=write",
        }
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "service.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
        api = ChildProcess("api", argv, state / "logs" / "api.log", env)
        api.start()
        try:
            for _ in range(300):
                api.check_alive()
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            asyncio.run(run(args, temporal, f"http://127.0.0.1:{port}"))
        finally:
            api.stop()
            redis.stop()
            temporal.stop()


if __name__ == "__main__":
    main()
