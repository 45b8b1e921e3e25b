"""Workflow starts through the API against starts straight through the temporalio client.

Starts its own stack (Temporal dev server and Redis from the wheels, the API under uvicorn in a
child process, a SQLite store in a temporary folder), then, in alternating rounds on the same
server and with the same concurrency:

- N workflows started with POST /v1/workflows;
- N workflows started with ``Client.start_workflow`` (the same workflow, input and search
  attributes the API sends);

and prints both rates and their ratio (target: the API reaches at least 0.7 of the direct rate).

Then reads, 32 concurrent clients, each measured in alternating rounds against its direct
equivalent on the same workflows: GET /v1/workflows/:id/status against ``describe()``, and
GET /v1/workflows/:id against ``describe()`` with ``fetch_history()`` (what the answer is made
of). Printed: throughput (requests over wall time), p50 and p99, and the ratios (target: API
throughput at least 0.5 of direct, API p99 at most 2x direct).

The API runs as deployed: ``protocol-lab serve`` in a child process (``--api-workers``, default
serve's own default from the core count). No worker runs: starting and reading need none, so the
figures are the API's own cost.

    .venv/bin/python benchmarks/api_throughput.py [--n 300] [--rounds 3] [--concurrency 32]
        [--reads 3200] [--api-workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from protocol_lab.domain import load_catalog
from protocol_lab.domain.wire import MEMO_STATE, PlanInput
from service.executions.starter import initial_state
from service.stack import ChildProcess, EmbeddedRedis, EmbeddedTemporal, free_port
from service.temporal import search_attributes as sa
from service.temporal.ids import new_workflow_id, order_of
from service.temporal.plan_workflow import PlanWorkflow

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


Read = Callable[[str], Awaitable[object]]


@dataclass
class ReadFigures:
    """Latencies of one kind of read and the wall time they took."""

    latencies: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def rate(self) -> float:
        """Requests per second of wall time."""
        return len(self.latencies) / self.wall_s if self.wall_s else 0.0

    def p(self, q: float) -> float:
        """The ``q`` quantile of the latencies, in seconds."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed_reads(
    read: Read, ids: list[str], figures: ReadFigures, *, clients: int, requests: int
) -> None:
    """``requests`` reads of ``ids`` by ``clients`` concurrent clients, added to ``figures``."""
    per_client = requests // clients

    async def poller(k: int) -> None:
        for i in range(per_client):
            workflow_id = ids[(k * per_client + i * 7) % len(ids)]
            start = time.perf_counter()
            await read(workflow_id)
            figures.latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(poller(k) for k in range(clients)))
    figures.wall_s += time.perf_counter() - start


