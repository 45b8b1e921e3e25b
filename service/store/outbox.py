"""The transactional outbox: ticket events written in the same transaction as the change.

A dispatcher claims an event (``pending`` -> ``processing`` with a lease), evaluates the rules
of its trigger and marks it ``done``. A claim is one conditional UPDATE, so two dispatchers never
hold the same event; a dispatcher that dies leaves a lease that expires, and the event is claimed
again. What a claim repeats is made harmless by the executions table (one row per event and rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Float, Index, Integer, String, Text, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from service.store.db import Base

__all__ = [
    "LEASE_SECONDS",
    "OutboxEvent",
    "OutboxRow",
    "add_event",
    "claim_event",
    "finish_event",
    "get_event",
    "pending_event_ids",
    "release_event",
    "wake_dispatchers",
    "wakeup_signal",
]

LEASE_SECONDS: Final = 30.0


class OutboxRow(Base):
    """One event waiting for (or done with) rule evaluation."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    rule_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    payload: Mapped[str] = mapped_column(Text)
    depth: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    lease_until: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    processed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """An event as the dispatcher sees it."""

    id: int
    kind: str
    ticket_id: str | None
    rule_id: str | None
    payload: dict[str, Any]
    depth: int
    created_at: float
    attempts: int


def _event(row: OutboxRow) -> OutboxEvent:
    return OutboxEvent(
        id=row.id,
        kind=row.kind,
        ticket_id=row.ticket_id,
        rule_id=row.rule_id,
        payload=json.loads(row.payload),
        depth=row.depth,
        created_at=row.created_at,
        attempts=row.attempts,
    )


async def add_event(
    session: AsyncSession,
    *,
    kind: str,
    payload: dict[str, Any],
    ticket_id: str | None = None,
    rule_id: str | None = None,
    depth: int = 0,
) -> int:
    """Stage an event in the caller's transaction (no commit); return its id."""
    row = OutboxRow(
        kind=kind,
        ticket_id=ticket_id,
        rule_id=rule_id,
        payload=json.dumps(payload, default=str),
        depth=depth,
        status="pending",
        lease_until=0.0,
        attempts=0,
        created_at=time.time(),
    )
    session.add(row)
    await session.flush()
    return row.id


async def pending_event_ids(session: AsyncSession, *, limit: int = 100) -> list[int]:
    """Ids of events that are pending, or whose claim's lease has expired (oldest first)."""
    now = time.time()
    stmt = (
        select(OutboxRow.id)
        .where(
            or_(
                OutboxRow.status == "pending",
                (OutboxRow.status == "processing") & (OutboxRow.lease_until < now),
            )
        )
        .order_by(OutboxRow.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def claim_event(
    session: AsyncSession, *, event_id: int, lease_s: float = LEASE_SECONDS
) -> OutboxEvent | None:
    """Claim an event for ``lease_s`` seconds; None when someone else holds it or it is done."""
    now = time.time()
    result = await session.execute(
        update(OutboxRow)
        .where(
            OutboxRow.id == event_id,
            or_(
                OutboxRow.status == "pending",
                (OutboxRow.status == "processing") & (OutboxRow.lease_until < now),
            ),
        )
        .values(status="processing", lease_until=now + lease_s, attempts=OutboxRow.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    if getattr(result, "rowcount", 0) != 1:
        return None
    row = await session.get(OutboxRow, event_id, populate_existing=True)
    return None if row is None else _event(row)


async def finish_event(session: AsyncSession, *, event_id: int, error: str | None = None) -> None:
    """Mark a claimed event done (commits)."""
    await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == event_id)
        .values(status="done", processed_at=time.time(), error=error)
        .execution_options(synchronize_session=False)
    )
    await session.commit()


async def get_event(session: AsyncSession, *, event_id: int) -> OutboxRow | None:
    """The raw row of an event (for tests and inspection)."""
    return await session.get(OutboxRow, event_id, populate_existing=True)


_WAKEUP: dict[int, asyncio.Event] = {}


def wakeup_signal() -> asyncio.Event:
    """An event set whenever this process writes outbox events (per running loop)."""
    loop = asyncio.get_running_loop()
    event = _WAKEUP.get(id(loop))
    if event is None:
        event = _WAKEUP[id(loop)] = asyncio.Event()
    return event


def wake_dispatchers() -> None:
    """Tell a dispatcher of this process that new events are waiting (no-op without a loop)."""
    with contextlib.suppress(RuntimeError):
        wakeup_signal().set()


async def release_event(session: AsyncSession, *, event_id: int, retry_in_s: float) -> None:
    """Leave a claimed event unfinished, to be claimed again after ``retry_in_s`` (commits)."""
    await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == event_id)
        .values(lease_until=time.time() + retry_in_s)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
