"""The timeline archive: closed workflows whose timeline lives here once Temporal forgot them.

One row per workflow id, keyed by id and ordered by ``protocol_order`` (the time-ordered integer
of :func:`service.temporal.ids.order_of`, the list cursor). The timeline is kept whole, as JSON
rows of :class:`~protocol_lab.domain.TimelineEvent`. Writing is an upsert, so archiving the same
workflow twice leaves one row (with its first ``archived_at``).

``ticket_id`` is the workflow's ``ProtocolTicketId`` search attribute, so a list filtered by
ticket finds archived workflows too. Tables made before the column existed get it (nullable)
from the store's first migration; rows archived before then have none.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Index,
    Integer,
    String,
    Text,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from protocol_lab.domain import TimelineEvent
from service.store.db import Base

__all__ = [
    "ArchivedWorkflow",
    "archived_rows",
    "archived_timeline",
    "get_archived",
    "list_archived",
    "upsert_archived",
]


class ArchivedWorkflow(Base):
    """A closed workflow's identity, outcome and full timeline."""

    __tablename__ = "workflow_archive"
    __table_args__ = (
        Index("ix_workflow_archive_order", "protocol_order"),
        Index("ix_workflow_archive_queue_order", "task_queue", "protocol_order"),
        Index("ix_workflow_archive_ticket_order", "ticket_id", "protocol_order"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    task_queue: Mapped[str] = mapped_column(String(64))
    trigger_type: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[str | None] = mapped_column(String(200), nullable=True, default=None)
    status: Mapped[str] = mapped_column(String(16), doc="the closing status: completed or failed")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    completed_at: Mapped[float] = mapped_column(Float)
    protocol_order: Mapped[int] = mapped_column(BigInteger)
    steps_completed: Mapped[int] = mapped_column(Integer, default=0)
    steps_total: Mapped[int] = mapped_column(Integer, default=0)
    timeline: Mapped[str] = mapped_column(Text, doc="JSON list of TimelineEvent rows")
    archived_at: Mapped[float] = mapped_column(Float)


def archived_timeline(row: ArchivedWorkflow) -> list[TimelineEvent]:
    """The row's timeline as domain events."""
    return [TimelineEvent(**item) for item in json.loads(row.timeline)]


_UPDATABLE = (
    "name",
    "task_queue",
    "trigger_type",
    "ticket_id",
    "status",
    "reason",
    "started_at",
    "completed_at",
    "protocol_order",
    "steps_completed",
    "steps_total",
    "timeline",
)


async def upsert_archived(
    session: AsyncSession,
    *,
    workflow_id: str,
    name: str,
    task_queue: str,
    trigger_type: str,
    status: str,
    reason: str | None,
    started_at: float | None,
    completed_at: float,
    protocol_order: int,
    steps_completed: int,
    steps_total: int,
    timeline: Sequence[TimelineEvent],
    archived_at: float,
    ticket_id: str | None = None,
) -> None:
    """Insert or refresh the archive row of ``workflow_id`` (keeps the first ``archived_at``).

    Commits.
    """
    values: dict[str, Any] = {
        "id": workflow_id,
        "name": name,
        "task_queue": task_queue,
        "trigger_type": trigger_type,
        "ticket_id": ticket_id,
        "status": status,
        "reason": reason,
        "started_at": started_at,
        "completed_at": completed_at,
        "protocol_order": protocol_order,
        "steps_completed": steps_completed,
        "steps_total": steps_total,
        "timeline": json.dumps([event.to_dict() for event in timeline]),
        "archived_at": archived_at,
    }
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        pg = postgresql.insert(ArchivedWorkflow).values(**values)
        statement: Any = pg.on_conflict_do_update(
            index_elements=["id"], set_={k: pg.excluded[k] for k in _UPDATABLE}
        )
    elif dialect == "sqlite":
        lite = sqlite.insert(ArchivedWorkflow).values(**values)
        statement = lite.on_conflict_do_update(
            index_elements=["id"], set_={k: lite.excluded[k] for k in _UPDATABLE}
        )
    else:  # pragma: no cover - the store runs on SQLite or PostgreSQL
        raise NotImplementedError(f"no upsert for dialect {dialect!r}")
    await session.execute(statement)
    await session.commit()


async def get_archived(session: AsyncSession, *, workflow_id: str) -> ArchivedWorkflow | None:
    """The archive row of ``workflow_id``, or None."""
    return await session.get(ArchivedWorkflow, workflow_id)


async def archived_rows(
    session: AsyncSession, *, workflow_ids: Sequence[str]
) -> dict[str, ArchivedWorkflow]:
    """The archive rows of those of ``workflow_ids`` the archive holds, by id."""
    if not workflow_ids:
        return {}
    result = await session.execute(
        select(ArchivedWorkflow).where(ArchivedWorkflow.id.in_(list(workflow_ids)))
    )
    return {row.id: row for row in result.scalars()}


async def list_archived(
    session: AsyncSession,
    *,
    task_queue: str | None = None,
    ticket_id: str | None = None,
    below: int | None = None,
    above: int | None = None,
    limit: int = 10,
    newest_first: bool = True,
    name: str | None = None,
    trigger_type: str | None = None,
) -> list[ArchivedWorkflow]:
    """Up to ``limit`` rows with ``above < protocol_order < below`` (on ``task_queue``, for
    ``ticket_id``, of ``name`` and ``trigger_type``, when given), by order (then id)."""
    query = select(ArchivedWorkflow)
    if name is not None:
        query = query.where(ArchivedWorkflow.name == name)
    if trigger_type is not None:
        query = query.where(ArchivedWorkflow.trigger_type == trigger_type)
    if task_queue is not None:
        query = query.where(ArchivedWorkflow.task_queue == task_queue)
    if ticket_id is not None:
        query = query.where(ArchivedWorkflow.ticket_id == ticket_id)
    if below is not None:
        query = query.where(ArchivedWorkflow.protocol_order < below)
    if above is not None:
        query = query.where(ArchivedWorkflow.protocol_order > above)
    if newest_first:
        query = query.order_by(ArchivedWorkflow.protocol_order.desc(), ArchivedWorkflow.id.desc())
    else:
        query = query.order_by(ArchivedWorkflow.protocol_order.asc(), ArchivedWorkflow.id.asc())
    result = await session.execute(query.limit(limit))
    return list(result.scalars())
