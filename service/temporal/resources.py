"""What activities need from the service: settings, store, job producer, HTTP client, catalog.

Built once per worker process and handed to activity classes, so activities stay testable.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from protocol_lab.domain import Catalog, load_catalog
from service.jobs.producer import JobProducer
from service.private_files import private_dir
from service.settings import Settings
from service.store.db import create_schema, make_engine, make_sessionmaker

__all__ = ["WorkerResources"]


@dataclass
class WorkerResources:
    """Long-lived resources of a worker process."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    jobs: JobProducer
    http: httpx.AsyncClient
    catalog: Catalog
    # The worker's Temporal client (set by the worker), so background loops can start workflows.
    temporal: Client | None = None

    @classmethod
    async def open(cls, settings: Settings, *, temporal: Client | None = None) -> WorkerResources:
        """Open the store (creating its tables), the job producer and an HTTP client."""
        if settings.database_url is None:
            private_dir(settings.state_dir)
        engine = make_engine(settings.database_url or settings.sqlite_url)
        await create_schema(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=make_sessionmaker(engine),
            jobs=JobProducer(settings.redis_url or "redis://127.0.0.1:6379/0"),
            http=httpx.AsyncClient(timeout=httpx.Timeout(30.0)),
            catalog=load_catalog(),
            temporal=temporal,
        )

    async def close(self) -> None:
        """Release everything opened by :meth:`open`."""
        await self.http.aclose()
        await self.jobs.close()
        await self.engine.dispose()
