"""Workflow definitions added at run time: one row per (name, version), the plan kept as JSON.

The catalog of ``data/definitions`` is version 1 of its names and is not stored; a stored
definition of one of those names starts at version 2. Rows are never changed or deleted: a
new version is a new row, and the primary key (name, version) makes two writers racing for the
same version fail one of them instead of overwriting.
"""

from __future__ import annotations

import time

from sqlalchemy import Float, Integer, String, Text, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from service.store.db import Base

__all__ = [
    "DefinitionRow",
    "VersionTakenError",
    "count_definition_names",
    "count_versions",
    "definition_version",
    "insert_definition",
    "latest_definition",
    "latest_definitions",
]


class DefinitionRow(Base):
    """One version of a workflow definition."""

    __tablename__ = "workflow_definitions"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan: Mapped[str] = mapped_column(Text, doc="JSON of the WorkflowPlan")
    created_at: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(64), doc="the writing token's fingerprint")


class VersionTakenError(Exception):
    """Another writer stored this version of the definition first."""


async def latest_definition(session: AsyncSession, *, name: str) -> DefinitionRow | None:
    """The newest stored version of ``name``, or None."""
    result = await session.execute(
        select(DefinitionRow)
        .where(DefinitionRow.name == name)
        .order_by(DefinitionRow.version.desc())
        .limit(1)
    )
    return result.scalars().first()


async def definition_version(
    session: AsyncSession, *, name: str, version: int
) -> DefinitionRow | None:
    """Version ``version`` of ``name``, or None."""
    return await session.get(DefinitionRow, (name, version))


async def latest_definitions(session: AsyncSession, *, limit: int) -> list[DefinitionRow]:
    """The newest version of every stored name (at most ``limit`` names), by name."""
    newest = (
        select(DefinitionRow.name, func.max(DefinitionRow.version).label("version"))
        .group_by(DefinitionRow.name)
        .subquery()
    )
    result = await session.execute(
        select(DefinitionRow)
        .join(
            newest,
            (DefinitionRow.name == newest.c.name) & (DefinitionRow.version == newest.c.version),
        )
        .order_by(DefinitionRow.name)
        .limit(limit)
    )
    return list(result.scalars())


async def count_definition_names(session: AsyncSession) -> int:
    """How many names have a stored definition."""
    count = await session.scalar(select(func.count(func.distinct(DefinitionRow.name))))
    return int(count or 0)


async def count_versions(session: AsyncSession, *, name: str) -> int:
    """How many versions of ``name`` are stored."""
    count = await session.scalar(
        select(func.count()).select_from(DefinitionRow).where(DefinitionRow.name == name)
    )
    return int(count or 0)


async def insert_definition(
    session: AsyncSession, *, name: str, version: int, plan_json: str, created_by: str
) -> DefinitionRow:
    """Store version ``version`` of ``name``; VersionTakenError if it exists already. Commits."""
    row = DefinitionRow(
        name=name,
        version=version,
        plan=plan_json,
        created_at=time.time(),
        created_by=created_by,
    )
    session.add(row)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise VersionTakenError(f"version {version} of {name!r} exists") from exc
    return row
