"""GET /v1/workflows as the number of workflows grows: 1k, 10k, 100k.

Starts its own stack (Temporal dev server with its SQLite visibility, in memory unless
``--file-db``: on a small machine the file's writes hold starts to about 15 /s; Redis; the API as
``protocol-lab serve`` in a child process), then grows the server in steps to each size with
workflows started straight through the temporalio client, no worker running (the same workflow,
input and search attributes the API sets; a start needs no worker). Half the workflows go to one
task queue and half to another; 20 of the first 1,000 belong to ticket TKT-4242 (so at every size
the filter finds the same 20, ever further back), the others each to a ticket of their own. At
each size, through the API (``--clients`` requests at a time on kept-alive connections):

- the first page (``limit=100``);
- a deep page: the cursor chain (``starting_after``) is followed page by page to the middle of
  the list (offset size / 2), then only that last request is timed, repeatedly;
- filtered pages: ``status=active&task_queue=itsm-network`` (half the workflows) and
  ``ticket_id=TKT-4242`` (20 workflows, the oldest).

Printed per size: p50 and p95 of each, the start rate, and the ratio of each p50 at the largest
size to its p50 at the smallest (target: at most 2). Starting 100k workflows takes a while on a
small machine; ``--sizes`` and ``--budget-s`` bound it (a size whose starts would not fit in the
budget, estimated from the start rate so far, is skipped and said so).

    .venv/bin/python benchmarks/list_scale.py [--sizes 1000,10000,100000] [--samples 30]
        [--budget-s 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
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

sys.path.insert(0, str(Path(__file__).parent))
from api_throughput import KeepAliveGets

TOKEN = "bench-token"
NAME = "VPN Access Revocation"
QUEUES = ("itsm-network", "itsm-fleet")
RARE_TICKET = "TKT-4242"
RARE_AMONG = 1000  # the rare ticket's workflows: every 50th of the first 1000 (20, the oldest)
PAGE = 100


async def grow(client: Client, start: int, stop: int, concurrency: int) -> None:
    """Start workflows number ``start`` to ``stop - 1`` (no worker runs them)."""
    plan = load_catalog()[NAME]
    payload = plan.model_dump(mode="json")
    state = initial_state(plan, status="active")
    gate = asyncio.Semaphore(concurrency)

    async def one(k: int) -> None:
        queue = QUEUES[k % 2]
        ticket = RARE_TICKET if k < RARE_AMONG and k % 50 == 0 else f"TKT-{1_000_000 + k}"
        async with gate:
            workflow_id = new_workflow_id()
            await client.start_workflow(
                PlanWorkflow.run,
                PlanInput(
                    name=NAME,
                    task_queue=queue,
                    trigger_type="manual",
                    plan=payload,
                    input={"ticket_id": ticket, "user_id": "usr_9xKmPq"},
                ),
                id=workflow_id,
                task_queue=queue,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(sa.STATUS, "active"),
                        SearchAttributePair(sa.NAME, NAME),
                        SearchAttributePair(sa.TRIGGER_TYPE, "manual"),
                        SearchAttributePair(sa.ORDER, order_of(workflow_id)),
                        SearchAttributePair(sa.TICKET_ID, ticket),
                    ]
                ),
                memo={MEMO_STATE: state},
            )

    batch = 2000
    for first in range(start, stop, batch):
        await asyncio.gather(*(one(k) for k in range(first, min(stop, first + batch))))


@dataclass
class Timings:
    """Latencies in seconds of one kind of list request at one size."""

    values: list[float] = field(default_factory=list)

    def p(self, q: float) -> float:
        """The ``q`` quantile."""
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def page(gets: KeepAliveGets, query: str) -> dict[str, object]:
    """One page of GET /v1/workflows?<query>."""
    answer: dict[str, object] = json.loads(await gets.get(f"/v1/workflows?{query}"))
    return answer


async def timed(gets: KeepAliveGets, query: str, samples: int, clients: int) -> Timings:
    """``samples`` requests of ``query``, ``clients`` at a time."""
    timings = Timings()
    gate = asyncio.Semaphore(clients)

    async def one() -> None:
        async with gate:
            start = time.perf_counter()
            await page(gets, query)
            timings.values.append(time.perf_counter() - start)

    await asyncio.gather(*(one() for _ in range(samples)))
    return timings


async def cursor_at(gets: KeepAliveGets, offset: int) -> tuple[str, int, float]:
    """The cursor after the first ``offset`` workflows, reached by following the chain; returns
    (cursor, pages walked, seconds walking)."""
    cursor, seen, pages = "", 0, 0
    start = time.perf_counter()
    while seen < offset:
        query = f"limit={PAGE}" + (f"&starting_after={cursor}" if cursor else "")
        data = (await page(gets, query))["data"]
        if not isinstance(data, list) or not data:
            raise RuntimeError(f"the list ended after {seen} workflows")
        cursor = data[-1]["id"]
        seen += len(data)
        pages += 1
    return cursor, pages, time.perf_counter() - start


async def measure(gets: KeepAliveGets, size: int, args: argparse.Namespace) -> dict[str, Timings]:
    """The four kinds of list request at ``size`` workflows."""
    cursor, pages, walked = await cursor_at(gets, size // 2)
    print(f"  cursor chain to offset {size // 2}: {pages} pages in {walked:.1f} s", flush=True)
    queries = {
        "first page": f"limit={PAGE}",
        "deep page": f"limit={PAGE}&starting_after={cursor}",
        "status+queue": f"limit={PAGE}&status=active&task_queue={QUEUES[0]}",
        "ticket_id": f"limit={PAGE}&ticket_id={RARE_TICKET}",
    }
    results = {}
    for label, query in queries.items():
        await timed(gets, query, 2, 1)  # warm
        results[label] = await timed(gets, query, args.samples, args.clients)
    return results


async def run(args: argparse.Namespace, temporal: EmbeddedTemporal, port: int) -> None:
    client = await Client.connect(temporal.address)
    gets = KeepAliveGets(port, TOKEN)
    sizes = [int(s) for s in args.sizes.split(",")]
    table: dict[int, dict[str, Timings]] = {}
    started, start_s = 0, 0.0
    for size in sizes:
        if started and start_s + start_s / started * (size - started) > args.budget_s:
            rate = started / start_s
            print(
                f"{size} workflows: skipped; at {rate:.0f} starts/s the "
                f"{size - started} more would take {(size - started) / rate / 60:.0f} min,"
                f" over the --budget-s {args.budget_s:.0f} s for all starts"
            )
            break
        begin = time.perf_counter()
        await grow(client, started, size, args.concurrency)
        spent = time.perf_counter() - begin
        start_s += spent
        print(
            f"{size} workflows: {size - started} started in {spent:.0f} s"
            f" ({(size - started) / spent:.0f} /s)",
            flush=True,
        )
        started = size
        # Visibility trails the starts by a moment; the list must hold them all first.
        for _ in range(600):
            if (await client.count_workflows()).count >= size:
                break
            await asyncio.sleep(0.5)
        table[size] = await measure(gets, size, args)
        for label, timings in table[size].items():
            print(
                f"  {label:13s} p50 {timings.p(0.5) * 1000:8.1f} ms"
                f"   p95 {timings.p(0.95) * 1000:8.1f} ms",
                flush=True,
            )
    gets.close()
    if len(table) > 1:
        low, high = min(table), max(table)
        print(f"p50 at {high} / p50 at {low} (target <= 2):")
        for label in table[low]:
            ratio = table[high][label].p(0.5) / table[low][label].p(0.5)
            print(f"  {label:13s} {ratio:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="workflow counts, rising")
    parser.add_argument("--samples", type=int, default=30, help="timed requests per kind")
    parser.add_argument("--clients", type=int, default=1, help="list requests at a time")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent starts")
    parser.add_argument("--budget-s", type=float, default=1500.0, help="time for all starts")
    parser.add_argument(
        "--file-db", action="store_true", help="Temporal's SQLite in a file (default: in memory)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="list-scale-") as tmp:
        state = Path(tmp)
        temporal = EmbeddedTemporal(state_dir=state / "temporal", ui=False)
        if not args.file_db:  # the same SQLite visibility, without a disk write per start
            argv = list(temporal.child.argv)
            at = argv.index("--db-filename")
            temporal.child.argv = argv[:at] + argv[at + 2 :]
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
            "API_TOKENS": f"{TOKEN}=read",
        }
        argv = [str(Path(sys.executable).with_name("protocol-lab")), "serve", "--port", str(port)]
        api = ChildProcess("api", argv, state / "logs" / "api.log", env)
        api.start()
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
