"""Rule firings survive an outage of Temporal, and one of Redis, on real processes.

A Temporal dev server and a Redis of their own (the session's are not disturbed), and the worker
(Temporal workers, BullMQ processors, the outbox dispatcher) and the API as child processes on
them, as ``protocol-lab up`` runs them. With a start_workflow rule and a send_notification rule
enabled, a burst of tickets is created through the API; in the middle of the burst Temporal
(first test, for :data:`TEMPORAL_OUTAGE_S`) or Redis (second test, for :data:`REDIS_OUTAGE_S`)
is stopped and started again on the same port and state. Afterwards every firing happened
exactly once: one succeeded execution per ticket and rule, one workflow per ticket in Temporal,
one notification job and one audit job per ticket in Redis, every job processed. The counts are
printed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from bullmq import Queue
from temporalio.client import Client
from waiting import eventually

from protocol_lab.domain import JobQueue, TaskQueue
from protocol_lab.polling import polled
from service.settings import Settings
from service.stack import EmbeddedRedis, EmbeddedTemporal, Stack, free_port

pytestmark = [pytest.mark.temporal, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(420)]

# Outages that only the dispatcher's own patience bridges. Temporal: twice the client-side RPC
# retries (~10 s), so several of the dispatcher's attempts fail. Redis: beyond BullMQ's
# reconnection backoff (at most 20 s between tries) and beyond an event's lease (LEASE_SECONDS,
# 30 s), so the dispatcher holding the events must renew their leases to keep them.
TEMPORAL_OUTAGE_S: Final = 20.0
REDIS_OUTAGE_S: Final = 40.0
BEFORE, DURING, AFTER = 6, 6, 4  # tickets created before, during and after the outage
TICKETS: Final = BEFORE + DURING + AFTER
# Once the part is back: its backoff (at most 60 s between tries), then the work itself.
SETTLE_S: Final = 150.0
TOKEN: Final = "outage-admin-token"


@dataclass
class Outage:
    """The stack under test: Temporal and Redis of its own, the worker and API on them."""

    temporal: EmbeddedTemporal
    redis: EmbeddedRedis
    stack: Stack
    database: Path

    def check_alive(self) -> None:
        """Fail if the worker or the API died (an outage must not take them down)."""
        for child in self.stack.children:
            child.check_alive()


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    folder: Path = tmp_path_factory.mktemp("outage")
    temporal = EmbeddedTemporal(state_dir=folder / "temporal", ui=False)
    redis = EmbeddedRedis(state_dir=folder / "redis")
    temporal.start()
    try:
        redis.start()
        settings = Settings(
            temporal_address=temporal.address,
            redis_url=redis.url,
            database_url=f"sqlite+aiosqlite:///{folder / 'service.db'}",
            state_dir=folder,
            api_tokens={TOKEN: ["admin"]},
            port=free_port(),
            time_scale=3600.0,
        )
        with Stack(settings) as stack:
            yield Outage(
                temporal=temporal, redis=redis, stack=stack, database=folder / "service.db"
            )
    finally:
        redis.stop()
        temporal.stop()


@pytest.fixture
async def api(outage: Outage) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=outage.stack.api_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as client:
        yield client


def _rules(category: str) -> list[dict[str, Any]]:
    """The two rules of one test, on its own ticket category."""
    return [
        {
            "name": f"{category}: incident response",
            "trigger": "on_ticket_created",
            "conditions": {"category": category},
            "action": {
                "type": "start_workflow",
                "workflow_name": "P1 Incident Response",
                "task_queue": "itsm-high-priority",
            },
        },
        {
            "name": f"{category}: tell the requester",
            "trigger": "on_ticket_created",
            "conditions": {"category": category},
            "action": {
                "type": "send_notification",
                "channel": "notification",
                "recipient": "requester",
                "message": "We are on {ticket_id}",
            },
        },
    ]


async def _create_rules(api: httpx.AsyncClient, category: str) -> tuple[str, str]:
    ids = []
    for rule in _rules(category):
        r = await api.post("/v1/automation/rules", json=rule)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids[0], ids[1]


async def _tickets(api: httpx.AsyncClient, category: str, count: int, *, start: int) -> list[str]:
    ids = []
    for i in range(start, start + count):
        r = await api.post(
            "/v1/tickets",
            json={"title": f"{category} {i}", "category": category, "requester": f"user{i}"},
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def _worker_polling(outage: Outage) -> None:
    """Wait until the worker polls each task queue (it has started; it may start slowly)."""
    client = await Client.connect(outage.temporal.address)

    async def worker_polls() -> bool:
        outage.check_alive()
        return await polled(client, (queue.value for queue in TaskQueue), ["activity"])

    await eventually(worker_polls, within_s=120, every_s=0.5)


async def _sit_out(outage: Outage, *, since: float, seconds: float) -> None:
    """Wait until the outage has lasted ``seconds``, watching that the worker and API live on."""
    loop = asyncio.get_running_loop()

    def over() -> bool:
        outage.check_alive()
        return loop.time() >= since + seconds

    await eventually(over, within_s=seconds + 30, every_s=0.5)


async def _burst_around(
    outage: Outage,
    api: httpx.AsyncClient,
    category: str,
    *,
    rules: tuple[str, str],
    stop: Any,
    start: Any,
    seconds: float,
) -> list[str]:
    """Create tickets before, during (the part stopped) and after the outage; return their ids.

    The part stops once the tickets before have fired and the worker polls every task queue.
    """
    tickets = await _tickets(api, category, BEFORE, start=0)
    await _settled(outage, api, rules, count=BEFORE)
    await _worker_polling(outage)
    await asyncio.to_thread(stop)
    down_since = asyncio.get_running_loop().time()
    tickets += await _tickets(api, category, DURING, start=BEFORE)
    await _sit_out(outage, since=down_since, seconds=seconds)
    await asyncio.to_thread(start)
    tickets += await _tickets(api, category, AFTER, start=BEFORE + DURING)
    return tickets


async def _executions(api: httpx.AsyncClient, rule_id: str) -> list[dict[str, Any]]:
    r = await api.get(f"/v1/automation/rules/{rule_id}/executions", params={"limit": 100})
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def _settled(
    outage: Outage, api: httpx.AsyncClient, rule_ids: tuple[str, str], *, count: int = TICKETS
) -> dict[str, list[dict[str, Any]]]:
    """Every execution of both rules, once there are ``count`` of each and none is pending."""

    async def probe() -> dict[str, list[dict[str, Any]]] | None:
        outage.check_alive()
        found = {rule_id: await _executions(api, rule_id) for rule_id in rule_ids}
        if all(
            len(rows) >= count and all(e["outcome"] != "pending" for e in rows)
            for rows in found.values()
        ):
            return found
        return None

    return await eventually(probe, within_s=SETTLE_S, every_s=1.0)


async def _workflows_per_ticket(temporal: EmbeddedTemporal, tickets: list[str]) -> Counter[str]:
    """How many workflows Temporal holds for each ticket (visibility, once it caught up)."""
    client = await Client.connect(temporal.address)

    async def probe() -> Counter[str] | None:
        counts: Counter[str] = Counter()
        for ticket in tickets:
            found = await client.count_workflows(f"ProtocolTicketId = '{ticket}'")
            counts[ticket] = found.count
        return counts if all(counts[t] >= 1 for t in tickets) else None

    return await eventually(probe, within_s=60, every_s=1.0)


async def _jobs(redis: EmbeddedRedis, queue: JobQueue) -> list[Any]:
    bull = Queue(queue.value, {"connection": redis.url})
    try:
        states = ["completed", "failed", "waiting", "active", "delayed", "paused", "prioritized"]
        jobs: list[Any] = await bull.getJobs(states)
        return jobs
    finally:
        await bull.close()


async def _jobs_per_ticket(
    redis: EmbeddedRedis, tickets: list[str], *, notify_rule: str
) -> tuple[Counter[str], Counter[str]]:
    """Notification jobs of the rule and audit jobs of the ticket creations, per ticket, once
    every one of them has been processed."""

    async def probe() -> tuple[Counter[str], Counter[str]] | None:
        notifications = [
            j
            for j in await _jobs(redis, JobQueue.NOTIFICATION)
            if j.data.get("rule_id") == notify_rule
        ]
        audits = [
            j
            for j in await _jobs(redis, JobQueue.AUDIT)
            if j.data.get("kind") == "on_ticket_created" and j.data.get("subject") in tickets
        ]
        if len({j.data["ticket_id"] for j in notifications}) < len(tickets):
            return None
        if len({j.data["subject"] for j in audits}) < len(tickets):
            return None
        if not all(j.finishedOn and not j.failedReason for j in notifications + audits):
            return None
        return (
            Counter(j.data["ticket_id"] for j in notifications),
            Counter(j.data["subject"] for j in audits),
        )

    return await eventually(probe, within_s=SETTLE_S, every_s=1.0)


def _claims(outage: Outage, tickets: list[str]) -> dict[str, int]:
    """How often the event of each ticket's creation was claimed (read from the store)."""
    db = sqlite3.connect(outage.database)
    try:
        rows = db.execute(
            "SELECT ticket_id, attempts FROM outbox_events WHERE kind = 'on_ticket_created'"
        ).fetchall()
    finally:
        db.close()
    return {ticket: attempts for ticket, attempts in rows if ticket in tickets}


