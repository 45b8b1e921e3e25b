"""Cron schedules and listed actions of rules, workflow definitions, draft workflows.

``automation_rules`` gets ``schedule_cron``; ``automation_rule_actions`` lists each stored
rule's actions (type and workflow), filled in here for the rules stored before it;
``workflow_definitions`` and ``workflow_drafts`` are new. A database made before migrations
may have any of these already (it runs every revision): what is there is kept.

Revision ID: 0002
Revises: 0001
Created: 2026-11-30
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADDED = sa.MetaData()

RULE_ACTIONS = sa.Table(
    "automation_rule_actions",
    ADDED,
    sa.Column("rule_id", sa.String(length=32), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("type", sa.String(length=32), nullable=False),
    sa.Column("workflow_name", sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint("rule_id", "position"),
    sa.Index("ix_rule_actions_type", "type", "rule_id"),
    sa.Index("ix_rule_actions_workflow", "workflow_name", "rule_id"),
)
sa.Table(
    "workflow_definitions",
    ADDED,
    sa.Column("name", sa.String(length=100), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("plan", sa.Text(), nullable=False),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Column("created_by", sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint("name", "version"),
)
sa.Table(
    "workflow_drafts",
    ADDED,
    sa.Column("id", sa.String(length=64), nullable=False),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("task_queue", sa.String(length=64), nullable=False),
    sa.Column("trigger_type", sa.String(length=32), nullable=False),
    sa.Column("ticket_id", sa.String(length=200), nullable=True),
    sa.Column("input", sa.Text(), nullable=False),
    sa.Column("plan", sa.Text(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("time_scale", sa.Float(), nullable=True),
    sa.Column("protocol_order", sa.BigInteger(), nullable=False),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Column("created_by", sa.String(length=64), nullable=True),
    sa.Column("schedule", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_workflow_drafts_order", "protocol_order"),
    sa.Index("ix_workflow_drafts_ticket_order", "ticket_id", "protocol_order"),
)

_RULES = sa.table("automation_rules", sa.column("id"), sa.column("action"))


def upgrade() -> None:
    """Add the cron column and the new tables; list the actions of rules stored before."""
    bind = op.get_bind()
    rule_columns = {c["name"] for c in sa.inspect(bind).get_columns("automation_rules")}
    if "schedule_cron" not in rule_columns:
        op.add_column(
            "automation_rules", sa.Column("schedule_cron", sa.String(length=120), nullable=True)
        )
    ADDED.create_all(bind, checkfirst=True)
    unlisted = bind.execute(
        sa.select(_RULES.c.id, _RULES.c.action).where(
            _RULES.c.id.not_in(sa.select(RULE_ACTIONS.c.rule_id))
        )
    ).all()
    rows = [row for rule_id, action in unlisted for row in _action_rows(rule_id, action)]
    if rows:
        bind.execute(RULE_ACTIONS.insert(), rows)


def downgrade() -> None:
    """Drop the new tables and the cron column."""
    ADDED.drop_all(op.get_bind(), checkfirst=True)
    with op.batch_alter_table("automation_rules") as batch:
        batch.drop_column("schedule_cron")


def _action_rows(rule_id: str, stored: str) -> list[dict[str, Any]]:
    """One row per action of a stored rule: ``action`` is one action object or a list."""
    parsed = json.loads(stored)
    actions = parsed if isinstance(parsed, list) else [parsed]
    return [
        {
            "rule_id": rule_id,
            "position": k,
            "type": str(action.get("type")),
            "workflow_name": action.get("workflow_name"),
        }
        for k, action in enumerate(actions)
        if isinstance(action, dict)
    ]
