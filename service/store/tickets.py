"""Tickets: the ITSM records rules react to. Every change writes its event into the outbox in the
same transaction, so no firing is lost and none is repeated (see ``service.store.outbox``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import Float, Index, Integer, String, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from protocol_lab.domain import Priority, TicketStatus
from protocol_lab.domain.tickets import ticket_number
from service.store.db import Base
from service.store.outbox import add_event, wake_dispatchers

__all__ = [
    "TICKET_UPDATABLE",
    "TicketError",
    "TicketRow",
    "apply_ticket_update",
    "create_ticket",
    "get_ticket",
    "list_tickets",
    "parse_ticket_id",
    "stage_ticket",
    "ticket_dict",
    "update_ticket_fields",
    "validate_ticket_fields",
]

# Fields a PATCH (or an automation action, or a workflow step) may set.
TICKET_UPDATABLE: Final = frozenset(
    {"title", "description", "category", "priority", "status", "assignee", "requester"}
)
_ENUMS: Final[dict[str, frozenset[str]]] = {
    "priority": frozenset(p.value for p in Priority),
    "status": frozenset(s.value for s in TicketStatus),
}
_LIMITS: Final = {"title": 200, "description": 10_000, "category": 64, "assignee": 128}
_LIMITS_DEFAULT: Final = 128


class TicketError(ValueError):
    """A ticket field is unknown or has a value it cannot take."""


class TicketRow(Base):
    """A ticket; its public id is ``TKT-<number>``."""

    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_status", "status"),)

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    category: Mapped[str | None] = mapped_column(String(64), nullable=True)
    priority: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(128), nullable=True)
    requester: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    last_activity_at: Mapped[float] = mapped_column(Float)


def parse_ticket_id(ticket_id: str) -> int | None:
    """The number of ``TKT-<n>``; None when the string is not a ticket id."""
    return ticket_number(ticket_id)


def ticket_dict(row: TicketRow) -> dict[str, Any]:
    """The API shape of a ticket (timestamps in Unix seconds)."""
    return {
        "id": f"TKT-{row.number}",
        "title": row.title,
        "description": row.description,
        "category": row.category,
        "priority": row.priority,
        "status": row.status,
        "assignee": row.assignee,
        "requester": row.requester,
        "created_at": int(row.created_at),
        "updated_at": int(row.updated_at),
        "last_activity_at": int(row.last_activity_at),
    }


def validate_ticket_fields(fields: Mapping[str, Any], *, creating: bool = False) -> dict[str, Any]:
    """Check names and values of ticket fields; raise :class:`TicketError` naming the field."""
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in TICKET_UPDATABLE:
            allowed = sorted(TICKET_UPDATABLE)
            raise TicketError(f"{name}: not a writable ticket field; use {allowed}")
        if name in _ENUMS:
            if value not in _ENUMS[name]:
                raise TicketError(f"{name}: must be one of {sorted(_ENUMS[name])}")
        elif value is not None:
            if not isinstance(value, str):
                raise TicketError(f"{name}: must be a string or null")
            if len(value) > _LIMITS.get(name, _LIMITS_DEFAULT):
                raise TicketError(f"{name}: at most {_LIMITS.get(name, _LIMITS_DEFAULT)} chars")
        if name == "title" and (not isinstance(value, str) or not value.strip()):
            raise TicketError("title: must be a non-empty string")
        clean[name] = value
    if creating and "title" not in clean:
        raise TicketError("title: required")
    return clean


async def create_ticket(
    session: AsyncSession, *, fields: Mapping[str, Any], actor: str, now: float | None = None
) -> tuple[dict[str, Any], int]:
    """Create a ticket and its ``on_ticket_created`` event; commit; return (ticket, event id)."""
    ticket, event_id = await stage_ticket(session, fields=fields, actor=actor, now=now)
    await session.commit()
    wake_dispatchers()
    return ticket, event_id


async def stage_ticket(
    session: AsyncSession, *, fields: Mapping[str, Any], actor: str, now: float | None = None
) -> tuple[dict[str, Any], int]:
    """Stage a new ticket and its ``on_ticket_created`` event in the caller's transaction.

    Returns (ticket, event id). Does not commit: after committing, call
    :func:`~service.store.outbox.wake_dispatchers`.
    """
    clean = validate_ticket_fields(fields, creating=True)
    stamp = time.time() if now is None else now
    row = TicketRow(
        title=clean["title"],
        description=clean.get("description"),
        category=clean.get("category"),
        priority=clean.get("priority") or Priority.P3.value,
        status=clean.get("status") or TicketStatus.OPEN.value,
        assignee=clean.get("assignee"),
        requester=clean.get("requester"),
        created_at=stamp,
        updated_at=stamp,
        last_activity_at=stamp,
    )
    session.add(row)
    await session.flush()
    ticket = ticket_dict(row)
    event_id = await add_event(
        session,
        kind="on_ticket_created",
        ticket_id=ticket["id"],
        payload={"ticket": ticket, "previous": None, "changed": sorted(ticket), "actor": actor},
    )
    return ticket, event_id


async def _take_write_lock(session: AsyncSession, number: int) -> None:
    # SQLite ignores FOR UPDATE and reads outside a write transaction, so two updates could
    # both read the old status. A no-op write as the transaction's first statement takes the
    # database's write lock (waiting for the busy timeout), like BEGIN IMMEDIATE: the read that
    # follows sees every update committed before it, and none can commit until this one does.
    await session.execute(
        update(TicketRow)
        .where(TicketRow.number == number)
        .values(number=TicketRow.number)
        .execution_options(synchronize_session=False)
    )


async def _row(session: AsyncSession, ticket_id: str, *, lock: bool = False) -> TicketRow | None:
    number = parse_ticket_id(ticket_id)
    if number is None:
        return None
    stmt = select(TicketRow).where(TicketRow.number == number)
    if lock:
        # PostgreSQL: a row lock; a concurrent update waits, then reads the committed row.
        stmt = stmt.with_for_update()
        if session.get_bind().dialect.name == "sqlite":
            await _take_write_lock(session, number)
    return (await session.execute(stmt.execution_options(populate_existing=True))).scalar()


async def get_ticket(session: AsyncSession, *, ticket_id: str) -> dict[str, Any] | None:
    """A ticket in API shape, or None."""
    row = await _row(session, ticket_id)
    return None if row is None else ticket_dict(row)


async def apply_ticket_update(
    session: AsyncSession,
    *,
    ticket_id: str,
    fields: Mapping[str, Any],
    actor: str,
    depth: int = 0,
    cause: str | None = None,
) -> tuple[dict[str, Any] | None, int | None]:
    """Stage an update and its ``on_ticket_updated`` event in the caller's transaction.

    Returns (ticket after, event id); (None, None) when there is no such ticket; event id None
    when nothing changed (values equal to the current ones record no event). Does not commit.
    """
    clean = validate_ticket_fields(fields)
    row = await _row(session, ticket_id, lock=True)
    if row is None:
        return None, None
    before = ticket_dict(row)
    changed = sorted(name for name, value in clean.items() if getattr(row, name) != value)
    if not changed:
        return before, None
    stamp = time.time()
    for name in changed:
        setattr(row, name, clean[name])
    row.updated_at = stamp
    row.last_activity_at = stamp
    await session.flush()
    after = ticket_dict(row)
    event_id = await add_event(
        session,
        kind="on_ticket_updated",
        ticket_id=after["id"],
        depth=depth,
        payload={
            "ticket": after,
            "previous": before,
            "changed": changed,
            "actor": actor,
            "cause": cause,
        },
    )
    return after, event_id


async def update_ticket_fields(
    session: AsyncSession, *, ticket_id: str, fields: dict[str, Any], actor: str
) -> dict[str, Any] | None:
    """Apply ``fields`` to a ticket with its ``on_ticket_updated`` event, and commit.

    Returns the ticket (API shape) or None when there is no such ticket. Setting values equal to
    the current ones is a no-op that records no event. Raises :class:`TicketError` for a field
    that is not writable or a value it cannot take.
    """
    ticket, event_id = await apply_ticket_update(
        session, ticket_id=ticket_id, fields=fields, actor=actor
    )
    await session.commit()
    if event_id is not None:
        wake_dispatchers()
    return ticket


async def list_tickets(
    session: AsyncSession,
    *,
    filters: Mapping[str, str],
    limit: int,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """A page of tickets, newest first, with equality filters; returns (page, has_more).

    Raises :class:`TicketError` when a cursor is not a ticket id.
    """
    stmt = select(TicketRow)
    for name, value in filters.items():
        stmt = stmt.where(getattr(TicketRow, name) == value)
    if starting_after is not None:
        number = parse_ticket_id(starting_after)
        if number is None:
            raise TicketError("starting_after: not a ticket id")
        stmt = stmt.where(TicketRow.number < number).order_by(TicketRow.number.desc())
    elif ending_before is not None:
        number = parse_ticket_id(ending_before)
        if number is None:
            raise TicketError("ending_before: not a ticket id")
        stmt = stmt.where(TicketRow.number > number).order_by(TicketRow.number.asc())
    else:
        stmt = stmt.order_by(TicketRow.number.desc())
    rows = list((await session.execute(stmt.limit(limit + 1))).scalars())
    has_more = len(rows) > limit
    rows = rows[:limit]
    if ending_before is not None and starting_after is None:
        rows.reverse()
    return [ticket_dict(r) for r in rows], has_more
