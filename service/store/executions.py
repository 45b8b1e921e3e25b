"""Rule executions: one row per firing of a rule on one event, the trace from a rule to its work.

``(rule_id, event_key)`` is unique: the event key names what the rule fired on (an outbox event,
a scheduled condition episode of a ticket, a signed webhook delivery), so a firing that is retried
after a crash finds its row and repeats nothing. The row holds the ids it produced (workflow id,
job id) before the action runs, and the action uses them, so retries are idempotent downstream too.
Outbox event ids are never reused (see ``service.store.outbox``), so ``event:<id>`` names one
event for good; the executions of an event are found by ``event_id`` (indexed).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Final, cast

from sqlalchemy import (
    Boolean,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import CreateIndex

from service.observability import metrics
from service.store.db import Base, insert_or_fetch
from service.store.ids import new_id

__all__ = [
    "OUTCOMES",
    "EpisodeRow",
    "ExecutionRow",
    "claim_execution",
    "close_episodes",
    "execution_dict",
    "fail_pending_executions",
    "finish_execution",
    "list_executions",
    "open_episode",
]

OUTCOMES: Final = ("pending", "succeeded", "failed", "loop_stopped")


class ExecutionRow(Base):
    """One firing of a rule."""

    __tablename__ = "rule_executions"
    __table_args__ = (
        UniqueConstraint("rule_id", "event_key", name="uq_execution_rule_event"),
        Index("ix_executions_rule_created", "rule_id", "created_at"),
        Index("ix_executions_event", "event_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(32))
    rule_name: Mapped[str] = mapped_column(String(200))
    event_key: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    trigger: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    depth: Mapped[int] = mapped_column(Integer, default=0)
    conditions: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    workflow_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class EpisodeRow(Base):
    """Whether a scheduled rule's conditions currently hold for a ticket, and which episode."""

    __tablename__ = "scheduled_episodes"

    rule_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ticket_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    episode: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[float] = mapped_column(Float)


_ACTION_SUFFIX: Final = re.compile(r"/action-([0-9]+)$")


def execution_dict(row: ExecutionRow) -> dict[str, Any]:
    """The API shape of an execution: ``event`` names what the rule fired on and
    ``action_index`` which of its actions this is (the key of an action after the first ends
    in ``/action-<index>``)."""
    suffix = _ACTION_SUFFIX.search(row.event_key)
    return {
        "id": row.id,
        "rule_id": row.rule_id,
        "rule_name": row.rule_name,
        "trigger": row.trigger,
        "event": row.event_key[: suffix.start()] if suffix else row.event_key,
        "action_index": int(suffix.group(1)) if suffix else 0,
        "event_id": row.event_id,
        "ticket_id": row.ticket_id,
        "depth": row.depth,
        "conditions": json.loads(row.conditions),
        "action": json.loads(row.action),
        "outcome": row.outcome,
        "detail": row.detail,
        "workflow_id": row.workflow_id,
        "job_id": row.job_id,
        "fired_at": int(row.created_at),
        "finished_at": None if row.finished_at is None else int(row.finished_at),
    }


async def claim_execution(
    session: AsyncSession,
    *,
    rule_id: str,
    rule_name: str,
    event_key: str,
    trigger: str,
    action: dict[str, Any],
    conditions: list[dict[str, Any]],
    event_id: int | None = None,
    ticket_id: str | None = None,
    depth: int = 0,
    workflow_id: str | None = None,
    outcome: str = "pending",
    detail: str | None = None,
) -> tuple[ExecutionRow, bool]:
    """Record a firing (commits); return (row, created). An existing row is returned unchanged.

    The job id is derived from the execution id, so an enqueue that is retried is deduplicated.
    """
    exe_id = new_id("exe")
    stamp = time.time()
    row = ExecutionRow(
        id=exe_id,
        rule_id=rule_id,
        rule_name=rule_name,
        event_key=event_key,
        event_id=event_id,
        trigger=trigger,
        ticket_id=ticket_id,
        depth=depth,
        conditions=json.dumps(conditions, default=str),
        action=json.dumps(action, default=str),
        outcome=outcome,
        detail=detail,
        workflow_id=workflow_id,
        job_id=None,
        created_at=stamp,
        finished_at=stamp if outcome != "pending" else None,
    )
    stored, created = await insert_or_fetch(
        session,
        row,
        select(ExecutionRow).where(
            ExecutionRow.rule_id == rule_id, ExecutionRow.event_key == event_key
        ),
    )
    if created:
        metrics.rule_fired(trigger)
        if outcome != "pending":
            metrics.rule_executed(outcome)
    return stored, created


