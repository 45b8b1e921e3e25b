"""What the rule engine needs to act: the store, Temporal, the job producer, settings, catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from protocol_lab.domain import Catalog, Rule
from service.jobs.producer import JobProducer
from service.settings import Settings

__all__ = ["AutomationContext"]


@dataclass
class AutomationContext:
    """Long-lived resources of the engine, built from the API state or a worker's resources."""

    sessionmaker: async_sessionmaker[AsyncSession]
    temporal: Client
    jobs: JobProducer
    settings: Settings
    catalog: Catalog
    # rule id -> (updated_at, parsed rule): parsing is the costly part of evaluation
    rule_cache: dict[str, tuple[float, Rule]] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_state(cls, state: Any) -> AutomationContext:
        """The engine context of an API process (``AppState``), cached on it."""
        cached = state.extras.get("automation")
        if isinstance(cached, AutomationContext):
            return cached
        ctx = cls(
            sessionmaker=state.sessionmaker,
            temporal=state.temporal,
            jobs=state.jobs,
            settings=state.settings,
            catalog=state.catalog,
        )
        state.extras["automation"] = ctx
        return ctx
