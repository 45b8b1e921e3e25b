"""Tickets and their outbox events, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.store.outbox import (
    OutboxRow,
    claim_event,
    finish_event,
    pending_event_ids,
    release_event,
)
from service.store.tickets import (
    TicketError,
    apply_ticket_update,
    create_ticket,
    get_ticket,
    list_tickets,
    update_ticket_fields,
)

Sessions = async_sessionmaker[AsyncSession]


async def _events(sessionmaker: Sessions, ticket_id: str) -> list[OutboxRow]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(OutboxRow).where(OutboxRow.ticket_id == ticket_id).order_by(OutboxRow.id)
        )
        return list(rows.scalars())


async def test_create_writes_ticket_and_event_together(sessionmaker: Sessions) -> None:
    async with sessionmaker() as session:
        ticket, event_id = await create_ticket(
            session, fields={"title": "Laptop", "priority": "P2"}, actor="test"
        )
    assert ticket["id"].startswith("TKT-")
    assert ticket["status"] == "open"
    [event] = await _events(sessionmaker, ticket["id"])
    assert event.id == event_id
    assert event.kind == "on_ticket_created"
    assert event.status == "pending"
    async with sessionmaker() as session:
        assert await get_ticket(session, ticket_id=ticket["id"]) == ticket


async def test_update_ticket_fields_records_event_and_ignores_no_ops(
    sessionmaker: Sessions,
) -> None:
    async with sessionmaker() as session:
        ticket, _ = await create_ticket(session, fields={"title": "VPN"}, actor="test")
        after = await update_ticket_fields(
            session,
            ticket_id=ticket["id"],
            fields={"status": "in_progress", "assignee": "x"},
            actor="wf",
        )
        assert after is not None
        assert after["status"] == "in_progress"
        same = await update_ticket_fields(
            session, ticket_id=ticket["id"], fields={"status": "in_progress"}, actor="wf"
        )
        assert same == after
        missing = await update_ticket_fields(
            session, ticket_id="TKT-987654", fields={"status": "open"}, actor="wf"
        )
        assert missing is None
        assert await update_ticket_fields(session, ticket_id="junk", fields={}, actor="wf") is None
        with pytest.raises(TicketError, match="priority"):
            await update_ticket_fields(
                session, ticket_id=ticket["id"], fields={"priority": "P7"}, actor="wf"
            )
        with pytest.raises(TicketError, match="created_at"):
            await update_ticket_fields(
                session, ticket_id=ticket["id"], fields={"created_at": 1}, actor="wf"
            )
    _created, updated = await _events(sessionmaker, ticket["id"])
    assert updated.kind == "on_ticket_updated"
    payload = json.loads(updated.payload)
    assert payload["changed"] == ["assignee", "status"]
    assert payload["previous"]["status"] == "open"
    assert payload["ticket"]["status"] == "in_progress"
    assert payload["actor"] == "wf"


async def test_a_rolled_back_update_leaves_no_event(sessionmaker: Sessions) -> None:
    async with sessionmaker() as session:
        ticket, _ = await create_ticket(session, fields={"title": "Rollback"}, actor="test")
    async with sessionmaker() as session:
        _after, event_id = await apply_ticket_update(
            session, ticket_id=ticket["id"], fields={"status": "pending"}, actor="t"
        )
        assert event_id is not None
        await session.rollback()
    assert len(await _events(sessionmaker, ticket["id"])) == 1
    async with sessionmaker() as session:
        assert (await get_ticket(session, ticket_id=ticket["id"]) or {})["status"] == "open"


async def test_one_claim_wins_and_an_expired_lease_is_claimed_again(sessionmaker: Sessions) -> None:
    async with sessionmaker() as session:
        _, event_id = await create_ticket(session, fields={"title": "Claim"}, actor="test")

    async def claim() -> object:
        async with sessionmaker() as session:
            return await claim_event(session, event_id=event_id)

    results = await asyncio.gather(*(claim() for _ in range(4)))
    assert sum(r is not None for r in results) == 1
    async with sessionmaker() as session:
        assert event_id not in await pending_event_ids(session)
        # The holder dies: once its lease is over the event is pending again.
        await session.execute(
            update(OutboxRow).where(OutboxRow.id == event_id).values(lease_until=0.0)
        )
        await session.commit()
        assert event_id in await pending_event_ids(session)
        again = await claim_event(session, event_id=event_id)
        assert again is not None
        assert again.attempts == 2
        await release_event(session, event_id=event_id, retry_in_s=3600)
        assert await claim_event(session, event_id=event_id) is None
        await finish_event(session, event_id=event_id)
        await session.execute(
            update(OutboxRow).where(OutboxRow.id == event_id).values(lease_until=0.0)
        )
        await session.commit()
        assert await claim_event(session, event_id=event_id) is None
        assert event_id not in await pending_event_ids(session)


async def test_list_filters_and_pages(sessionmaker: Sessions) -> None:
    ids = []
    async with sessionmaker() as session:
        for i in range(5):
            ticket, _ = await create_ticket(
                session, fields={"title": f"t{i}", "category": "paging"}, actor="test"
            )
            ids.append(ticket["id"])
        page, more = await list_tickets(session, filters={"category": "paging"}, limit=3)
        assert [t["id"] for t in page] == ids[::-1][:3]
        assert more is True
        page, more = await list_tickets(
            session, filters={"category": "paging"}, limit=3, starting_after=ids[2]
        )
        assert [t["id"] for t in page] == [ids[1], ids[0]]
        assert more is False
        page, more = await list_tickets(
            session, filters={"category": "paging"}, limit=2, ending_before=ids[1]
        )
        assert [t["id"] for t in page] == [ids[3], ids[2]]
        assert more is True
        with pytest.raises(TicketError):
            await list_tickets(session, filters={}, limit=2, starting_after="nope")
