"""The store under test, on SQLite and on the machine's PostgreSQL (a fresh schema per module)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stores import empty_store


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def sessionmaker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres_url: str
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A sessionmaker on a fresh, empty store of each backend."""
    async with empty_store(
        request.param, folder=tmp_path_factory.mktemp("store"), postgres_url=postgres_url
    ) as sessions:
        yield sessions