async def _verify_exactly_once(
    outage: Outage,
    api: httpx.AsyncClient,
    capsys: pytest.CaptureFixture[str],
    *,
    label: str,
    tickets: list[str],
    rules: tuple[str, str],
) -> dict[str, int]:
    """Check that every firing happened once and print the counts; return the claims per
    ticket event."""
    start_rule, notify_rule = rules
    executions = await _settled(outage, api, rules)
    workflows = await _workflows_per_ticket(outage.temporal, tickets)
    notifications, audits = await _jobs_per_ticket(outage.redis, tickets, notify_rule=notify_rule)
    started = executions[start_rule]
    notified = executions[notify_rule]
    claims = _claims(outage, tickets)
    line = (
        f"\n{label}: {len(tickets)} tickets; executions {len(started)} start_workflow + "
        f"{len(notified)} send_notification, "
        f"{sum(e['outcome'] == 'succeeded' for e in started + notified)} succeeded; "
        f"workflows in Temporal {sum(workflows.values())} "
        f"(most for one ticket {max(workflows.values())}); "
        f"jobs in Redis: notification {sum(notifications.values())}, "
        f"audit {sum(audits.values())}; "
        f"claims per event {min(claims.values())}-{max(claims.values())}\n"
    )
    with capsys.disabled():
        sys.stdout.write(line)
    for rows in (started, notified):
        assert sorted(e["ticket_id"] for e in rows) == sorted(tickets)
        assert all(e["outcome"] == "succeeded" for e in rows), [
            (e["ticket_id"], e["outcome"], e["detail"]) for e in rows if e["outcome"] != "succeeded"
        ]
    assert len({e["workflow_id"] for e in started}) == TICKETS
    assert workflows == Counter(dict.fromkeys(tickets, 1))
    assert notifications == Counter(dict.fromkeys(tickets, 1))
    assert audits == Counter(dict.fromkeys(tickets, 1))
    return claims


