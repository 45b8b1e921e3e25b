"""The transactional outbox: ticket events written in the same transaction as the change.

A dispatcher claims an event (``pending`` -> ``processing`` with a lease), evaluates the rules
of its trigger and marks it ``done``. A claim is one conditional UPDATE, so two dispatchers never
hold the same event; the holder renews its lease while it works (:func:`renew_lease`), a
dispatcher that dies leaves a lease that expires, and the event is claimed again. What a claim
repeats is made harmless by the executions table (one row per event and rule). The claim count
(``attempts``) fences a holder: renewing, releasing and finishing only act on the holder's claim.

The dispatcher works in batches: :func:`claim_events` claims up to N events in one statement
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so dispatchers in several processes take different
events without waiting for each other; SQLite's single writer makes the statement atomic), and
:func:`renew_leases`, :func:`finish_events` and :func:`unclaim_events` act on a batch of claims
in one statement each.

An event that cannot be processed before its give-up horizon ends ``failed``; an operator
re-queues failed events with :func:`redrive_events` (failed executions go back to ``pending``).
Maintenance prunes ``done`` events only, so failed ones stay re-drivable.

Event ids are never reused, on any backend (SQLite ``AUTOINCREMENT``, a PostgreSQL sequence):
the executions (``event:<id>``) and the audit jobs (``audit-event-<id>``) are keyed by them, so a
reused id would find an older event's firings and silently not fire. A table made without
``AUTOINCREMENT`` by an older version is rebuilt with it by the store's first migration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Float,
    Index,
    Integer,
    String,
    Text,
    delete,
    exists,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from service.observability.tracing import current_traceparent
from service.store.db import Base
from service.store.executions import ExecutionRow

__all__ = [
    "LEASE_SECONDS",
    "STATUSES",
    "OutboxEvent",
    "OutboxRow",
    "add_event",
    "audit_job_id",
    "claim_event",
    "claim_events",
    "fail_event",
    "finish_event",
    "finish_events",
    "get_event",
    "pending_event_ids",
    "prune_events",
    "redrive_events",
    "release_event",
    "renew_lease",
    "renew_leases",
    "sla_timer_job_id",
    "suggestion_job_id",
    "unclaim_events",
    "wake_dispatchers",
    "wakeup_signal",
]

LEASE_SECONDS: Final = 30.0
# pending -> processing (claimed, leased) -> done | failed (gave up; re-drivable) -> pending ...
STATUSES: Final = ("pending", "processing", "done", "failed")


class OutboxRow(Base):
    """One event waiting for (or done with) rule evaluation."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_status_id", "status", "id"),
        # Without AUTOINCREMENT SQLite hands out max(id) + 1, reusing the ids of pruned events.
        {"sqlite_autoincrement": True},
    )

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
    # the last error: why the event is being retried, or why it failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # when an operator last re-queued the event (its give-up horizon counts from here)
    requeued_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # the W3C trace context the event was written in: its processing continues that trace
    traceparent: Mapped[str | None] = mapped_column(String(55), nullable=True)


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
    requeued_at: float | None = None
    traceparent: str | None = None

    @property
    def retrying_since(self) -> float:
        """When this round of attempts began: creation, or the last re-drive."""
        return self.created_at if self.requeued_at is None else self.requeued_at


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
        requeued_at=row.requeued_at,
        traceparent=row.traceparent,
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
    """Stage an event in the caller's transaction (no commit); return its id. The event keeps
    the current trace context, for its processing to continue the trace."""
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
        traceparent=current_traceparent(),
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


def _held(event_id: int, attempt: int | None) -> ColumnElement[bool]:
    """The event; with ``attempt``, only while the claim that counted it still holds it."""
    cond = OutboxRow.id == event_id
    if attempt is not None:
        cond = cond & (OutboxRow.status == "processing") & (OutboxRow.attempts == attempt)
    return cond


async def _set(session: AsyncSession, where: ColumnElement[bool], **values: Any) -> bool:
    result = await session.execute(
        update(OutboxRow).where(where).values(**values).execution_options(synchronize_session=False)
    )
    await session.commit()
    return bool(getattr(result, "rowcount", 0))


async def renew_lease(
    session: AsyncSession, *, event_id: int, attempt: int, lease_s: float = LEASE_SECONDS
) -> bool:
    """Extend the lease of claim ``attempt`` by ``lease_s`` from now (commits); False if lost."""
    return await _set(session, _held(event_id, attempt), lease_until=time.time() + lease_s)


