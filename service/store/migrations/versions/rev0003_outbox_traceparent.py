"""The trace context of outbox events.

``outbox_events`` gets ``traceparent`` (nullable): the W3C trace context an event was written
in, so the dispatcher that processes it continues that trace. Events written before have none
and are processed in a trace of their own.

Revision ID: 0003
Revises: 0002
Created: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable ``traceparent`` column (kept when a database already has it)."""
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("outbox_events")}
    if "traceparent" not in columns:
        op.add_column(
            "outbox_events", sa.Column("traceparent", sa.String(length=55), nullable=True)
        )


def downgrade() -> None:
    """Drop the ``traceparent`` column."""
    # SQLite rebuilds the table: with AUTOINCREMENT, so no event id is handed out again.
    with op.batch_alter_table(
        "outbox_events", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.drop_column("traceparent")
