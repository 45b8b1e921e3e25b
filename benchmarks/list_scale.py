"""GET /v1/workflows as the number of workflows grows: 1k, 10k, 100k.

Starts its own stack (Temporal dev server with its SQLite visibility, ``--db``: a file on tmpfs
by default; ``disk``, where the file's syncs hold starts to about 15 /s on a small machine; or
``memory``; Redis; the API as ``protocol-lab serve`` in a child process), then grows the server
in steps to each size with workflows started straight through the temporalio client, no worker
running (the same workflow, input and search attributes the API sets; a start needs no worker).
Half the workflows go to one task queue and half to another; 20 of the first 1,000 belong to
ticket TKT-4242 (so at every size the filter finds the same 20, ever further back), the others
each to a ticket of their own. At each size, through the API (``--clients`` requests at a time
on kept-alive connections):

- the first page (``limit=100``);
- a deep page: the cursor chain (``starting_after``) is followed page by page to the middle of
  the list (offset size / 2), then only that last request is timed, repeatedly;
- filtered pages: ``status=active&task_queue=itsm-network`` (half the workflows) and
  ``ticket_id=TKT-4242`` (20 workflows, the oldest).

Printed per size: p50 and p95 of each, and the CPU seconds the API and the Temporal server
spent per request (other load on a shared machine disturbs this less than the latencies); the
start rate with the Temporal server's CPU per start, every 10k starts and per size; the load
beside each figure. At the end, the ratio of each p50 (and p95, CPU per request) at the largest
size to that at the smallest (target for p50: at most 2).

Starts: ``--concurrency`` starters share ``--connections`` client connections. The rate is
bound by the Temporal server's CPU (about 5 ms per start, whatever the concurrency from 16 to
256 and the connections from 1 to 4; the client spends about 1.2 ms): on 2 cores it is 120 to
260 /s, lower while other work loads the machine. ``--sizes`` and ``--budget-s`` bound the run
(a size whose starts would not fit in the budget, estimated from the start rate so far, is
skipped and said so). On a loaded 2-core machine the in-memory dev server failed twice between
80k and 90k workflows, 28 to 30 minutes after it started: once a start timed out, once the
server answered "Namespace default is not found" (its in-memory database gone, as reported
upstream for the dev server's SQLite); hence the file on tmpfs, with which 100k was reached
(119-153 starts/s, 10 ms of server CPU per start). A failed run prints the end of the server's
log.

    nice -n 10 .venv/bin/python benchmarks/list_scale.py [--sizes 1000,10000,100000]
        [--samples 30] [--budget-s 1500] [--concurrency 64] [--connections 4]
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
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

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
# A start that times out (the server loaded, at 80k and more) is tried again with the same id.
START_RPC_TIMEOUT = timedelta(seconds=30)
START_ATTEMPTS = 5
RETRIED = {RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.CANCELLED}
RETRIED |= {RPCStatusCode.RESOURCE_EXHAUSTED}
# A file on tmpfs: the server's SQLite without a disk sync per start, and without the in-memory
# database, whose tables the dev server has lost after half an hour under load.
TMPFS = Path("/dev/shm")


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) of every live process in process group ``pgid``."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def load() -> str:
    """The 1-minute load average, to print beside a figure (the machine may be shared)."""
    return f"load {os.getloadavg()[0]:.1f}"


@dataclass
class Grower:
    """Starts workflows through several client connections (no worker runs them).

    ``server_pgid``: the Temporal server's process group, whose CPU time per start is printed
    with the start rate every ``report_every`` starts (the server's CPU bounds the rate).
    """

    clients: list[Client]
    concurrency: int
    server_pgid: int
    report_every: int = 10_000
    retries: int = 0

    async def grow(self, start: int, stop: int) -> None:
        """Start workflows number ``start`` to ``stop - 1``."""
        plan = load_catalog()[NAME]
        payload = plan.model_dump(mode="json")
        state = initial_state(plan, status="active")
        numbers = iter(range(start, stop))
        done = 0
        mark = (time.perf_counter(), group_cpu_s(self.server_pgid), 0)

        async def one(client: Client, k: int) -> None:
            workflow_id = new_workflow_id()
            for attempt in range(START_ATTEMPTS):
                try:
                    await self._start(client, k, workflow_id, payload, state)
                    return
                except WorkflowAlreadyStartedError:
                    return  # an attempt that timed out had started it
                except RPCError as exc:
                    if exc.status not in RETRIED or attempt == START_ATTEMPTS - 1:
                        raise
                    self.retries += 1
                    await asyncio.sleep(1.0)

        async def starter(client: Client) -> None:
            nonlocal done, mark
            for k in numbers:
                await one(client, k)
                done += 1
                if done - mark[2] >= self.report_every:
                    mark = self._report(mark, done, start)

        await asyncio.gather(
            *(starter(self.clients[w % len(self.clients)]) for w in range(self.concurrency))
        )

    async def _start(
        self, client: Client, k: int, workflow_id: str, plan: dict[str, Any], state: object
    ) -> None:
        queue = QUEUES[k % 2]
        ticket = RARE_TICKET if k < RARE_AMONG and k % 50 == 0 else f"TKT-{1_000_000 + k}"
        await client.start_workflow(
            PlanWorkflow.run,
            PlanInput(
                name=NAME,
                task_queue=queue,
                trigger_type="manual",
                plan=plan,
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
            rpc_timeout=START_RPC_TIMEOUT,
        )

    def _report(
        self, mark: tuple[float, float, int], done: int, start: int
    ) -> tuple[float, float, int]:
        now, cpu = time.perf_counter(), group_cpu_s(self.server_pgid)
        n = done - mark[2]
        print(
            f"    {start + done} started: {n / (now - mark[0]):.0f} /s, Temporal server"
            f" {(cpu - mark[1]) / n * 1000:.1f} ms CPU per start, {self.retries} retried"
            f" so far, {load()}",
            flush=True,
        )
        return now, cpu, done


@dataclass
class Timings:
    """Latencies in seconds of one kind of list request at one size, and the CPU seconds the
    API and the Temporal server spent on them (a figure other load on the machine disturbs
    less than the latencies)."""

    values: list[float] = field(default_factory=list)
    cpu_s: float = 0.0

    def p(self, q: float) -> float:
        """The ``q`` quantile."""
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def cpu_per_request(self) -> float:
        """CPU seconds (API and Temporal server) per request."""
        return self.cpu_s / len(self.values)


@dataclass
class Stack:
    """What the measures talk to: the API's keep-alive connections, and the process groups of
    the API and of the Temporal server (for their CPU time)."""

    gets: KeepAliveGets
    api_pgid: int
    temporal_pgid: int

    def cpu_s(self) -> float:
        """CPU seconds the API and the Temporal server have used so far."""
        return group_cpu_s(self.api_pgid) + group_cpu_s(self.temporal_pgid)


async def page(gets: KeepAliveGets, query: str) -> dict[str, object]:
    """One page of GET /v1/workflows?<query>."""
    answer: dict[str, object] = json.loads(await gets.get(f"/v1/workflows?{query}"))
    return answer


async def timed(stack: Stack, query: str, samples: int, clients: int) -> Timings:
    """``samples`` requests of ``query``, ``clients`` at a time."""
    timings = Timings()
    gate = asyncio.Semaphore(clients)

    async def one() -> None:
        async with gate:
            start = time.perf_counter()
            await page(stack.gets, query)
            timings.values.append(time.perf_counter() - start)

    cpu = stack.cpu_s()
    await asyncio.gather(*(one() for _ in range(samples)))
    timings.cpu_s = stack.cpu_s() - cpu
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


async def measure(stack: Stack, size: int, args: argparse.Namespace) -> dict[str, Timings]:
    """The four kinds of list request at ``size`` workflows."""
    cursor, pages, walked = await cursor_at(stack.gets, size // 2)
    print(
        f"  cursor chain to offset {size // 2}: {pages} pages in {walked:.1f} s"
        f" ({walked / pages * 1000:.0f} ms a page, {load()})",
        flush=True,
    )
    queries = {
        "first page": f"limit={PAGE}",
        "deep page": f"limit={PAGE}&starting_after={cursor}",
        "status+queue": f"limit={PAGE}&status=active&task_queue={QUEUES[0]}",
        "ticket_id": f"limit={PAGE}&ticket_id={RARE_TICKET}",
    }
    results = {}
    for label, query in queries.items():
        await timed(stack, query, 2, 1)  # warm
        results[label] = timings = await timed(stack, query, args.samples, args.clients)
        print(
            f"  {label:13s} p50 {timings.p(0.5) * 1000:8.1f} ms"
            f"   p95 {timings.p(0.95) * 1000:8.1f} ms"
            f"   CPU {timings.cpu_per_request * 1000:6.0f} ms/request   {load()}",
            flush=True,
        )
    return results


async def settle(client: Client, size: int) -> None:
    """Wait until visibility counts ``size`` workflows (it trails the starts by a moment)."""
    for _ in range(1200):
        if (await client.count_workflows()).count >= size:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"visibility did not reach {size} workflows in 10 min")


async def run(args: argparse.Namespace, temporal: EmbeddedTemporal, stack: Stack) -> None:
    """Grow to each size and measure there; print the table of ratios at the end."""
    clients = [await Client.connect(temporal.address) for _ in range(args.connections)]
    grower = Grower(clients, args.concurrency, stack.temporal_pgid)
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
        begin, cpu = time.perf_counter(), group_cpu_s(stack.temporal_pgid)
        await grower.grow(started, size)
        spent = time.perf_counter() - begin
        per_start = (group_cpu_s(stack.temporal_pgid) - cpu) / (size - started)
        start_s += spent
        print(
            f"{size} workflows: {size - started} started in {spent:.0f} s"
            f" ({(size - started) / spent:.0f} /s; Temporal server {per_start * 1000:.1f} ms"
            f" CPU per start; {load()})",
            flush=True,
        )
        started = size
        await settle(clients[0], size)
        table[size] = await measure(stack, size, args)
    stack.gets.close()
    if len(table) > 1:
        low, high = min(table), max(table)
        print(f"at {high} / at {low} (target for p50: <= 2):   p50   p95   CPU per request")
        for label in table[low]:
            hi, lo = table[high][label], table[low][label]
            print(
                f"  {label:13s} {hi.p(0.5) / lo.p(0.5):6.2f} {hi.p(0.95) / lo.p(0.95):6.2f}"
                f" {hi.cpu_per_request / lo.cpu_per_request:6.2f}"
            )


def child_pid(child: ChildProcess) -> int:
    """The process id (and group id) of a started child."""
    if child.process is None:
        raise RuntimeError(f"{child.name} is not started")
    return child.process.pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="workflow counts, rising")
    parser.add_argument("--samples", type=int, default=30, help="timed requests per kind")
    parser.add_argument("--clients", type=int, default=1, help="list requests at a time")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent starts")
    parser.add_argument(
        "--connections", type=int, default=4, help="client connections the starts share"
    )
    parser.add_argument("--budget-s", type=float, default=1500.0, help="time for all starts")
    parser.add_argument(
        "--db",
        choices=("tmpfs", "disk", "memory"),
        default="tmpfs" if TMPFS.is_dir() else "disk",
        help="where Temporal's SQLite lives: a file on tmpfs (default), on disk, or in memory",
    )
    args = parser.parse_args()
    # the whole state folder on tmpfs (Temporal's SQLite file among it) or on disk
    folder = TMPFS if args.db == "tmpfs" else None
    with tempfile.TemporaryDirectory(prefix="list-scale-", dir=folder) as tmp:
        state = Path(tmp)
        temporal = EmbeddedTemporal(state_dir=state / "temporal", ui=False)
        if args.db == "memory":
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
            stack = Stack(KeepAliveGets(port, TOKEN), child_pid(api), child_pid(temporal.child))
            asyncio.run(run(args, temporal, stack))
        except Exception:
            # The state folder goes with the run: show what the server said before it failed.
            log = temporal.child.log_path.read_text(errors="replace").splitlines()
            print("Temporal server log, last lines:", *log[-40:], sep="\n", file=sys.stderr)
            raise
        finally:
            api.stop()
            redis.stop()
            temporal.stop()


if __name__ == "__main__":
    main()