class KeepAliveGets:
    """GETs over a few kept-alive HTTP/1.1 connections, each used by one request at a time.

    The reads are timed with this rather than one shared ``httpx.AsyncClient``: with 32 requests
    in flight, httpx's connection pool is the bottleneck (GET /healthz: about 150 /s through it,
    over 1,000 /s this way on the same server), so it measured httpx rather than the API.
    """

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.auth = f"Authorization: Bearer {token}\r\n"
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def get(self, path: str) -> bytes:
        """The body of GET ``path``; raises unless the status is 200."""
        request = f"GET {path} HTTP/1.1\r\nHost: api\r\n{self.auth}\r\n".encode()
        if self.idle:
            reader, writer = self.idle.pop()
            try:  # the server closes a connection idle for a few seconds
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                reader, writer, head = await self._fresh(request)
        else:
            reader, writer, head = await self._fresh(request)
        lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        body = await reader.readexactly(int(fields["content-length"]))
        if lines[0].split(" ")[1] != "200":
            raise RuntimeError(f"GET {path}: {lines[0]} {body[:200]!r}")
        self.idle.append((reader, writer))
        return body

    async def _fresh(
        self, request: bytes
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(request)
        return reader, writer, await reader.readuntil(b"\r\n\r\n")

    def close(self) -> None:
        """Close the idle connections."""
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


def api_read(api: KeepAliveGets, suffix: str) -> Read:
    """GET /v1/workflows/:id<suffix>, raising on an error status."""

    async def read(workflow_id: str) -> object:
        return await api.get(f"/v1/workflows/{workflow_id}{suffix}")

    return read


def direct_status(client: Client) -> Read:
    """What the status answer is made of: one describe."""

    async def read(workflow_id: str) -> object:
        return await client.get_workflow_handle(workflow_id).describe()

    return read


def direct_detail(client: Client) -> Read:
    """What the workflow answer is made of: a describe and the history, concurrently."""

    async def read(workflow_id: str) -> object:
        handle = client.get_workflow_handle(workflow_id)
        return await asyncio.gather(handle.describe(), handle.fetch_history())

    return read


async def compare_reads(
    label: str, api: Read, direct: Read, ids: list[str], args: argparse.Namespace
) -> None:
    """Alternating rounds of API and direct reads; prints figures and ratios."""
    via_api_figures, direct_figures = ReadFigures(), ReadFigures()
    per_round = args.reads // args.read_rounds
    await timed_reads(api, ids, ReadFigures(), clients=args.clients, requests=args.clients * 4)
    await timed_reads(direct, ids, ReadFigures(), clients=args.clients, requests=args.clients * 4)
    for _ in range(args.read_rounds):
        await timed_reads(direct, ids, direct_figures, clients=args.clients, requests=per_round)
        await timed_reads(api, ids, via_api_figures, clients=args.clients, requests=per_round)
    print(f"{label}: {args.clients} concurrent clients, {len(via_api_figures.latencies)} each way")
    for name, figures in (("API   ", via_api_figures), ("direct", direct_figures)):
        print(
            f"  {name} {figures.rate:8.1f} /s   p50 {figures.p(0.50) * 1000:7.1f} ms"
            f"   p99 {figures.p(0.99) * 1000:7.1f} ms"
        )
    print(
        f"  ratio throughput API / direct {via_api_figures.rate / direct_figures.rate:5.2f}"
        f" (target >= 0.50);  p99 API / direct"
        f" {via_api_figures.p(0.99) / direct_figures.p(0.99):5.2f} (target <= 2.00)"
    )


async def compare_starts(
    api: httpx.AsyncClient, client: Client, args: argparse.Namespace
) -> list[str]:
    """Alternating rounds of starts straight and through the API; prints the rates. Returns
    the ids the API started."""
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
    return ids


async def run(args: argparse.Namespace, temporal: EmbeddedTemporal, port: int) -> None:
    client = await Client.connect(temporal.address)
    api_url = f"http://127.0.0.1:{port}"
    gets = KeepAliveGets(port, TOKEN)
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
        if args.rounds:
            ids = await compare_starts(api, client, args)
        else:  # reads only
            ids = (await via_api(api, args.n, args.concurrency))[1]
        await compare_reads(
            "GET /v1/workflows/:id/status vs describe()",
            api_read(gets, "/status"),
            direct_status(client),
            ids,
            args,
        )
        await compare_reads(
            "GET /v1/workflows/:id vs describe() + fetch_history()",
            api_read(gets, ""),
            direct_detail(client),
            ids,
            args,
        )
    gets.close()


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in values) + "]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="workflows per round and path")
    parser.add_argument("--rounds", type=int, default=3, help="start rounds (0: reads only)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent starts")
    parser.add_argument("--clients", type=int, default=32, help="concurrent readers")
    parser.add_argument("--reads", type=int, default=3200, help="reads of each kind, each way")
    parser.add_argument("--read-rounds", type=int, default=4, help="alternations per read kind")
    parser.add_argument(
        "--api-workers", type=int, default=None, help="uvicorn workers (default: serve's)"
    )
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
        argv = [str(Path(sys.executable).with_name("protocol-lab")), "serve", "--port", str(port)]
        if args.api_workers is not None:
            argv += ["--workers", str(args.api_workers)]
        api = ChildProcess("api", argv, state / "logs" / "api.log", env)
        api.start()
        print(f"API pid {api.process.pid if api.process else None}", flush=True)
        try:
            for _ in range(600):
                api.check_alive()
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            asyncio.run(run(args, temporal, port))
        finally:
            api.stop()
            redis.stop()
            temporal.stop()


if __name__ == "__main__":
    main()
