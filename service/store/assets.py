"""Asset records and the idempotent reserve / release / assign that workflow steps perform.

An asset is held by at most one workflow. Each operation is keyed by the workflow id, so a
retried activity finds its own earlier effect instead of repeating it. The lab's inventory grows
on demand: reserving a type with nothing in stock records a newly procured asset.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Final

from sqlalchemy import Float, Index, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from service.store.db import Base

__all__ = [
    "ASSET_STATUSES",
    "AssetRow",
    "asset_dict",
    "assets_of_workflow",
    "assign_asset",
    "release_assets",
    "reserve_asset",
]

ASSET_STATUSES: Final = ("available", "reserved", "assigned")


class AssetRow(Base):
    """One asset (laptop, token, licence...) and who holds it."""

    __tablename__ = "assets"
    __table_args__ = (
        Index("ix_assets_type_status", "asset_type", "status"),
        Index("ix_assets_workflow", "workflow_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    asset_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="available")
    workflow_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    assignee: Mapped[str | None] = mapped_column(String(128), nullable=True)
    updated_at: Mapped[float] = mapped_column(Float)


def asset_dict(row: AssetRow) -> dict[str, Any]:
    """An asset as a plain dict."""
    return {
        "id": row.id,
        "asset_type": row.asset_type,
        "status": row.status,
        "workflow_id": row.workflow_id,
        "assignee": row.assignee,
        "updated_at": row.updated_at,
    }


async def assets_of_workflow(session: AsyncSession, *, workflow_id: str) -> list[dict[str, Any]]:
    """Assets currently held (reserved or assigned) by a workflow."""
    rows = (
        (await session.execute(select(AssetRow).where(AssetRow.workflow_id == workflow_id)))
        .scalars()
        .all()
    )
    return [asset_dict(r) for r in rows]


async def reserve_asset(
    session: AsyncSession, *, workflow_id: str, asset_type: str
) -> dict[str, Any]:
    """Reserve an available asset of ``asset_type`` for the workflow; commit.

    Idempotent: if the workflow already holds one of that type, that one is returned.
    """
    for _ in range(5):
        held = (
            await session.execute(
                select(AssetRow).where(
                    AssetRow.workflow_id == workflow_id, AssetRow.asset_type == asset_type
                )
            )
        ).scalar()
        if held is not None:
            return asset_dict(held)
        free = (
            await session.execute(
                select(AssetRow)
                .where(AssetRow.asset_type == asset_type, AssetRow.status == "available")
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).scalar()
        now = time.time()
        if free is None:
            free = AssetRow(
                id="AST-" + secrets.token_hex(5).upper(),
                asset_type=asset_type,
                status="available",
                updated_at=now,
            )
            session.add(free)
        free.status = "reserved"
        free.workflow_id = workflow_id
        free.updated_at = now
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            continue
        return asset_dict(free)
    raise RuntimeError(f"could not reserve a {asset_type} for {workflow_id}")


async def release_assets(session: AsyncSession, *, workflow_id: str) -> list[dict[str, Any]]:
    """Return every asset the workflow holds to stock; commit. Idempotent (nothing held: [])."""
    rows = (
        (
            await session.execute(
                select(AssetRow).where(AssetRow.workflow_id == workflow_id).with_for_update()
            )
        )
        .scalars()
        .all()
    )
    now = time.time()
    released = []
    for row in rows:
        row.status = "available"
        row.workflow_id = None
        row.assignee = None
        row.updated_at = now
        released.append(asset_dict(row))
    await session.commit()
    return released


async def assign_asset(
    session: AsyncSession, *, workflow_id: str, assignee: str, asset_type: str | None = None
) -> dict[str, Any] | None:
    """Hand the workflow's reserved asset to ``assignee``; commit. None if it holds none.

    Idempotent: assigning an asset already assigned to the same person changes nothing.
    """
    stmt = select(AssetRow).where(AssetRow.workflow_id == workflow_id)
    if asset_type is not None:
        stmt = stmt.where(AssetRow.asset_type == asset_type)
    row = (await session.execute(stmt.limit(1).with_for_update())).scalar()
    if row is None:
        return None
    if row.status != "assigned" or row.assignee != assignee:
        row.status = "assigned"
        row.assignee = assignee
        row.updated_at = time.time()
        await session.commit()
    return asset_dict(row)
