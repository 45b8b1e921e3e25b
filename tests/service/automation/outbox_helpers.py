"""Helpers of the outbox tests: a private store per test (SQLite or PostgreSQL), an engine
context on it with a private BullMQ key prefix, and rules and tickets put straight in the store.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stores import empty_store
from temporalio.client import Client

from protocol_lab.domain import Rule, load_catalog
from service.automation.context import AutomationContext
from service.jobs.producer import JobProducer
from service.settings import Settings
from service.store.executions import ExecutionRow
from service.store.outbox import OutboxRow
from service.store.rules import insert_rule, new_rule_row
from service.store.tickets import create_ticket

__all__ = [
    "NOTIFY_RULE",
    "WORKFLOW_RULE",
    "add_rule",
    "engine_context",
    "event_rows",
    "executions_of",
    "new_tickets",
    "private_store",
]

Sessions = async_sessionmaker[AsyncSession]

WORKFLOW_RULE: dict[str, Any] = {
    "name": "Incidents start the incident response",
    "trigger": "on_ticket_created",
    "conditions": {"category": "incident"},
    "action": {
        "type": "start_workflow",
        "workflow_name": "P1 Incident Response",
        "task_queue": "itsm-high-priority",
    },
}
NOTIFY_RULE: dict[str, Any] = {
    "name": "Tell the requester",
    "trigger": "on_ticket_created",
    "conditions": {"category": "incident"},
    "action": {
        "type": "send_notification",
        "channel": "notification",
        "recipient": "requester",
        "message": "We are on {ticket_id}",
    },
}


@contextlib.asynccontextmanager
async def private_store(
    backend: str, *, folder: Path, postgres_url: str
) -> AsyncIterator[Sessions]:
    """A fresh, empty store: a SQLite file in ``folder``, or a PostgreSQL schema of its own."""
    async with empty_store(backend, folder=folder, postgres_url=postgres_url) as sessions:
        yield sessions


@contextlib.asynccontextmanager
async def engine_context(
    sessionmaker: Sessions, *, settings: Settings, temporal: Client, redis_url: str
) -> AsyncIterator[AutomationContext]:
    """The rule engine's context on a store, with BullMQ keys under a prefix of its own."""
    jobs = JobProducer(redis_url, prefix=f"t{uuid.uuid4().hex[:8]}")
    try:
        yield AutomationContext(
            sessionmaker=sessionmaker,
            temporal=temporal,
            jobs=jobs,
            settings=settings,
            catalog=load_catalog(),
        )
    finally:
        await jobs.close()


async def add_rule(sessionmaker: Sessions, raw: dict[str, Any]) -> str:
    """Store an enabled rule; return its id."""
    async with sessionmaker() as session:
        row = await insert_rule(session, row=new_rule_row(Rule.model_validate(raw)))
    return row.id


async def new_tickets(sessionmaker: Sessions, count: int, *, title: str) -> list[int]:
    """Create ``count`` incident tickets (each with its outbox event); return the event ids."""
    ids = []
    for i in range(count):
        async with sessionmaker() as session:
            _, event_id = await create_ticket(
                session,
                fields={"title": f"{title} {i}", "category": "incident", "requester": "ana"},
                actor="test",
            )
        ids.append(event_id)
    return ids


async def executions_of(sessionmaker: Sessions, event_ids: list[int]) -> list[ExecutionRow]:
    """The executions recorded for these events."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(ExecutionRow).where(ExecutionRow.event_id.in_(event_ids))
        )
        return list(rows.scalars())


async def event_rows(sessionmaker: Sessions, event_ids: list[int] | None = None) -> list[OutboxRow]:
    """Outbox rows (of these ids), oldest first."""
    stmt = select(OutboxRow).order_by(OutboxRow.id)
    if event_ids is not None:
        stmt = stmt.where(OutboxRow.id.in_(event_ids))
    async with sessionmaker() as session:
        return list((await session.execute(stmt)).scalars())


async def count_events(sessionmaker: Sessions) -> int:
    """How many events the outbox holds."""
    async with sessionmaker() as session:
        return int((await session.execute(select(func.count(OutboxRow.id)))).scalar() or 0)
