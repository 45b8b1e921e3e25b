"""Several dispatchers, each a process of its own, on one store (a SQLite file, a PostgreSQL
schema) and one Redis: every event is finished once, every (event, rule) fires once, and events
claimed by a dispatcher that died are claimed again when its lease runs out.

Three dispatcher processes (``dispatcher_process.py``) start together on a few hundred ticket
events against rules of which two match some tickets (notifications: Redis only) and two
hundred match none. Before they start, a dispatcher claims a batch and dies (its claim is left
with a short lease).
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from outbox_helpers import NOTIFY_RULE, add_rule, event_rows, executions_of
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protocol_lab.domain import JobQueue
from service.jobs.producer import JobProducer
from service.stack import EmbeddedRedis
from service.store.outbox import claim_events
from service.store.tickets import create_ticket

pytestmark = [pytest.mark.redis, pytest.mark.timeout(300)]

Sessions = async_sessionmaker[AsyncSession]

EVENTS = 300
DISPATCHERS = 3
DEAD_CLAIMS = 20
DEAD_LEASE_S = 3.0
SCRIPT = Path(__file__).with_name("dispatcher_process.py")
P1_RULE: dict[str, Any] = {
    "name": "P1 incidents page the on-call",
    "trigger": "on_ticket_created",
    "conditions": {"category": "incident", "priority": {"in": ["P1"]}},
    "action": {"type": "send_notification", "recipient": "oncall", "message": "{{ticket.id}}"},
}


def _never(i: int) -> dict[str, Any]:
    return {
        "name": f"team {i}",
        "trigger": "on_ticket_created",
        "conditions": {"category": f"team-{i}", "title": {"contains": "never"}},
        "action": {"type": "send_notification", "recipient": "ops", "message": "x"},
    }


async def _where(sessionmaker: Sessions) -> tuple[str, str]:
    """The store's URL and PostgreSQL schema (``-`` for SQLite), for another process."""
    async with sessionmaker() as session:
        bind = session.bind
        url = bind.url.render_as_string(hide_password=False)
        if bind.dialect.name != "postgresql":
            return url, "-"
        schema = (await session.execute(text("SELECT current_schema()"))).scalar_one()
        return url, str(schema)


async def _dispatchers(
    sessionmaker: Sessions, redis: EmbeddedRedis, prefix: str, state: Path
) -> list[dict[str, int]]:
    """Run the dispatcher processes together until the outbox is finished; their reports."""
    url, schema = await _where(sessionmaker)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            url,
            schema,
            redis.url,
            prefix,
            str(state),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(DISPATCHERS)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert (await proc.stdout.readline()).strip() == b"ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        outputs = [await proc.communicate() for proc in procs]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    reports = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()[-3000:]
        reports.append(json.loads(out.decode().strip().splitlines()[-1]))
    return reports


async def test_several_dispatcher_processes_fire_every_rule_once(
    sessionmaker: Sessions, embedded_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    notify_id = await add_rule(sessionmaker, NOTIFY_RULE)
    p1_id = await add_rule(sessionmaker, P1_RULE)
    for i in range(200):
        await add_rule(sessionmaker, _never(i))
    event_ids = []
    priorities = {}
    for i in range(EVENTS):
        category = "incident" if i % 3 else "request"
        priority = "P1" if i % 2 else "P3"
        async with sessionmaker() as session:
            _, event_id = await create_ticket(
                session,
                fields={
                    "title": f"Ticket {i}",
                    "category": category,
                    "priority": priority,
                    "requester": "ana",
                },
                actor="test",
            )
        event_ids.append(event_id)
        priorities[event_id] = (category, priority)
    # A dispatcher claimed the oldest batch and died.
    async with sessionmaker() as session:
        dead = await claim_events(session, limit=DEAD_CLAIMS, lease_s=DEAD_LEASE_S)
    assert [e.id for e in dead] == event_ids[:DEAD_CLAIMS]

    prefix = f"t{uuid.uuid4().hex[:8]}"
    reports = await _dispatchers(sessionmaker, embedded_redis, prefix, tmp_path)

    # Every event was finished once, by one of the dispatchers, which shared the work.
    assert sum(r["finished"] for r in reports) == EVENTS, reports
    assert sum(1 for r in reports if r["finished"]) >= 2, reports
    rows = await event_rows(sessionmaker, event_ids)
    assert {row.status for row in rows} == {"done"}
    dead_ids = {e.id for e in dead}
    attempts = Counter(row.attempts for row in rows if row.id not in dead_ids)
    assert attempts == {1: EVENTS - DEAD_CLAIMS}  # claimed once
    assert {row.attempts for row in rows if row.id in dead_ids} == {2}  # again after the lease

    # Every (event, rule) that matches fired once, and only those.
    executions = await executions_of(sessionmaker, event_ids)
    fired = Counter((e.event_id, e.rule_id) for e in executions)
    expected = {
        (event_id, rule_id)
        for event_id, (category, priority) in priorities.items()
        for rule_id, holds in (
            (notify_id, category == "incident"),
            (p1_id, category == "incident" and priority == "P1"),
        )
        if holds
    }
    assert set(fired) == expected
    assert set(fired.values()) == {1}
    assert {e.outcome for e in executions} == {"succeeded"}

    # One notification job per firing and one audit job per event in Redis.
    jobs = JobProducer(embedded_redis.url, prefix=prefix)
    try:
        counts = await jobs.counts()
    finally:
        await jobs.close()
    assert counts[JobQueue.NOTIFICATION.value]["waiting"] == len(expected)
    assert counts[JobQueue.AUDIT.value]["waiting"] == EVENTS
