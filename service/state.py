"""What a service process holds for its lifetime, in one typed container: settings, the store,
the Temporal client, the job producer, an HTTP client, the catalog and the rule engine's caches
(the engine acts on its view of them, ``AutomationContext.of(resources)``).

The API's lifespan, the worker and the tests' fixtures all open it with :func:`open_resources`
(or :meth:`Resources.open` and :meth:`Resources.close`, for a fixture that outlives one block).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from protocol_lab.domain import Catalog, Rule, load_catalog
from protocol_lab.domain.rule_index import RuleIndex
from service.jobs.producer import JobProducer
from service.private_files import private_dir
from service.settings import Settings
from service.store.db import create_schema, make_engine, make_sessionmaker
from service.temporal.client import connect

__all__ = ["Resources", "RuleCaches", "open_resources"]

HTTP_TIMEOUT = httpx.Timeout(30.0)


@dataclass
class RuleCaches:
    """The rule engine's parsed rules, kept between events: parsing is the costly part of
    evaluation."""

    # rule id -> (updated_at, parsed rule)
    parsed: dict[str, tuple[float, Rule]] = field(default_factory=dict)
    # (version of the stored rule set, the index of its enabled rules)
    index: tuple[int, RuleIndex[str]] | None = None


@dataclass
class Resources:
    """Long-lived resources of one process (the API or a worker), shared by its handlers,
    activities, job processors and background loops."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    temporal: Client
    jobs: JobProducer
    http: httpx.AsyncClient
    catalog: Catalog
    rule_caches: RuleCaches = field(default_factory=RuleCaches)

    @classmethod
    async def open(cls, settings: Settings, *, temporal: Client | None = None) -> Resources:
        """Open the store (creating its tables), the job producer and an HTTP client; use
        ``temporal``, else a lazy client (the API starts, and answers 503, while Temporal is
        still coming up)."""
        if settings.database_url is None:
            private_dir(settings.state_dir)
        engine = make_engine(settings.database_url or settings.sqlite_url)
        await create_schema(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=make_sessionmaker(engine),
            temporal=temporal or await connect(settings, lazy=True),
            jobs=JobProducer(settings.jobs_redis_url),
            http=httpx.AsyncClient(timeout=HTTP_TIMEOUT),
            catalog=load_catalog(),
        )

    async def close(self) -> None:
        """Release everything :meth:`open` opened (a Temporal client needs no closing)."""
        await self.http.aclose()
        await self.jobs.close()
        await self.engine.dispose()


@asynccontextmanager
async def open_resources(
    settings: Settings, *, temporal: Client | None = None
) -> AsyncIterator[Resources]:
    """The process's resources for the block, closed when it ends (see :meth:`Resources.open`)."""
    resources = await Resources.open(settings, temporal=temporal)
    try:
        yield resources
    finally:
        await resources.close()
