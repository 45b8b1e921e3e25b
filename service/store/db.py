"""The SQL store's engine, sessions and declarative base (SQLite embedded, PostgreSQL beyond)."""

from __future__ import annotations

import sqlite3
import time
from typing import Any, Final, TypeVar

from sqlalchemy import Select, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from service.private_files import private_dir, private_file, sqlite_path
from service.store import migrate

__all__ = ["Base", "create_schema", "insert_or_fetch", "make_engine", "make_sessionmaker"]


class Base(DeclarativeBase):
    """Declarative base of every table of the store."""


RowT = TypeVar("RowT", bound=Base)

# How long a SQLite connection waits for another's lock before "database is locked".
SQLITE_BUSY_TIMEOUT_S: Final = 30.0


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and foreign keys, and its file is
    created readable by its owner only (SQLite gives its -wal and -shm files the same mode)."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_S})
        database = sqlite_path(url)
        if database is not None:
            if not database.parent.exists():
                private_dir(database.parent)
            private_file(database)
    else:
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            _use_wal(dbapi_connection, within_s=SQLITE_BUSY_TIMEOUT_S)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


def _use_wal(dbapi_connection: Any, *, within_s: float) -> None:
    """Put the SQLite database in WAL mode (the file keeps it: only its first opening switches).

    The switch turns a read lock into the write lock, which SQLite refuses at once with
    "database is locked", without the busy timeout, while another connection holds a lock:
    processes opening a new file together collide there. So the mode is read first, and a
    refused switch waits for the other connection (``BEGIN EXCLUSIVE`` waits on the busy
    timeout, in the driver's thread) and tries again, for up to ``within_s``.
    """
    deadline = time.monotonic() + within_s
    cursor = dbapi_connection.cursor()
    try:
        while True:
            cursor.execute("PRAGMA journal_mode")
            if cursor.fetchone()[0] == "wal":
                return
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.fetchall()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            cursor.execute("BEGIN EXCLUSIVE")
            cursor.execute("ROLLBACK")
    finally:
        cursor.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def create_schema(engine: AsyncEngine) -> None:
    """Bring the store's schema to the newest migration (idempotent; safe for processes that
    start together on one database, see ``service.store.migrate``)."""
    await migrate.upgrade(engine)


async def insert_or_fetch(
    session: AsyncSession, row: RowT, existing: Select[RowT]
) -> tuple[RowT, bool]:
    """Insert ``row``, or, when a unique key says it is there already, load that one instead.

    Returns the stored row and whether this call inserted it: the first writer wins, and
    concurrent or retried writers get the winner's row. Commits on insert.
    """
    session.add(row)
    try:
        await session.commit()
        return row, True
    except IntegrityError:
        await session.rollback()
    found = (await session.execute(existing.execution_options(populate_existing=True))).scalar_one()
    return found, False
