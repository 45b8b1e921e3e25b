"""Fixtures of the rule-engine tests that drive the engine directly, on a store of their own.

- ``sessionmaker``: a fresh, empty store per test, on SQLite and on PostgreSQL;
- ``ctx``: the engine's context on that store, the session's Temporal and embedded Redis (jobs
  under a key prefix of their own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from outbox_helpers import engine_context, private_store
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from service.automation.context import AutomationContext
from service.settings import Settings
from service.stack import EmbeddedRedis

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def sessionmaker(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str
) -> AsyncIterator[Sessions]:
    """A fresh, empty store on each backend."""
    async with private_store(request.param, folder=tmp_path, postgres_url=postgres_url) as made:
        yield made


@pytest.fixture
async def ctx(
    sessionmaker: Sessions,
    service_settings: Settings,
    temporal_client: Client,
    embedded_redis: EmbeddedRedis,
) -> AsyncIterator[AutomationContext]:
    """The rule engine's context on ``sessionmaker``'s store."""
    async with engine_context(
        sessionmaker,
        settings=service_settings,
        temporal=temporal_client,
        redis_url=embedded_redis.url,
    ) as made:
        yield made
