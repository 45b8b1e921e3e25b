"""Automation rules as stored: the domain ``Rule`` plus id, timestamps and a webhook secret.

``action`` holds the action as it was written (one object), or the list of ``actions``; each
action also has a row in ``automation_rule_actions`` (its position, type and workflow name), so
that the rule list filters by action type and workflow in SQL with its keyset cursor. The
store's second migration adds the cron column and the actions table to older databases and
lists the actions of the rules stored before.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Text,
    and_,
    delete,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from protocol_lab.domain import Rule, Trigger
from service.store.db import Base
from service.store.ids import new_id

__all__ = [
    "RuleActionRow",
    "RuleRow",
    "RuleSetVersionRow",
    "delete_rule",
    "enabled_rules",
    "get_rule",
    "insert_rule",
    "list_rules",
    "new_rule_row",
    "rotate_secret",
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
    schedule_cron: Mapped[str | None] = mapped_column(String(120), nullable=True)
    secret: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    toggled_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class RuleActionRow(Base):
    """One action of a rule, for filtering the rule list."""

    __tablename__ = "automation_rule_actions"
    __table_args__ = (
        Index("ix_rule_actions_type", "type", "rule_id"),
        Index("ix_rule_actions_workflow", "workflow_name", "rule_id"),
    )

    rule_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    workflow_name: Mapped[str | None] = mapped_column(String(200), nullable=True)


class RuleSetVersionRow(Base):
    """The version of the stored rule set: one row, raised by the database's own triggers on
    every insert, update or delete of ``automation_rules`` (the store's fourth migration)."""

    __tablename__ = "automation_rules_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


def _actions_written(row: RuleRow) -> dict[str, Any]:
    """``{"action": ...}`` or ``{"actions": [...]}`` as stored."""
    stored = json.loads(row.action)
    return {"actions": stored} if isinstance(stored, list) else {"action": stored}


def rule_model(row: RuleRow) -> Rule:
    """The domain rule of a row."""
    return Rule.model_validate(
        {
            "name": row.name,
            "trigger": row.trigger,
            "conditions": json.loads(row.conditions),
            **_actions_written(row),
            "enabled": row.enabled,
            "schedule_interval_s": row.schedule_interval_s,
            "schedule_cron": row.schedule_cron,
        },
        context={"stored": True},
    )


def rule_dict(row: RuleRow) -> dict[str, Any]:
    """The API shape of a rule: the action(s) and the schedule of a scheduled rule as written
    (an interval or a cron expression; neither means hourly); no secret."""
    body: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "trigger": row.trigger,
        "conditions": json.loads(row.conditions),
        **_actions_written(row),
        "enabled": row.enabled,
        "created_at": int(row.created_at),
        "updated_at": int(row.updated_at),
    }
    if row.trigger == Trigger.SCHEDULED.value:
        if row.schedule_cron is not None:
            body["schedule_cron"] = row.schedule_cron
        elif row.schedule_interval_s is not None:
            body["schedule_interval_s"] = row.schedule_interval_s
    return body


def _action_rows(rule_id: str, stored_action: str) -> list[RuleActionRow]:
    stored = json.loads(stored_action)
    actions = stored if isinstance(stored, list) else [stored]
    return [
        RuleActionRow(
            rule_id=rule_id,
            position=k,
            type=str(action.get("type")),
            workflow_name=action.get("workflow_name") if isinstance(action, dict) else None,
        )
        for k, action in enumerate(actions)
        if isinstance(action, dict)
    ]


def _fill(row: RuleRow, rule: Rule) -> None:
    row.name = rule.name
    row.trigger = rule.trigger.value
    row.conditions = json.dumps(rule.conditions)
    written = rule.actions_as_sent()
    row.action = json.dumps(written.get("action", written.get("actions")))
    row.enabled = rule.enabled
    row.schedule_interval_s = rule.schedule_interval_s
    row.schedule_cron = rule.schedule_cron


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


def new_rule_row(rule: Rule, *, rule_id: str | None = None, now: float | None = None) -> RuleRow:
    """A row for a new rule (not added to any session); webhook rules get a fresh secret."""
    stamp = time.time() if now is None else now
    row = RuleRow(
        id=rule_id or new_id("rule"),
        created_at=stamp,
        updated_at=stamp,
        secret=_new_secret() if rule.trigger is Trigger.WEBHOOK else None,
    )
    _fill(row, rule)
    return row


async def _replace_actions(session: AsyncSession, row: RuleRow) -> None:
    await session.execute(delete(RuleActionRow).where(RuleActionRow.rule_id == row.id))
    session.add_all(_action_rows(row.id, row.action))


async def insert_rule(session: AsyncSession, *, row: RuleRow) -> RuleRow:
    """Add a new rule row (and its action rows) and commit."""
    session.add(row)
    session.add_all(_action_rows(row.id, row.action))
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
        row.secret = _new_secret()
    await _replace_actions(session, row)
    await session.commit()
    return row


async def rotate_secret(session: AsyncSession, *, row: RuleRow) -> str:
    """Give a webhook rule a new signing secret (the old one stops verifying); commit."""
    row.secret = _new_secret()
    row.updated_at = time.time()
    await session.commit()
    return row.secret


async def get_rule(session: AsyncSession, *, rule_id: str) -> RuleRow | None:
    """A rule row, or None."""
    return await session.get(RuleRow, rule_id, populate_existing=True)


async def delete_rule(session: AsyncSession, *, rule_id: str) -> bool:
    """Delete a rule (its executions stay); commit; False if there was none."""
    result = await session.execute(delete(RuleRow).where(RuleRow.id == rule_id))
    await session.execute(delete(RuleActionRow).where(RuleActionRow.rule_id == rule_id))
    await session.commit()
    return bool(getattr(result, "rowcount", 0))


async def enabled_rules(session: AsyncSession, *, trigger: Trigger | None = None) -> list[RuleRow]:
    """Enabled rules (of one trigger), oldest first."""
    stmt = select(RuleRow).where(RuleRow.enabled.is_(True))
    if trigger is not None:
        stmt = stmt.where(RuleRow.trigger == trigger.value)
    return list((await session.execute(stmt.order_by(RuleRow.created_at, RuleRow.id))).scalars())


async def rules_version(session: AsyncSession) -> int:
    """The version of the stored rule set: it changes whenever any rule is added, changed or
    deleted, by any process or statement (the database raises it), and costs one row's read
    however many rules there are."""
    version = await session.scalar(
        select(RuleSetVersionRow.version).where(RuleSetVersionRow.id == 1)
    )
    if version is None:
        raise RuntimeError("the store has no rule set version: is its schema migrated?")
    return int(version)


async def list_rules(
    session: AsyncSession,
    *,
    filters: Mapping[str, Any],
    limit: int,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> tuple[list[RuleRow], bool] | None:
    """A page of rules, newest first; (rows, has_more); None when a cursor names no rule.

    ``filters`` are columns of the rule (``trigger``, ``enabled``) or of any of its actions
    (``action_type``, ``workflow_name``).
    """
    stmt = select(RuleRow)
    for name, value in filters.items():
        if name in ("action_type", "workflow_name"):
            column = RuleActionRow.type if name == "action_type" else RuleActionRow.workflow_name
            stmt = stmt.where(RuleRow.id.in_(select(RuleActionRow.rule_id).where(column == value)))
        else:
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