async def test_a_temporal_outage_in_a_burst_loses_and_repeats_no_firing(
    outage: Outage, api: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = await _create_rules(api, "outage-temporal")
    tickets = await _burst_around(
        outage,
        api,
        "outage-temporal",
        rules=rules,
        stop=outage.temporal.stop,
        start=outage.temporal.start,
        seconds=TEMPORAL_OUTAGE_S,
    )
    label = f"Temporal down {TEMPORAL_OUTAGE_S:.0f} s"
    await _verify_exactly_once(outage, api, capsys, label=label, tickets=tickets, rules=rules)


async def test_a_redis_outage_in_a_burst_loses_and_repeats_no_firing(
    outage: Outage, api: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = await _create_rules(api, "outage-redis")
    tickets = await _burst_around(
        outage,
        api,
        "outage-redis",
        rules=rules,
        stop=outage.redis.stop,
        start=outage.redis.start,
        seconds=REDIS_OUTAGE_S,
    )
    label = f"Redis down {REDIS_OUTAGE_S:.0f} s"
    claims = await _verify_exactly_once(
        outage, api, capsys, label=label, tickets=tickets, rules=rules
    )
    # The events waiting for Redis were held by their dispatcher all along (its lease renewed),
    # never taken over by a second one.
    assert set(claims.values()) == {1}, claims