async def finish_event(session: AsyncSession, *, event_id: int, attempt: int | None = None) -> bool:
    """Mark an event done (commits); with ``attempt``, only while that claim holds it."""
    return await _set(
        session, _held(event_id, attempt), status="done", processed_at=time.time(), error=None
    )


async def fail_event(
    session: AsyncSession, *, event_id: int, error: str, attempt: int | None = None
) -> bool:
    """Give up on an event: ``failed`` with the reason, kept for a re-drive (commits)."""
    return await _set(
        session, _held(event_id, attempt), status="failed", processed_at=time.time(), error=error
    )


async def release_event(
    session: AsyncSession,
    *,
    event_id: int,
    retry_in_s: float,
    attempt: int | None = None,
    error: str | None = None,
) -> bool:
    """Leave a claimed event unfinished, to be claimed again after ``retry_in_s`` (commits)."""
    return await _set(
        session, _held(event_id, attempt), lease_until=time.time() + retry_in_s, error=error
    )


def _claimable(now: float) -> ColumnElement[bool]:
    """Pending, or claimed by a holder whose lease ran out (or released for a retry now due)."""
    return or_(
        OutboxRow.status == "pending",
        (OutboxRow.status == "processing") & (OutboxRow.lease_until < now),
    )


async def claim_events(
    session: AsyncSession, *, limit: int, lease_s: float = LEASE_SECONDS
) -> list[OutboxEvent]:
    """Claim up to ``limit`` claimable events at once for ``lease_s`` seconds, oldest first
    (commits).

    One statement: on PostgreSQL the rows are picked ``FOR UPDATE SKIP LOCKED``, so dispatchers
    claiming at the same time take different events instead of waiting for each other; SQLite
    runs the statement under its single writer lock. Each claim counts an attempt.
    """
    now = time.time()
    # A read first: an idle dispatcher's polls (and its pass after the API took the event it was
    # woken for) then never take SQLite's writer lock from the writers that have work.
    first = await session.execute(select(OutboxRow.id).where(_claimable(now)).limit(1))
    if first.first() is None:
        await session.rollback()
        return []
    picked = (
        select(OutboxRow.id)
        .where(_claimable(now))
        .order_by(OutboxRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    result = await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id.in_(select(picked.c.id)), _claimable(now))
        .values(status="processing", lease_until=now + lease_s, attempts=OutboxRow.attempts + 1)
        .returning(OutboxRow),
        execution_options={"synchronize_session": False},
    )
    events = sorted((_event(row) for row in result.scalars()), key=lambda e: e.id)
    await session.commit()
    return events


Claim = tuple[int, int]  # (event id, attempt): one claim of an event


def _claims_held(claims: Sequence[Claim]) -> ColumnElement[bool]:
    """The events of these claims, while the claims still hold them."""
    return (OutboxRow.status == "processing") & tuple_(OutboxRow.id, OutboxRow.attempts).in_(
        list(claims)
    )


async def renew_leases(
    session: AsyncSession, *, claims: Sequence[Claim], lease_s: float = LEASE_SECONDS
) -> set[int]:
    """Extend the leases of these claims by ``lease_s`` from now (commits); return the ids of
    the events still held (a claim that was lost is not renewed)."""
    if not claims:
        return set()
    result = await session.execute(
        update(OutboxRow)
        .where(_claims_held(claims))
        .values(lease_until=time.time() + lease_s)
        .returning(OutboxRow.id),
        execution_options={"synchronize_session": False},
    )
    held = set(result.scalars())
    await session.commit()
    return held


