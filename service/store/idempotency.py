"""Idempotency keys: the first request with a key claims it; later ones get the same resource.

A key belongs to a scope (the kind of request and the calling token, see
``service.api.deps.idempotency_scope``). It is claimed in the transaction that creates the
resource it protects (:func:`stage_key`), so a create that fails leaves no claim behind. A claim
counts for ``ttl_s`` seconds; after that the key is new again, and :func:`prune_expired_keys`
deletes it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Float, String, Text, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from service.errors import ConflictError
from service.store.db import Base

__all__ = [
    "DEFAULT_TTL_S",
    "IdempotencyKey",
    "KeyClaim",
    "KeyReusedError",
    "claim_idempotency_key",
    "prune_expired_keys",
    "request_fingerprint",
    "stage_key",
]

DEFAULT_TTL_S: Final = 24 * 3600.0


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


async def stage_key(
    session: AsyncSession,
    *,
    scope: str,
    key: str,
    fingerprint: str,
    resource_id: str,
    ttl_s: float = DEFAULT_TTL_S,
    now: float | None = None,
) -> tuple[IdempotencyKey, bool]:
    """Claim ``key`` for ``resource_id`` in the session's transaction, without committing.

    Returns the row and whether this call claimed it. A fresh claim commits (or rolls back)
    with whatever the caller writes next, so stage it before the resource and commit both
    together. When the key is held by an unexpired claim, the session's transaction is rolled
    back and that claim is returned: its ``resource_id`` is the resource to answer with, and
    the caller must compare ``fingerprint``. Call it first in a transaction: on SQLite its
    first write takes the store's write lock; on PostgreSQL a concurrent claim of the same key
    waits for this transaction's end.
    """
    stamp = time.time() if now is None else now
    mine = (IdempotencyKey.scope == scope, IdempotencyKey.key == key)
    await session.execute(
        delete(IdempotencyKey)
        .where(*mine, IdempotencyKey.created_at < stamp - ttl_s)
        .execution_options(synchronize_session="fetch")
    )
    row = IdempotencyKey(
        scope=scope,
        key=key,
        fingerprint=fingerprint,
        resource_id=resource_id,
        created_at=stamp,
    )
    session.add(row)
    try:
        await session.flush()
        return row, True
    except IntegrityError:
        await session.rollback()
    found = await session.execute(
        select(IdempotencyKey).where(*mine).execution_options(populate_existing=True)
    )
    return found.scalar_one(), False


class KeyReusedError(ConflictError):
    """An Idempotency-Key presented again with a different request (the API answers 409)."""


@dataclass(frozen=True)
class KeyClaim:
    """An Idempotency-Key presented with a request.

    ``first``: this request is the first with the key, and goes on to make the resource named
    ``resource_id``; otherwise an earlier request with the same body made it, and the answer is
    that resource.
    """

    row: IdempotencyKey
    first: bool

    @property
    def resource_id(self) -> str:
        """The resource the key stands for."""
        return self.row.resource_id


async def claim_idempotency_key(
    session: AsyncSession,
    *,
    scope: str,
    key: str,
    request: Any,
    resource_id: str,
    ttl_s: float = DEFAULT_TTL_S,
    commit: bool = False,
) -> KeyClaim:
    """Present ``key`` with ``request`` (its body, hashed) for ``resource_id``: the one way every
    endpoint that takes an Idempotency-Key uses it.

    Without ``commit`` the claim is staged in the session's transaction (:func:`stage_key`) and
    commits with the resource it protects; with ``commit`` it commits at once, for resources
    that live outside the store (a workflow id named before the workflow is started, so a
    retry after a failure completes the same one). Raises :class:`KeyReusedError` when the key
    was used with another request.
    """
    fingerprint = request_fingerprint(request)
    row, first = await stage_key(
        session,
        scope=scope,
        key=key,
        fingerprint=fingerprint,
        resource_id=resource_id,
        ttl_s=ttl_s,
    )
    if not first and row.fingerprint != fingerprint:
        raise KeyReusedError(
            "this Idempotency-Key was used with a different request; use a new key"
        )
    if first and commit:
        await session.commit()
    return KeyClaim(row, first)


async def prune_expired_keys(
    session: AsyncSession, *, ttl_s: float = DEFAULT_TTL_S, now: float | None = None
) -> int:
    """Delete every claim older than ``ttl_s`` seconds; commit; return how many went."""
    stamp = time.time() if now is None else now
    result = await session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.created_at < stamp - ttl_s)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
