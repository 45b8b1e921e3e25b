"""Draft workflows: scheduled workflows created without a start time, waiting for /start, and
recurring ones (with a cron or interval ``schedule``) whose Temporal Schedule starts their runs.

A draft has its workflow id (time-ordered, so it sits in lists where it was created) and the
plan it will run (the definition's version at creation), but no Temporal execution yet:
``POST /v1/workflows/{id}/start`` starts the execution under the draft's id and deletes the
row. Rows are listed by ``protocol_order`` like the timeline archive.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from service.store.db import Base

__all__ = [
    "DraftWorkflow",
    "count_drafts",
    "delete_draft",
    "draft_input",
    "draft_schedule",
    "get_draft",
    "insert_draft",
    "list_drafts",
]


class DraftWorkflow(Base):
    """A workflow created as a draft, not started yet."""

    __tablename__ = "workflow_drafts"
    __table_args__ = (
        Index("ix_workflow_drafts_order", "protocol_order"),
        Index("ix_workflow_drafts_ticket_order", "ticket_id", "protocol_order"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    task_queue: Mapped[str] = mapped_column(String(64))
    trigger_type: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[str | None] = mapped_column(String(200), nullable=True, default=None)
    input: Mapped[str] = mapped_column(Text, doc="JSON object: the workflow's input")
    plan: Mapped[str] = mapped_column(Text, doc="JSON of the WorkflowPlan it will run")
    version: Mapped[int] = mapped_column(Integer, doc="the definition version of the plan")
    time_scale: Mapped[float | None] = mapped_column(Float, nullable=True)
    protocol_order: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    schedule: Mapped[str | None] = mapped_column(
        Text, nullable=True, default=None, doc="JSON {cron|interval_s} of a recurring workflow"
    )


def draft_input(row: DraftWorkflow) -> dict[str, Any]:
    """The draft's workflow input."""
    value = json.loads(row.input)
    return value if isinstance(value, dict) else {}


async def insert_draft(
    session: AsyncSession,
    *,
    workflow_id: str,
    name: str,
    task_queue: str,
    trigger_type: str,
    input: dict[str, Any],
    plan_json: str,
    version: int,
    time_scale: float | None,
    protocol_order: int,
    created_by: str | None = None,
    schedule: dict[str, Any] | None = None,
) -> DraftWorkflow:
    """Store a draft (``schedule``: a recurring one); IntegrityError if the id exists. Commits."""
    ticket = input.get("ticket_id")
    row = DraftWorkflow(
        id=workflow_id,
        name=name,
        task_queue=task_queue,
        trigger_type=trigger_type,
        ticket_id=ticket if isinstance(ticket, str) and ticket else None,
        input=json.dumps(input),
        plan=plan_json,
        version=version,
        time_scale=time_scale,
        protocol_order=protocol_order,
        created_at=time.time(),
        created_by=created_by,
        schedule=None if schedule is None else json.dumps(schedule),
    )
    session.add(row)
    await session.commit()
    return row


async def get_draft(session: AsyncSession, *, workflow_id: str) -> DraftWorkflow | None:
    """The draft ``workflow_id``, or None."""
    return await session.get(DraftWorkflow, workflow_id)


async def delete_draft(session: AsyncSession, *, workflow_id: str) -> None:
    """Forget a draft (it was started). Commits."""
    await session.execute(delete(DraftWorkflow).where(DraftWorkflow.id == workflow_id))
    await session.commit()


async def count_drafts(session: AsyncSession, *, recurring_of: str | None = None) -> int:
    """How many drafts wait for their start (``recurring_of``: recurring ones of that caller)."""
    query = select(func.count()).select_from(DraftWorkflow)
    if recurring_of is not None:
        query = query.where(
            DraftWorkflow.created_by == recurring_of, DraftWorkflow.schedule.is_not(None)
        )
    return int(await session.scalar(query) or 0)


def draft_schedule(row: DraftWorkflow) -> dict[str, Any] | None:
    """The recurring schedule of a draft, or None for a one-off draft."""
    if row.schedule is None:
        return None
    value = json.loads(row.schedule)
    return value if isinstance(value, dict) else None


async def list_drafts(
    session: AsyncSession,
    *,
    task_queue: str | None = None,
    ticket_id: str | None = None,
    name: str | None = None,
    below: int | None = None,
    above: int | None = None,
    limit: int = 10,
    newest_first: bool = True,
) -> list[DraftWorkflow]:
    """Up to ``limit`` drafts with ``above < protocol_order < below`` and the given fields, by
    order (then id)."""
    query = select(DraftWorkflow)
    if task_queue is not None:
        query = query.where(DraftWorkflow.task_queue == task_queue)
    if ticket_id is not None:
        query = query.where(DraftWorkflow.ticket_id == ticket_id)
    if name is not None:
        query = query.where(DraftWorkflow.name == name)
    if below is not None:
        query = query.where(DraftWorkflow.protocol_order < below)
    if above is not None:
        query = query.where(DraftWorkflow.protocol_order > above)
    if newest_first:
        query = query.order_by(DraftWorkflow.protocol_order.desc(), DraftWorkflow.id.desc())
    else:
        query = query.order_by(DraftWorkflow.protocol_order.asc(), DraftWorkflow.id.asc())
    result = await session.execute(query.limit(limit))
    return list(result.scalars())