async def finish_events(session: AsyncSession, *, claims: Sequence[Claim]) -> int:
    """Mark the events of these claims done in one statement (commits); return how many (a
    claim that was lost finishes nothing)."""
    if not claims:
        return 0
    result = await session.execute(
        update(OutboxRow)
        .where(_claims_held(claims))
        .values(status="done", processed_at=time.time(), error=None)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


async def unclaim_events(session: AsyncSession, *, claims: Sequence[Claim]) -> int:
    """Give back claims whose events were not worked on (commits): claimable again at once,
    and the attempt the claim counted is not counted."""
    if not claims:
        return 0
    result = await session.execute(
        update(OutboxRow)
        .where(_claims_held(claims))
        .values(lease_until=0.0, attempts=OutboxRow.attempts - 1)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


async def get_event(session: AsyncSession, *, event_id: int) -> OutboxRow | None:
    """The raw row of an event (for tests and inspection)."""
    return await session.get(OutboxRow, event_id, populate_existing=True)


def _failed() -> ColumnElement[bool]:
    # Before failed events had a status of their own, giving up left them done with an error.
    return (OutboxRow.status == "failed") | (
        (OutboxRow.status == "done") & OutboxRow.error.is_not(None)
    )


def _of_this_event() -> ColumnElement[bool]:
    """Executions of the event as it is now (not of an older event that had its id)."""
    return (ExecutionRow.event_id == OutboxRow.id) & (
        ExecutionRow.created_at >= OutboxRow.created_at
    )


async def redrive_events(
    session: AsyncSession, *, event_ids: Sequence[int] | None = None, limit: int = 1000
) -> list[int]:
    """Queue failed events again; return their ids, oldest first (commits).

    Without ``event_ids``: every event that failed (at most ``limit``). With ids: those of them
    that failed, or that were processed but have failed executions; an event that is pending,
    being processed, or done with nothing failed is left alone. The failed executions of each
    go back to ``pending``, so processing the event again performs exactly those (executions
    are unique per event and rule; the succeeded ones are found and not repeated). The event's
    give-up horizon starts again now.
    """
    wanted = _failed()
    if event_ids is not None:
        failed_execution = exists().where(_of_this_event(), ExecutionRow.outcome == "failed")
        wanted = OutboxRow.id.in_(list(event_ids)) & (
            wanted | ((OutboxRow.status == "done") & failed_execution)
        )
    ids = list(
        (
            await session.execute(
                select(OutboxRow.id).where(wanted).order_by(OutboxRow.id).limit(limit)
            )
        ).scalars()
    )
    if not ids:
        await session.rollback()
        return []
    # The events first: whether one is wanted may depend on its failed executions.
    now = time.time()
    await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id.in_(ids), wanted)
        .values(
            status="pending",
            attempts=0,
            lease_until=0.0,
            error=None,
            processed_at=None,
            requeued_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    ids = list(
        (
            await session.execute(
                select(OutboxRow.id)
                .where(OutboxRow.id.in_(ids), OutboxRow.requeued_at == now)
                .order_by(OutboxRow.id)
            )
        ).scalars()
    )
    event_created = (
        select(OutboxRow.created_at).where(OutboxRow.id == ExecutionRow.event_id).scalar_subquery()
    )
    await session.execute(
        update(ExecutionRow)
        .where(
            ExecutionRow.event_id.in_(ids),
            ExecutionRow.outcome == "failed",
            ExecutionRow.created_at >= event_created,
        )
        .values(
            outcome="pending",
            finished_at=None,
            detail="re-driven; before: " + func.coalesce(ExecutionRow.detail, "failed"),
        )
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    wake_dispatchers()
    return ids


async def prune_events(session: AsyncSession, *, older_than: float) -> int:
    """Delete the events processed without error created before ``older_than`` (commits).

    Failed events (and those that gave up before ``failed`` existed) are kept: they may be
    re-driven. Ids of pruned events are never handed out again.
    """
    result = await session.execute(
        delete(OutboxRow).where(
            OutboxRow.status == "done",
            OutboxRow.error.is_(None),
            OutboxRow.created_at < older_than,
        )
    )
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


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


_AUDIT_JOB_PREFIX: Final = "audit-event-"


def _side_job_id(prefix: str, key: int | str, created_at: float) -> str:
    """The id of a job an event causes: ``prefix``, the event's ``key`` (its id, its ticket's
    id) and the event's creation time in microseconds. The same on every retry of the event;
    and since a store made anew beside the same Redis counts its ids from 1 again, the time keeps
    a new event from meeting an old job's id, which BullMQ would take for the same job and drop.
    """
    return f"{prefix}{key}-{round(created_at * 1_000_000)}"


def audit_job_id(event_id: int, created_at: float) -> str:
    """The id of the audit job of an event (one per event: BullMQ and the trail dedupe on it)."""
    return _side_job_id(_AUDIT_JOB_PREFIX, event_id, created_at)


def suggestion_job_id(ticket_id: str, created_at: float) -> str:
    """The id of the AI suggestion job of a ticket's creation event (created at ``created_at``)."""
    return _side_job_id("ai-", ticket_id, created_at)


def sla_timer_job_id(ticket_id: str, created_at: float) -> str:
    """The id of the SLA timer job of a ticket's creation event (created at ``created_at``)."""
    return _side_job_id("sla-", ticket_id, created_at)
