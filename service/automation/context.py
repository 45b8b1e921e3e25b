"""What the rule engine needs to act: the store, Temporal, the job producer, settings, catalog,
and its caches of parsed rules.

A process hands the engine the view of its :class:`~service.state.Resources`
(:meth:`AutomationContext.of`); a test or a benchmark that drives the engine alone builds one
from its own parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from protocol_lab.domain import Catalog
from service.jobs.producer import JobProducer
from service.settings import Settings
from service.state import Resources, RuleCaches

__all__ = ["AutomationContext", "RuleCaches"]


@dataclass
class AutomationContext:
    """The resources the engine acts with, and its caches."""

    sessionmaker: async_sessionmaker[AsyncSession]
    temporal: Client
    jobs: JobProducer
    settings: Settings
    catalog: Catalog
    caches: RuleCaches = field(default_factory=RuleCaches)

    @classmethod
    def of(cls, resources: Resources) -> AutomationContext:
        """The engine's view of a process's resources, sharing their rule caches."""
        return cls(
            sessionmaker=resources.sessionmaker,
            temporal=resources.temporal,
            jobs=resources.jobs,
            settings=resources.settings,
            catalog=resources.catalog,
            caches=resources.rule_caches,
        )
