"""Schema migrations of the store (Alembic revisions in ``service/store/migrations/versions``).

Every process that opens the store brings it to the newest revision first
(:func:`upgrade`, called by ``create_schema``); ``protocol-lab db upgrade`` does the same by
hand. Processes that start together on one database take turns: on SQLite the upgrade runs in
one ``BEGIN IMMEDIATE`` transaction (the database's write lock); on PostgreSQL a process takes
an advisory lock of the schema first and only then begins the upgrade's transaction, so that
what the transaction reads (the version above all) is what the previous holder committed, under
any isolation level; the second finds the work done.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["HEAD", "SchemaError", "current_revision", "head_revision", "upgrade"]

HEAD: Final = "head"
_SCRIPTS: Final = "service.store:migrations"
# The first key of PostgreSQL's two-key advisory lock: "protocol-lab migrations".
_LOCK_NAMESPACE: Final = 0x504C4D47
# Its second key, the schema migrated. A NULL key would take no lock at all (the lock
# functions are strict), so a search_path naming no schema yet still takes one.
_SCHEMA_KEY: Final = "hashtext(coalesce(current_schema(), ''))"


class SchemaError(RuntimeError):
    """The database's schema cannot be brought to the revision asked for."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", _SCRIPTS)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version of the service knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError("the store has no migrations")
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None: never migrated, or empty)."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def upgrade(engine: AsyncEngine, revision: str = HEAD) -> None:
    """Bring the database to ``revision`` (the newest by default); nothing to do is cheap.

    A database made before migrations existed (tables, no version) is adopted: the first
    revisions keep what is there and add what it lacks. :class:`SchemaError` for a database
    at a revision this version does not know (a newer one migrated it) or an unknown target.
    """

    def run(connection: Connection) -> None:
        config = _config(connection)
        scripts = ScriptDirectory.from_config(config)
        at = MigrationContext.configure(connection).get_current_revision()
        if at is not None and at not in {script.revision for script in scripts.walk_revisions()}:
            raise SchemaError(
                f"the database is at schema revision {at!r}, which this version of protocol-lab"
                f" does not know (its newest is {scripts.get_current_head()!r}): run the newer"
                " version that migrated it, or restore a backup"
            )
        try:
            command.upgrade(config, revision)
        except CommandError as exc:
            raise SchemaError(f"cannot upgrade the database to {revision!r}: {exc}") from exc

    if revision == HEAD and await current_revision(engine) == head_revision():
        # Nothing to do, known without the lock: a process starting beside busy writers (a
        # dispatcher mid-transaction on the same SQLite file) neither waits for them nor fails
        # when they hold the write lock longer than the busy timeout.
        return
    async with engine.connect() as conn, _turn(conn):
        await conn.run_sync(run)
        await conn.commit()


@contextlib.asynccontextmanager
async def _turn(conn: AsyncConnection) -> AsyncIterator[None]:
    """Hold the lock other processes wait on while the block migrates on ``conn``.

    SQLite: the block runs in the ``BEGIN IMMEDIATE`` transaction begun here. PostgreSQL: the
    block's transaction begins after the lock is held. A lock taken inside the migration's own
    transaction would not do: under REPEATABLE READ or SERIALIZABLE (a server's, database's or
    role's default) that transaction's snapshot is taken by the statement that waits for the
    lock, before the previous holder commits, so it would not see the version and tables it made
    and would migrate again.
    """
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
    if conn.dialect.name != "postgresql":
        yield
        return
    key = {"namespace": _LOCK_NAMESPACE}
    await conn.execute(text(f"SELECT pg_advisory_lock(:namespace, {_SCHEMA_KEY})"), key)
    await conn.commit()  # the lock is the session's; the migration's transaction begins anew
    try:
        yield
    finally:
        await conn.rollback()  # nothing left to undo after a commit; after a failure, all of it
        await conn.execute(text(f"SELECT pg_advisory_unlock(:namespace, {_SCHEMA_KEY})"), key)
        await conn.commit()
