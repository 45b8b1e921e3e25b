"""What the API process holds for its lifetime: settings, store, Temporal client, job producer."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from protocol_lab.domain import Catalog
from service.jobs.producer import JobProducer
from service.settings import Settings

__all__ = ["AppState"]


@dataclass
class AppState:
    """Long-lived resources shared by request handlers."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    temporal: Client
    jobs: JobProducer
    catalog: Catalog
    extras: dict[str, object] = field(default_factory=dict)
