"""Automation rules as stored: the domain ``Rule`` plus id, timestamps and a webhook secret."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Boolean, Float, Index, String, Text, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from protocol_lab.domain import Rule, Trigger
from service.store.db import Base
from service.store.ids import new_id

__all__ = [
    "RuleRow",
    "delete_rule",
    "enabled_rules",
    "get_rule",
    "insert_rule",
    "list_rules",
    "new_rule_row",
    "rule_dict",
    "rule_model",
    "rules_version",
    "save_rule",
]


class RuleRow(Base):
    """One automation rule."""

    __tablename__ = "automation_rules"
    __table_args__ = (
        Index("ix_rules_trigger_enabled", "trigger", "enabled"),
        Index("ix_rules_created", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(32))
    conditions: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean)
    schedule_interval_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    secret: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    toggled_at: Mapped[float | None] = mapped_column(Float, nullable=True)


def rule_model(row: RuleRow) -> Rule:
    """The domain rule of a row."""
    return Rule.model_validate(
        {
            "name": row.name,
            "trigger": row.trigger,
            "conditions": json.loads(row.conditions),
            "action": json.loads(row.action),
            "enabled": row.enabled,
            "schedule_interval_s": row.schedule_interval_s,
        },
        context={"stored": True},
    )


def rule_dict(row: RuleRow) -> dict[str, Any]:
    """The API shape of a rule (no secret)."""
    body: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "trigger": row.trigger,
        "conditions": json.loads(row.conditions),
        "action": json.loads(row.action),
        "enabled": row.enabled,
        "created_at": int(row.created_at),
        "updated_at": int(row.updated_at),
    }
    if row.trigger == Trigger.SCHEDULED.value:
        body["schedule_interval_s"] = row.schedule_interval_s or 3600.0
    return body


def _fill(row: RuleRow, rule: Rule) -> None:
    row.name = rule.name
    row.trigger = rule.trigger.value
    row.conditions = json.dumps(rule.conditions)
    row.action = json.dumps(rule.action.model_dump(mode="json"))
    row.enabled = rule.enabled
    row.schedule_interval_s = rule.schedule_interval_s


def new_rule_row(rule: Rule, *, rule_id: str | None = None, now: float | None = None) -> RuleRow:
    """A row for a new rule (not added to any session); webhook rules get a fresh secret."""
    stamp = time.time() if now is None else now
    row = RuleRow(
        id=rule_id or new_id("rule"),
        created_at=stamp,
        updated_at=stamp,
        secret="whsec_" + secrets.token_urlsafe(24) if rule.trigger is Trigger.WEBHOOK else None,
    )
    _fill(row, rule)
    return row


async def insert_rule(session: AsyncSession, *, row: RuleRow) -> RuleRow:
    """Add a new rule row and commit."""
    session.add(row)
    await session.commit()
    return row


async def save_rule(
    session: AsyncSession, *, row: RuleRow, rule: Rule, toggled: bool = False
) -> RuleRow:
    """Write ``rule`` over an existing row and commit."""
    stamp = time.time()
    _fill(row, rule)
    row.updated_at = stamp
    if toggled:
        row.toggled_at = stamp
    if rule.trigger is Trigger.WEBHOOK and row.secret is None:
        row.secret = "whsec_" + secrets.token_urlsafe(24)
    await session.commit()
    return row


async def get_rule(session: AsyncSession, *, rule_id: str) -> RuleRow | None:
    """A rule row, or None."""
    return await session.get(RuleRow, rule_id, populate_existing=True)


async def delete_rule(session: AsyncSession, *, rule_id: str) -> bool:
    """Delete a rule (its executions stay); commit; False if there was none."""
    result = await session.execute(delete(RuleRow).where(RuleRow.id == rule_id))
    await session.commit()
    return bool(getattr(result, "rowcount", 0))


async def enabled_rules(session: AsyncSession, *, trigger: Trigger | None = None) -> list[RuleRow]:
    """Enabled rules (of one trigger), oldest first."""
    stmt = select(RuleRow).where(RuleRow.enabled.is_(True))
    if trigger is not None:
        stmt = stmt.where(RuleRow.trigger == trigger.value)
    return list((await session.execute(stmt.order_by(RuleRow.created_at, RuleRow.id))).scalars())


async def rules_version(session: AsyncSession, *, trigger: Trigger) -> tuple[int, float]:
    """(count, newest update) of the enabled rules of a trigger: changes when the set changes."""
    row = (
        await session.execute(
            select(func.count(RuleRow.id), func.max(RuleRow.updated_at)).where(
                RuleRow.enabled.is_(True), RuleRow.trigger == trigger.value
            )
        )
    ).one()
    return int(row[0] or 0), float(row[1] or 0.0)


async def list_rules(
    session: AsyncSession,
    *,
    filters: Mapping[str, Any],
    limit: int,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> tuple[list[RuleRow], bool] | None:
    """A page of rules, newest first; (rows, has_more); None when a cursor names no rule."""
    stmt = select(RuleRow)
    for name, value in filters.items():
        stmt = stmt.where(getattr(RuleRow, name) == value)
    cursor_id = starting_after or ending_before
    newest_first = True
    if cursor_id is not None:
        cursor = await get_rule(session, rule_id=cursor_id)
        if cursor is None:
            return None
        at, rid = cursor.created_at, cursor.id
        if starting_after is not None:
            stmt = stmt.where(
                or_(RuleRow.created_at < at, and_(RuleRow.created_at == at, RuleRow.id < rid))
            )
        else:
            newest_first = False
            stmt = stmt.where(
                or_(RuleRow.created_at > at, and_(RuleRow.created_at == at, RuleRow.id > rid))
            )
    if newest_first:
        stmt = stmt.order_by(RuleRow.created_at.desc(), RuleRow.id.desc())
    else:
        stmt = stmt.order_by(RuleRow.created_at.asc(), RuleRow.id.asc())
    rows = list((await session.execute(stmt.limit(limit + 1))).scalars())
    has_more = len(rows) > limit
    rows = rows[:limit]
    if not newest_first:
        rows.reverse()
    return rows, has_more
