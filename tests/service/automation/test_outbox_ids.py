"""Outbox event ids are never reused, so rules keep firing after maintenance prunes events.

The executions are unique per rule and ``event:<id>``: had an id come back after a prune, the new
event would find the old event's execution and its rules would silently not fire. Checked on
SQLite and PostgreSQL, through the real maintenance job on BullMQ; an outbox table made by an
older version (SQLite, no AUTOINCREMENT) is rebuilt when the schema is created; maintenance
refuses a retention that is not a sane number of days.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from bullmq import Job, UnrecoverableError
from outbox_helpers import (
    NOTIFY_RULE,
    add_rule,
    count_events,
    engine_context,
    event_rows,
    executions_of,
    new_tickets,
    private_store,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from waiting import eventually

from protocol_lab.domain import JobQueue
from service.automation.context import AutomationContext, RuleCaches
from service.automation.engine import process_pending
from service.jobs.runner import close_job_workers, open_job_workers
from service.jobs.sync import retention_days
from service.settings import Settings
from service.stack import EmbeddedRedis
from service.state import Resources
from service.store.db import create_schema, make_engine, make_sessionmaker

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

Sessions = async_sessionmaker[AsyncSession]


async def _maintenance(ctx: AutomationContext, data: dict[str, Any]) -> Job:
    """Run one maintenance job through BullMQ and its real processor; return the finished job."""
    resources = Resources(
        settings=ctx.settings,
        engine=ctx.sessionmaker.kw["bind"],
        sessionmaker=ctx.sessionmaker,
        temporal=ctx.temporal,
        jobs=ctx.jobs,
        http=httpx.AsyncClient(),
        catalog=ctx.catalog,
    )
    [worker] = open_job_workers(resources, queues=[JobQueue.MAINTENANCE])
    queue = ctx.jobs.queue(JobQueue.MAINTENANCE)
    try:
        job_id = await ctx.jobs.enqueue(
            JobQueue.MAINTENANCE, "prune", data, job_id=f"maintenance-{uuid.uuid4().hex[:8]}"
        )

        async def finished() -> Job | None:
            job = await queue.getJob(job_id)
            if job is None or await job.getState() not in ("completed", "failed"):
                return None
            return await queue.getJob(job_id)  # read again: now with its result

        return await eventually(finished)
    finally:
        await close_job_workers([worker])
        await resources.http.aclose()


def _result(job: Job) -> dict[str, Any]:
    value = job.returnvalue
    return dict(json.loads(value) if isinstance(value, str) else value)


async def _process_all(ctx: AutomationContext) -> None:
    async def drained() -> bool:
        await process_pending(ctx)
        return all(row.status == "done" for row in await event_rows(ctx.sessionmaker))

    await eventually(drained)


async def test_rules_fire_on_new_events_after_maintenance_pruned_the_old_ones(
    ctx: AutomationContext,
) -> None:
    rule_id = await add_rule(ctx.sessionmaker, NOTIFY_RULE)
    first = await new_tickets(ctx.sessionmaker, 3, title="Before the prune")
    await _process_all(ctx)
    assert len(await executions_of(ctx.sessionmaker, first)) == 3

    job = await _maintenance(ctx, {"retention_days": 0})
    assert await job.getState() == "completed", job.failedReason
    assert _result(job)["pruned_events"] == 3
    assert await count_events(ctx.sessionmaker) == 0

    second = await new_tickets(ctx.sessionmaker, 3, title="After the prune")
    assert min(second) > max(first), (first, second)
    await _process_all(ctx)
    fired = await executions_of(ctx.sessionmaker, second)
    assert sorted(e.event_key for e in fired) == [f"event:{i}" for i in second]
    assert {e.rule_id for e in fired} == {rule_id}
    assert all(e.outcome == "succeeded" for e in fired), [(e.outcome, e.detail) for e in fired]
    # the executions of the pruned events are still the ones they were
    assert len(await executions_of(ctx.sessionmaker, first)) == 3


async def test_a_store_made_anew_beside_the_same_redis_still_gets_its_side_jobs(
    ctx: AutomationContext, tmp_path: Path, postgres_url: str
) -> None:
    """A new store counts its event and ticket ids from 1 again; the jobs its events cause (the
    audit entry, the suggestion, the SLA timer) must not meet the ids of the old store's jobs,
    which BullMQ would take for the same jobs and drop."""
    [first] = await new_tickets(ctx.sessionmaker, 1, title="Printer jam")
    await _process_all(ctx)
    folder = tmp_path / "anew"
    folder.mkdir()
    async with private_store("sqlite", folder=folder, postgres_url=postgres_url) as sessions:
        anew = dataclasses.replace(ctx, sessionmaker=sessions, caches=RuleCaches())
        [again] = await new_tickets(sessions, 1, title="Printer jam")
        [old_row], [new_row] = await event_rows(ctx.sessionmaker), await event_rows(sessions)
        assert (again, new_row.ticket_id) == (first, old_row.ticket_id)  # counted anew
        await _process_all(anew)
    states = ["waiting", "delayed", "active", "completed", "failed"]
    for queue in (JobQueue.AUDIT, JobQueue.AI_INFERENCE, JobQueue.SLA_TIMER):
        jobs = await ctx.jobs.queue(queue).getJobs(states)
        assert len({job.id for job in jobs}) == 2, (queue, [job.id for job in jobs])


@pytest.mark.parametrize(
    "retention",
    [-1, -math.inf, math.inf, math.nan, 3651, 1e9, 10**400, "7", True, None, [3]],
)
def test_a_retention_that_is_not_a_sane_number_of_days_is_refused(retention: object) -> None:
    with pytest.raises(UnrecoverableError, match="retention_days must be a number of days"):
        retention_days({"retention_days": retention})


def test_retention_defaults_to_a_week_and_takes_zero_to_ten_years() -> None:
    assert retention_days({}) == 7
    assert retention_days({"retention_days": 0}) == 0
    assert retention_days({"retention_days": 0.5}) == 0.5
    assert retention_days({"retention_days": 3650}) == 3650
    with pytest.raises(UnrecoverableError, match="data must be an object"):
        retention_days([1])


@pytest.mark.parametrize("retention", [-1, "7", 1e9])
async def test_a_maintenance_job_with_a_bad_retention_fails_at_once_and_deletes_nothing(
    ctx: AutomationContext, retention: object
) -> None:
    events = await new_tickets(ctx.sessionmaker, 1, title="Kept")
    await _process_all(ctx)
    job = await _maintenance(ctx, {"retention_days": retention})
    assert await job.getState() == "failed"
    assert job.attemptsMade == 1  # unrecoverable: not retried
    assert "retention_days must be a number of days from 0 to 3650" in job.failedReason
    assert [row.id for row in await event_rows(ctx.sessionmaker)] == events


OLD_OUTBOX = """CREATE TABLE outbox_events (
    id INTEGER NOT NULL, kind VARCHAR(32) NOT NULL, ticket_id VARCHAR(32),
    rule_id VARCHAR(32), payload TEXT NOT NULL, depth INTEGER NOT NULL,
    status VARCHAR(16) NOT NULL, lease_until FLOAT NOT NULL, attempts INTEGER NOT NULL,
    created_at FLOAT NOT NULL, processed_at FLOAT, error TEXT, PRIMARY KEY (id))"""


async def _old_database(path: Path) -> None:
    """A store as an older version left it: an outbox table without AUTOINCREMENT holding
    events 1-4 (3 gave up), events 5-9 pruned already but with traces elsewhere (an execution
    of event 7, the audit entry of event 9)."""
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    await create_schema(engine)
    await engine.dispose()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE alembic_version")  # made before migrations: no version recorded
    db.execute("DROP TABLE outbox_events")
    db.execute("DELETE FROM sqlite_sequence WHERE name = 'outbox_events'")
    db.execute(OLD_OUTBOX)
    db.execute("CREATE INDEX ix_outbox_status_id ON outbox_events (status, id)")
    now = time.time()
    for event_id, error in [(1, None), (2, None), (3, "ConnectionError: gave up"), (4, None)]:
        db.execute(
            "INSERT INTO outbox_events VALUES (?, 'on_ticket_created', NULL, NULL, '{}', 0, "
            "'done', 0, 5, ?, ?, ?)",
            (event_id, now - 86400, now - 86400, error),
        )
    db.execute(
        "INSERT INTO rule_executions (id, rule_id, rule_name, event_key, event_id, trigger, "
        "depth, conditions, action, outcome, created_at) VALUES ('exe_old', 'rule_old', 'old', "
        "'event:7', 7, 'on_ticket_created', 0, '[]', '{}', 'succeeded', 0)"
    )
    db.execute(
        "INSERT INTO audit_log (job_id, kind, data, created_at) "
        "VALUES ('audit-event-9', 'on_ticket_created', '{}', 0)"
    )
    db.commit()
    db.close()


def _outbox_sql(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return str(
            db.execute("SELECT sql FROM sqlite_master WHERE name = 'outbox_events'").fetchone()[0]
        )
    finally:
        db.close()


async def test_an_outbox_table_of_an_older_version_gets_ids_that_are_never_reused(
    tmp_path: Path,
    service_settings: Settings,
    temporal_client: Client,
    embedded_redis: EmbeddedRedis,
) -> None:
    path = tmp_path / "old.db"
    await _old_database(path)
    assert "AUTOINCREMENT" not in _outbox_sql(path)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await create_schema(engine)  # what every process does when it opens the store
        await create_schema(engine)  # and again: nothing more happens
        assert "AUTOINCREMENT" in _outbox_sql(path)
        sessions = make_sessionmaker(engine)
        rows = await event_rows(sessions)
        assert [(r.id, r.status, r.error, r.requeued_at) for r in rows] == [
            (1, "done", None, None),
            (2, "done", None, None),
            (3, "done", "ConnectionError: gave up", None),
            (4, "done", None, None),
        ]
        async with engine_context(
            sessions,
            settings=service_settings,
            temporal=temporal_client,
            redis_url=embedded_redis.url,
        ) as ctx:
            await add_rule(sessions, NOTIFY_RULE)
            job = await _maintenance(ctx, {"retention_days": 0})
            assert _result(job)["pruned_events"] == 3  # the one that gave up is kept
            new = await new_tickets(sessions, 2, title="After the upgrade")
            assert new == [10, 11]  # above the audited event 9, not max(id) + 1 = 4
            await _process_all(ctx)
            fired = await executions_of(sessions, new)
            assert sorted(e.outcome for e in fired) == ["succeeded", "succeeded"]
    finally:
        await engine.dispose()
