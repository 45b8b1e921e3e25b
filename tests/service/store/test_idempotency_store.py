"""Idempotency keys in the store, on SQLite and PostgreSQL: claimed with the resource they
protect, one winner among concurrent claims, new again once expired, pruned."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.store.idempotency import (
    IdempotencyKey,
    KeyReusedError,
    claim_idempotency_key,
    prune_expired_keys,
    stage_key,
)
from service.store.tickets import TicketRow, stage_ticket

Sessions = async_sessionmaker[AsyncSession]
TTL_S = 3600.0


async def _claims(sessionmaker: Sessions, key: str) -> list[IdempotencyKey]:
    async with sessionmaker() as session:
        rows = await session.execute(select(IdempotencyKey).where(IdempotencyKey.key == key))
        return list(rows.scalars())


async def test_a_claim_rolls_back_with_the_resource_it_protects(sessionmaker: Sessions) -> None:
    key = uuid.uuid4().hex
    async with sessionmaker() as session:
        _, fresh = await stage_key(
            session, scope="s", key=key, fingerprint="f", resource_id="", ttl_s=TTL_S
        )
        assert fresh
        session.add(TicketRow(title=None))  # NOT NULL columns: the insert fails
        with pytest.raises(IntegrityError):
            await session.commit()
    assert await _claims(sessionmaker, key) == []

    async with sessionmaker() as session:
        claim, fresh = await stage_key(
            session, scope="s", key=key, fingerprint="f", resource_id="", ttl_s=TTL_S
        )
        ticket, _ = await stage_ticket(session, fields={"title": "Retried"}, actor="test")
        claim.resource_id = ticket["id"]
        await session.commit()
    assert fresh
    [stored] = await _claims(sessionmaker, key)
    assert stored.resource_id == ticket["id"]


async def test_concurrent_claims_have_one_winner(sessionmaker: Sessions) -> None:
    key = uuid.uuid4().hex

    async def claim(n: int) -> tuple[str, bool]:
        async with sessionmaker() as session:
            row, fresh = await stage_key(
                session, scope="s", key=key, fingerprint="f", resource_id=f"r{n}", ttl_s=TTL_S
            )
            await session.commit()
            return row.resource_id, fresh

    results = await asyncio.gather(*(claim(n) for n in range(8)))
    winners = [resource for resource, fresh in results if fresh]
    assert len(winners) == 1
    assert {resource for resource, _ in results} == set(winners)


async def test_keys_are_per_scope_and_expire(sessionmaker: Sessions) -> None:
    key = uuid.uuid4().hex
    now = 1_900_000_000.0
    async with sessionmaker() as session:
        _, first = await stage_key(
            session, scope="a", key=key, fingerprint="f", resource_id="r1", ttl_s=TTL_S, now=now
        )
        await session.commit()
        _, other_scope = await stage_key(
            session, scope="b", key=key, fingerprint="f", resource_id="r2", ttl_s=TTL_S, now=now
        )
        await session.commit()
        held, again = await stage_key(
            session,
            scope="a",
            key=key,
            fingerprint="f",
            resource_id="r3",
            ttl_s=TTL_S,
            now=now + TTL_S - 1,
        )
        assert (first, other_scope, again, held.resource_id) == (True, True, False, "r1")
        renewed, expired = await stage_key(
            session,
            scope="a",
            key=key,
            fingerprint="f",
            resource_id="r4",
            ttl_s=TTL_S,
            now=now + TTL_S + 1,
        )
        await session.commit()
        assert (expired, renewed.resource_id) == (True, "r4")

        # at now + 2 TTL: b's claim (made at now) is past its TTL, a's renewal is not
        assert await prune_expired_keys(session, ttl_s=TTL_S, now=now + 2 * TTL_S) >= 1
    assert [(c.scope, c.resource_id) for c in await _claims(sessionmaker, key)] == [("a", "r4")]


async def test_one_claim_helper_one_meaning_of_first(sessionmaker: Sessions) -> None:
    """claim_idempotency_key: the first request with a key is ``first`` and names the resource;
    the same request again is not first and gets that resource; another request with the key
    is refused; ``commit`` makes the claim hold without anything else being written."""
    key = uuid.uuid4().hex
    body = {"title": "Printer offline"}
    async with sessionmaker() as session:
        first = await claim_idempotency_key(
            session, scope="s", key=key, request=body, resource_id="wf_1", commit=True
        )
    assert first.first
    assert first.resource_id == "wf_1"
    async with sessionmaker() as session:
        again = await claim_idempotency_key(
            session, scope="s", key=key, request=dict(body), resource_id="wf_2", commit=True
        )
    assert not again.first
    assert again.resource_id == "wf_1"
    async with sessionmaker() as session:
        with pytest.raises(KeyReusedError, match="different request"):
            await claim_idempotency_key(
                session, scope="s", key=key, request={"title": "Other"}, resource_id="wf_3"
            )
    [stored] = await _claims(sessionmaker, key)
    assert stored.resource_id == "wf_1"