async def finish_execution(
    session: AsyncSession,
    *,
    execution_id: str,
    outcome: str,
    detail: str | None = None,
    job_id: str | None = None,
    commit: bool = True,
) -> None:
    """Record how a firing ended."""
    row = await session.get(ExecutionRow, execution_id)
    if row is None:
        return
    row.outcome = outcome
    row.detail = detail
    if job_id is not None:
        row.job_id = job_id
    row.finished_at = time.time()
    if commit:
        await session.commit()
    else:
        await session.flush()
    metrics.rule_executed(outcome)


async def fail_pending_executions(
    session: AsyncSession, *, event_id: int, since: float, detail: str
) -> int:
    """Record the executions of an event still ``pending`` as failed (commits); return how many.

    ``since`` is the event's creation time: only its own executions are touched.
    """
    result = await session.execute(
        update(ExecutionRow)
        .where(
            ExecutionRow.event_id == event_id,
            ExecutionRow.created_at >= since,
            ExecutionRow.outcome == "pending",
        )
        .values(outcome="failed", detail=detail, finished_at=time.time())
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    failed = int(getattr(result, "rowcount", 0) or 0)
    metrics.rule_executed("failed", failed)
    return failed


async def list_executions(
    session: AsyncSession,
    *,
    rule_id: str,
    limit: int,
    starting_after: str | None = None,
    ticket_id: str | None = None,
) -> tuple[list[dict[str, Any]], bool] | None:
    """A page of a rule's executions, newest first; None when the cursor names none of them."""
    stmt = select(ExecutionRow).where(ExecutionRow.rule_id == rule_id)
    if ticket_id is not None:
        stmt = stmt.where(ExecutionRow.ticket_id == ticket_id)
    if starting_after is not None:
        cursor = await session.get(ExecutionRow, starting_after)
        if cursor is None or cursor.rule_id != rule_id:
            return None
        stmt = stmt.where(
            (ExecutionRow.created_at < cursor.created_at)
            | ((ExecutionRow.created_at == cursor.created_at) & (ExecutionRow.id < cursor.id))
        )
    stmt = stmt.order_by(ExecutionRow.created_at.desc(), ExecutionRow.id.desc()).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars())
    return [execution_dict(r) for r in rows[:limit]], len(rows) > limit


async def open_episode(session: AsyncSession, *, rule_id: str, ticket_id: str) -> int:
    """Mark the conditions of ``rule_id`` as holding for a ticket (commits); return the episode.

    A ticket whose conditions did not hold at the previous run starts a new episode; one that
    still matches keeps its episode number, so the firing keyed by it happens once per episode.
    """
    row = await session.get(EpisodeRow, (rule_id, ticket_id), populate_existing=True)
    if row is not None and row.active:
        return row.episode
    if row is None:
        row = EpisodeRow(rule_id=rule_id, ticket_id=ticket_id, episode=0, active=False)
        session.add(row)
    row.episode += 1
    row.active = True
    row.updated_at = time.time()
    await session.commit()
    return row.episode


async def close_episodes(session: AsyncSession, *, rule_id: str, still_matching: set[str]) -> int:
    """End the episodes of tickets that no longer match (commits); return how many ended."""
    rows = (
        await session.execute(
            select(EpisodeRow).where(EpisodeRow.rule_id == rule_id, EpisodeRow.active.is_(True))
        )
    ).scalars()
    ended = 0
    for row in rows:
        if row.ticket_id not in still_matching:
            row.active = False
            row.updated_at = time.time()
            ended += 1
    await session.commit()
    return ended


@event.listens_for(Base.metadata, "after_create")
def _index_existing_table(_metadata: MetaData, connection: Connection, **_kw: Any) -> None:
    # create_all does not add indexes to a table made by an older version; this one is new.
    for index in cast(Table, ExecutionRow.__table__).indexes:
        connection.execute(CreateIndex(index, if_not_exists=True))
