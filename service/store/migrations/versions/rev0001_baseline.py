"""The store as of the last release before migrations; adopts databases made before them.

A database made before migrations has no version table, so every revision runs on it from
here. Tables it lacks are created; a table it has keeps its rows and gets what older releases
did not give it: missing (nullable) columns and indexes, and on SQLite an outbox rebuilt with
``AUTOINCREMENT`` whose id sequence starts above every event id handed out already (the
executions and audit jobs are keyed by event id, so a reused id would not fire).

Revision ID: 0001
Revises:
Created: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateIndex, CreateTable

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here: later revisions change the models, never this picture of the release.
BASELINE = sa.MetaData()

sa.Table(
    "assets",
    BASELINE,
    sa.Column("id", sa.String(length=32), nullable=False),
    sa.Column("asset_type", sa.String(length=64), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("workflow_id", sa.String(length=64), nullable=True),
    sa.Column("assignee", sa.String(length=128), nullable=True),
    sa.Column("updated_at", sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_assets_type_status", "asset_type", "status"),
    sa.Index("ix_assets_workflow", "workflow_id"),
)
sa.Table(
    "audit_log",
    BASELINE,
    sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("job_id", sa.String(length=128), nullable=False),
    sa.Column("kind", sa.String(length=64), nullable=False),
    sa.Column("subject", sa.String(length=64), nullable=True),
    sa.Column("data", sa.Text(), nullable=False),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint("seq"),
    sa.UniqueConstraint("job_id"),
)
sa.Table(
    "automation_rules",
    BASELINE,
    sa.Column("id", sa.String(length=32), nullable=False),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("trigger", sa.String(length=32), nullable=False),
    sa.Column("conditions", sa.Text(), nullable=False),
    sa.Column("action", sa.Text(), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("schedule_interval_s", sa.Float(), nullable=True),
    sa.Column("secret", sa.String(length=128), nullable=True),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Column("updated_at", sa.Float(), nullable=False),
    sa.Column("toggled_at", sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_rules_created", "created_at", "id"),
    sa.Index("ix_rules_trigger_enabled", "trigger", "enabled"),
)
sa.Table(
    "idempotency_keys",
    BASELINE,
    sa.Column("scope", sa.String(length=64), nullable=False),
    sa.Column("key", sa.String(length=255), nullable=False),
    sa.Column("fingerprint", sa.String(length=64), nullable=False),
    sa.Column("resource_id", sa.String(length=64), nullable=False),
    sa.Column("response", sa.Text(), nullable=True),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint("scope", "key"),
)
sa.Table(
    "notifications",
    BASELINE,
    sa.Column("job_id", sa.String(length=128), nullable=False),
    sa.Column("ticket_id", sa.String(length=32), nullable=True),
    sa.Column("recipient", sa.String(length=200), nullable=False),
    sa.Column("subject", sa.String(length=300), nullable=True),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("rule_id", sa.String(length=32), nullable=True),
    sa.Column("delivered_to", sa.String(length=500), nullable=True),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint("job_id"),
    sa.Index("ix_notifications_ticket", "ticket_id", "created_at"),
)
sa.Table(
    "outbox_events",
    BASELINE,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("kind", sa.String(length=32), nullable=False),
    sa.Column("ticket_id", sa.String(length=32), nullable=True),
    sa.Column("rule_id", sa.String(length=32), nullable=True),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("depth", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("lease_until", sa.Float(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Column("processed_at", sa.Float(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("requeued_at", sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_outbox_status_id", "status", "id"),
    sqlite_autoincrement=True,
)
sa.Table(
    "rule_executions",
    BASELINE,
    sa.Column("id", sa.String(length=32), nullable=False),
    sa.Column("rule_id", sa.String(length=32), nullable=False),
    sa.Column("rule_name", sa.String(length=200), nullable=False),
    sa.Column("event_key", sa.String(length=200), nullable=False),
    sa.Column("event_id", sa.Integer(), nullable=True),
    sa.Column("trigger", sa.String(length=32), nullable=False),
    sa.Column("ticket_id", sa.String(length=32), nullable=True),
    sa.Column("depth", sa.Integer(), nullable=False),
    sa.Column("conditions", sa.Text(), nullable=False),
    sa.Column("action", sa.Text(), nullable=False),
    sa.Column("outcome", sa.String(length=16), nullable=False),
    sa.Column("detail", sa.Text(), nullable=True),
    sa.Column("workflow_id", sa.String(length=64), nullable=True),
    sa.Column("job_id", sa.String(length=128), nullable=True),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Column("finished_at", sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("rule_id", "event_key", name="uq_execution_rule_event"),
    sa.Index("ix_executions_event", "event_id"),
    sa.Index("ix_executions_rule_created", "rule_id", "created_at"),
)
sa.Table(
    "scheduled_episodes",
    BASELINE,
    sa.Column("rule_id", sa.String(length=32), nullable=False),
    sa.Column("ticket_id", sa.String(length=32), nullable=False),
    sa.Column("episode", sa.Integer(), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("updated_at", sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint("rule_id", "ticket_id"),
)
sa.Table(
    "ticket_suggestions",
    BASELINE,
    sa.Column("ticket_id", sa.String(length=32), nullable=False),
    sa.Column("category", sa.String(length=64), nullable=False),
    sa.Column("category_confidence", sa.Float(), nullable=False),
    sa.Column("priority", sa.String(length=2), nullable=False),
    sa.Column("priority_confidence", sa.Float(), nullable=False),
    sa.Column("model", sa.String(length=64), nullable=False),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint("ticket_id"),
)
sa.Table(
    "tickets",
    BASELINE,
    sa.Column("number", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("title", sa.String(length=200), nullable=False),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("category", sa.String(length=64), nullable=True),
    sa.Column("priority", sa.String(length=2), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("assignee", sa.String(length=128), nullable=True),
    sa.Column("requester", sa.String(length=128), nullable=True),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Column("updated_at", sa.Float(), nullable=False),
    sa.Column("last_activity_at", sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint("number"),
    sa.Index("ix_tickets_status", "status"),
)
sa.Table(
    "workflow_archive",
    BASELINE,
    sa.Column("id", sa.String(length=64), nullable=False),
    sa.Column("name", sa.String(length=200), nullable=False),
    sa.Column("task_queue", sa.String(length=64), nullable=False),
    sa.Column("trigger_type", sa.String(length=32), nullable=False),
    sa.Column("ticket_id", sa.String(length=200), nullable=True),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("started_at", sa.Float(), nullable=True),
    sa.Column("completed_at", sa.Float(), nullable=False),
    sa.Column("protocol_order", sa.BigInteger(), nullable=False),
    sa.Column("steps_completed", sa.Integer(), nullable=False),
    sa.Column("steps_total", sa.Integer(), nullable=False),
    sa.Column("timeline", sa.Text(), nullable=False),
    sa.Column("archived_at", sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_workflow_archive_order", "protocol_order"),
    sa.Index("ix_workflow_archive_queue_order", "task_queue", "protocol_order"),
    sa.Index("ix_workflow_archive_ticket_order", "ticket_id", "protocol_order"),
)

_OUTBOX = "outbox_events"
_AUDIT_JOB_PREFIX = "audit-event-"


def upgrade() -> None:
    """Create the release's tables, or complete those a database made before migrations has."""
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    for table in BASELINE.sorted_tables:
        if table.name not in existing:
            continue
        if table.name == _OUTBOX and bind.dialect.name == "sqlite" and not _autoincrements(bind):
            _rebuild_sqlite_outbox(bind, BASELINE.tables[_OUTBOX])
        else:
            _complete(bind, table)
    BASELINE.create_all(bind, checkfirst=True)


