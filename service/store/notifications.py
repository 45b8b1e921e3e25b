"""Notifications delivered by the notification queue, visible on their ticket; the audit trail."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Float, Index, Integer, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from service.store.db import Base

__all__ = [
    "AuditRow",
    "NotificationRow",
    "SuggestionRow",
    "add_audit",
    "add_notification",
    "get_suggestion",
    "list_audit",
    "list_notifications",
    "mark_delivered",
    "save_suggestion",
]


class NotificationRow(Base):
    """A notification stored by the notification queue (one per job)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_ticket", "ticket_id", "created_at"),)

    job_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    ticket_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    recipient: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(300), nullable=True)
    message: Mapped[str] = mapped_column(Text)
    rule_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    delivered_to: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class AuditRow(Base):
    """One entry of the append-only audit trail (one per audit job)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class SuggestionRow(Base):
    """The category and priority the ai-inference queue suggests for a ticket."""

    __tablename__ = "ticket_suggestions"

    ticket_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    category: Mapped[str] = mapped_column(String(64))
    category_confidence: Mapped[float] = mapped_column(Float)
    priority: Mapped[str] = mapped_column(String(2))
    priority_confidence: Mapped[float] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)


async def add_notification(
    session: AsyncSession,
    *,
    job_id: str,
    ticket_id: str | None,
    recipient: str,
    message: str,
    subject: str | None = None,
    rule_id: str | None = None,
) -> bool:
    """Store a notification once per job (commits); False if the job stored it before."""
    session.add(
        NotificationRow(
            job_id=job_id,
            ticket_id=ticket_id,
            recipient=recipient,
            subject=subject,
            message=message,
            rule_id=rule_id,
            created_at=time.time(),
        )
    )
    try:
        await session.commit()
        return True
    except IntegrityError:
        await session.rollback()
        return False


async def mark_delivered(session: AsyncSession, *, job_id: str, url: str) -> None:
    """Record where a notification was sent on to (commits)."""
    row = await session.get(NotificationRow, job_id)
    if row is not None:
        row.delivered_to = url
        await session.commit()


async def list_notifications(session: AsyncSession, *, ticket_id: str) -> list[dict[str, Any]]:
    """The notifications of a ticket, oldest first."""
    rows = (
        await session.execute(
            select(NotificationRow)
            .where(NotificationRow.ticket_id == ticket_id)
            .order_by(NotificationRow.created_at, NotificationRow.job_id)
        )
    ).scalars()
    return [
        {
            "id": r.job_id,
            "ticket_id": r.ticket_id,
            "recipient": r.recipient,
            "subject": r.subject,
            "message": r.message,
            "rule_id": r.rule_id,
            "delivered_to": r.delivered_to,
            "created_at": int(r.created_at),
        }
        for r in rows
    ]


async def add_audit(
    session: AsyncSession,
    *,
    job_id: str,
    kind: str,
    data: dict[str, Any],
    subject: str | None = None,
) -> bool:
    """Append an audit entry once per job (commits); False if it was appended before."""
    session.add(
        AuditRow(
            job_id=job_id,
            kind=kind,
            subject=subject,
            data=json.dumps(data, default=str),
            created_at=time.time(),
        )
    )
    try:
        await session.commit()
        return True
    except IntegrityError:
        await session.rollback()
        return False


async def list_audit(
    session: AsyncSession, *, subject: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest audit entries (of one subject)."""
    stmt = select(AuditRow)
    if subject is not None:
        stmt = stmt.where(AuditRow.subject == subject)
    rows = (await session.execute(stmt.order_by(AuditRow.seq.desc()).limit(limit))).scalars()
    return [
        {
            "job_id": r.job_id,
            "kind": r.kind,
            "subject": r.subject,
            "data": json.loads(r.data),
            "created_at": int(r.created_at),
        }
        for r in rows
    ]


async def save_suggestion(
    session: AsyncSession,
    *,
    ticket_id: str,
    category: str,
    category_confidence: float,
    priority: str,
    priority_confidence: float,
    model: str,
) -> None:
    """Store (or replace) a ticket's suggestion (commits)."""
    row = await session.get(SuggestionRow, ticket_id)
    if row is None:
        row = SuggestionRow(ticket_id=ticket_id)
        session.add(row)
    row.category = category
    row.category_confidence = category_confidence
    row.priority = priority
    row.priority_confidence = priority_confidence
    row.model = model
    row.created_at = time.time()
    await session.commit()


async def get_suggestion(session: AsyncSession, *, ticket_id: str) -> dict[str, Any] | None:
    """A ticket's suggestion, or None."""
    row = await session.get(SuggestionRow, ticket_id, populate_existing=True)
    if row is None:
        return None
    return {
        "ticket_id": row.ticket_id,
        "category": row.category,
        "category_confidence": round(row.category_confidence, 3),
        "priority": row.priority,
        "priority_confidence": round(row.priority_confidence, 3),
        "model": row.model,
        "created_at": int(row.created_at),
    }
