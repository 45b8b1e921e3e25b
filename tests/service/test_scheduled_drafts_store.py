"""Draft workflows in the store, on SQLite and PostgreSQL: insert, read, list by order with the
list filters, count (all, and the recurring ones of a caller), delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stores import empty_store

from service.store.drafts import (
    count_drafts,
    delete_draft,
    draft_input,
    draft_schedule,
    get_draft,
    insert_draft,
    list_drafts,
)
from service.temporal.ids import new_workflow_id, order_of

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str
) -> AsyncIterator[Sessions]:
    async with empty_store(request.param, folder=tmp_path, postgres_url=postgres_url) as made:
        yield made


async def test_drafts_are_stored_listed_counted_and_deleted(sessions: Sessions) -> None:
    base = 1_800_000_000.0
    ids = [new_workflow_id(now=base + i) for i in range(4)]
    rows = [
        ("Password Reset", "itsm-workflows", "TKT-1", None, "alice"),
        ("Password Reset", "itsm-workflows", "TKT-2", {"interval_s": 3600.0}, "alice"),
        ("VPN Access Revocation", "itsm-network", "TKT-1", {"cron": "@daily"}, "bob"),
        ("Password Reset", "itsm-workflows", None, None, "bob"),
    ]
    async with sessions() as session:
        for wid, (name, queue, ticket, schedule, caller) in zip(ids, rows, strict=True):
            await insert_draft(
                session,
                workflow_id=wid,
                name=name,
                task_queue=queue,
                trigger_type="scheduled",
                input={"ticket_id": ticket} if ticket else {},
                plan_json="{}",
                version=1,
                time_scale=None,
                protocol_order=order_of(wid),
                created_by=caller,
                schedule=schedule,
            )
        with pytest.raises(IntegrityError):
            await insert_draft(
                session,
                workflow_id=ids[0],
                name="Password Reset",
                task_queue="itsm-workflows",
                trigger_type="scheduled",
                input={},
                plan_json="{}",
                version=1,
                time_scale=None,
                protocol_order=order_of(ids[0]),
            )
        await session.rollback()
        first = await get_draft(session, workflow_id=ids[0])
        assert first is not None
        assert (draft_input(first), draft_schedule(first)) == ({"ticket_id": "TKT-1"}, None)
        second = await get_draft(session, workflow_id=ids[1])
        assert second is not None
        assert draft_schedule(second) == {"interval_s": 3600.0}

        assert [r.id for r in await list_drafts(session, limit=10)] == ids[::-1]
        assert [r.id for r in await list_drafts(session, ticket_id="TKT-1")] == [ids[2], ids[0]]
        assert [r.id for r in await list_drafts(session, name="Password Reset", limit=2)] == [
            ids[3],
            ids[1],
        ]
        assert [r.id for r in await list_drafts(session, task_queue="itsm-network")] == [ids[2]]
        between = await list_drafts(
            session, above=order_of(ids[0]), below=order_of(ids[3]), newest_first=False
        )
        assert [r.id for r in between] == [ids[1], ids[2]]

        assert await count_drafts(session) == 4
        assert await count_drafts(session, recurring_of="alice") == 1
        assert await count_drafts(session, recurring_of="carol") == 0
        await delete_draft(session, workflow_id=ids[1])
        assert await get_draft(session, workflow_id=ids[1]) is None
        assert await count_drafts(session, recurring_of="alice") == 0