def downgrade() -> None:
    """Drop every table of the release (and so every row)."""
    BASELINE.drop_all(op.get_bind(), checkfirst=True)


def _complete(bind: sa.Connection, table: sa.Table) -> None:
    inspector = sa.inspect(bind)
    have = {c["name"] for c in inspector.get_columns(table.name)}
    for column in table.columns:
        if column.name not in have:
            op.add_column(table.name, sa.Column(column.name, column.type, nullable=True))
    indexed = {i["name"] for i in inspector.get_indexes(table.name)}
    for index in table.indexes:
        if index.name not in indexed:
            bind.execute(CreateIndex(index))


def _autoincrements(bind: sa.Connection) -> bool:
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (_OUTBOX,)
    ).scalar()
    return "AUTOINCREMENT" in str(sql).upper()


def _rebuild_sqlite_outbox(bind: sa.Connection, table: sa.Table) -> None:
    have = {c["name"] for c in sa.inspect(bind).get_columns(_OUTBOX)}
    copied = ", ".join(c.name for c in table.columns if c.name in have)
    new = table.to_metadata(sa.MetaData(), name=f"{_OUTBOX}_new")
    bind.execute(CreateTable(new))
    bind.exec_driver_sql(
        f"INSERT INTO {_OUTBOX}_new ({copied}) SELECT {copied} FROM {_OUTBOX} ORDER BY id"
    )
    bind.exec_driver_sql(f"DROP TABLE {_OUTBOX}")
    bind.exec_driver_sql(f"ALTER TABLE {_OUTBOX}_new RENAME TO {_OUTBOX}")
    for index in table.indexes:
        bind.execute(CreateIndex(index))
    floor = max(
        bind.exec_driver_sql(f"SELECT COALESCE(MAX(id), 0) FROM {_OUTBOX}").scalar() or 0,
        _largest(bind, "rule_executions", "SELECT COALESCE(MAX(event_id), 0) FROM rule_executions"),
        _largest(
            bind,
            "audit_log",
            f"SELECT MAX(CAST(SUBSTR(job_id, {len(_AUDIT_JOB_PREFIX) + 1}) AS INTEGER))"
            f" FROM audit_log WHERE job_id LIKE '{_AUDIT_JOB_PREFIX}%'",
        ),
    )
    bind.exec_driver_sql(
        "DELETE FROM sqlite_sequence WHERE name IN (?, ?)", (_OUTBOX, f"{_OUTBOX}_new")
    )
    bind.exec_driver_sql(
        "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (_OUTBOX, int(floor))
    )


def _largest(bind: sa.Connection, table: str, query: str) -> int:
    """The answer of ``query``, or 0 when ``table`` is not there (yet)."""
    if not sa.inspect(bind).has_table(table):
        return 0
    return int(bind.exec_driver_sql(query).scalar() or 0)
