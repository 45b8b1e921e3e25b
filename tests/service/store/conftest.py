"""The store under test, on SQLite and on the machine's PostgreSQL (a fresh schema per module)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.store.db import create_schema, make_engine, make_sessionmaker


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def sessionmaker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres_url: str
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A sessionmaker on a fresh, empty store of each backend."""
    if request.param == "sqlite":
        folder: Path = tmp_path_factory.mktemp("store")
        engine = make_engine(f"sqlite+aiosqlite:///{folder / 'store.db'}")
        await create_schema(engine)
        yield make_sessionmaker(engine)
        await engine.dispose()
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(postgres_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(postgres_url, connect_args={"server_settings": {"search_path": schema}})
    try:
        await create_schema(engine)
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()
