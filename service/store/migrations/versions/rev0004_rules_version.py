"""The version of the stored rule set, kept by the database itself.

``automation_rules_version`` holds one row whose ``version`` the database raises for every row
of ``automation_rules`` inserted, updated or deleted (row-level triggers; on PostgreSQL a
truncation too), whatever wrote the change; a statement that changes no row leaves it. As
every revision, it keeps what a database made before migrations already has (it runs them all).
The dispatcher reads that one row per batch to know whether its rule index is current, where it
used to aggregate over every enabled rule (a scan that grew with the number of rules).

Revision ID: 0004
Revises: 0003
Created: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "automation_rules_version"
_SQLITE_CHANGES = ("insert", "update", "delete")
_BUMP = f"UPDATE {TABLE} SET version = version + 1 WHERE id = 1"
# The schema of the changed table names the counter's: a session whose search_path differs from
# the one that created the trigger still raises the right version.
_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION automation_rules_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('UPDATE %I.{TABLE} SET version = version + 1 WHERE id = 1', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$
"""
_PG_TRIGGERS = (
    """CREATE OR REPLACE TRIGGER automation_rules_bump
    AFTER INSERT OR UPDATE OR DELETE ON automation_rules
    FOR EACH ROW EXECUTE FUNCTION automation_rules_bump()""",
    """CREATE OR REPLACE TRIGGER automation_rules_bump_truncate AFTER TRUNCATE ON automation_rules
    FOR EACH STATEMENT EXECUTE FUNCTION automation_rules_bump()""",
)


def upgrade() -> None:
    """Create the counter (at 0) and the triggers that raise it, where they are missing."""
    bind = op.get_bind()
    if TABLE not in sa.inspect(bind).get_table_names():
        op.create_table(
            TABLE,
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("version", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    op.execute(
        f"INSERT INTO {TABLE} (id, version) SELECT 1, 0 WHERE NOT EXISTS (SELECT 1 FROM {TABLE})"
    )
    if bind.dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for trigger in _PG_TRIGGERS:
            op.execute(trigger)
        return
    for change in _SQLITE_CHANGES:
        op.execute(
            f"CREATE TRIGGER IF NOT EXISTS automation_rules_after_{change} AFTER {change.upper()} "
            f"ON automation_rules FOR EACH ROW BEGIN {_BUMP}; END"
        )


def downgrade() -> None:
    """Drop the triggers and the counter."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER automation_rules_bump ON automation_rules")
        op.execute("DROP TRIGGER automation_rules_bump_truncate ON automation_rules")
        op.execute("DROP FUNCTION automation_rules_bump()")
    else:
        for change in _SQLITE_CHANGES:
            op.execute(f"DROP TRIGGER automation_rules_after_{change}")
    op.drop_table(TABLE)
