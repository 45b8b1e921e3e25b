"""Idempotency keys: the first request with a key claims it; later ones get the same resource."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from sqlalchemy import Float, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from service.store.db import Base, insert_or_fetch

__all__ = ["IdempotencyKey", "claim_key", "request_fingerprint"]


class IdempotencyKey(Base):
    """A claimed key: which resource the first request with it created."""

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(64))
    response: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


def request_fingerprint(body: Any) -> str:
    """A stable hash of a request body, to refuse a key reused with a different request."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


async def claim_key(
    session: AsyncSession, *, scope: str, key: str, fingerprint: str, resource_id: str
) -> tuple[IdempotencyKey, bool]:
    """Claim ``key`` for ``resource_id``; return the row and whether this call claimed it.

    When the key was claimed before, the existing row is returned (its ``resource_id`` is the
    resource to answer with) and the caller must compare ``fingerprint``. Commits on claim.
    """
    row = IdempotencyKey(
        scope=scope,
        key=key,
        fingerprint=fingerprint,
        resource_id=resource_id,
        created_at=time.time(),
    )
    return await insert_or_fetch(
        session,
        row,
        select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key),
    )
