"""Empty databases for tests: a new SQLite file, or a PostgreSQL schema of its own.

``empty_database`` yields an engine on a database with no tables; ``empty_store`` also creates
the store's tables and yields a sessionmaker on it. A PostgreSQL schema is dropped on exit.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.store.db import create_schema, make_engine, make_sessionmaker

__all__ = ["Backend", "empty_database", "empty_store"]

Backend = Literal["sqlite", "postgres"]


@contextlib.asynccontextmanager
async def empty_database(
    backend: Backend, *, folder: Path | None = None, postgres_url: str | None = None
) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database, disposed on exit.

    ``"sqlite"``: a new file in ``folder``. ``"postgres"``: a schema of its own at
    ``postgres_url`` (the engine's ``search_path``), dropped with everything in it on exit.
    """
    if backend == "sqlite":
        if folder is None:
            raise ValueError("a SQLite database needs a folder")
        engine = make_engine(f"sqlite+aiosqlite:///{folder / f'{uuid.uuid4().hex[:8]}.db'}")
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    if backend != "postgres":
        raise ValueError(f"unknown backend {backend!r}")
    if postgres_url is None:
        raise ValueError("a PostgreSQL database needs postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(postgres_url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = make_engine(
            postgres_url, connect_args={"server_settings": {"search_path": schema}}
        )
        try:
            yield engine
        finally:
            await engine.dispose()
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await admin.dispose()


@contextlib.asynccontextmanager
async def empty_store(
    backend: Backend, *, folder: Path | None = None, postgres_url: str | None = None
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A sessionmaker on a fresh store with its tables and no rows (see :func:`empty_database`)."""
    async with empty_database(backend, folder=folder, postgres_url=postgres_url) as engine:
        await create_schema(engine)
        yield make_sessionmaker(engine)
