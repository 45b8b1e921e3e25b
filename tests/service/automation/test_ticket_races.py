"""Concurrent updates of one ticket: one status change, one event, one rule firing.

Run through the API on the SQLite store of the test service and on PostgreSQL (an app of its own
whose store is a fresh schema).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from automation_helpers import eventually, executions
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stores import empty_database

from service.app import create_app
from service.settings import Settings
from service.state import Resources, RuleCaches
from service.store.db import create_schema, make_sessionmaker
from service.store.outbox import OutboxRow

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

Sessions = async_sessionmaker[AsyncSession]
CONCURRENT_PATCHES = 20


@dataclasses.dataclass(frozen=True)
class Backend:
    """An API client and the store its app writes to."""

    api: httpx.AsyncClient
    sessionmaker: Sessions


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(
    request: pytest.FixtureRequest,
    api: httpx.AsyncClient,
    app_state: Resources,
    service_settings: Settings,
    postgres_url: str,
) -> AsyncIterator[Backend]:
    """The test service (SQLite), or an app on the same stack whose store is PostgreSQL."""
    if request.param == "sqlite":
        yield Backend(api=api, sessionmaker=app_state.sessionmaker)
        return
    app: FastAPI = create_app(service_settings)
    async with empty_database("postgres", postgres_url=postgres_url) as engine:
        await create_schema(engine)
        async with app.router.lifespan_context(app):
            sessions = make_sessionmaker(engine)
            app.state.protocol = dataclasses.replace(
                app.state.protocol, engine=engine, sessionmaker=sessions, rule_caches=RuleCaches()
            )
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver", timeout=60.0
            ) as client:
                yield Backend(api=client, sessionmaker=sessions)


async def _update_events(sessions: Sessions, ticket_id: str) -> list[OutboxRow]:
    async with sessions() as session:
        rows = await session.execute(
            select(OutboxRow)
            .where(OutboxRow.ticket_id == ticket_id, OutboxRow.kind == "on_ticket_updated")
            .order_by(OutboxRow.id)
        )
        return list(rows.scalars())


async def test_concurrent_resolves_fire_the_rule_once(
    backend: Backend, worker: None, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    api = backend.api
    category = f"race-{uuid.uuid4().hex[:8]}"
    rule = await api.post(
        "/v1/automation/rules",
        headers=write_headers,
        json={
            "name": "Tell the requester once when resolved",
            "trigger": "on_ticket_updated",
            "conditions": {"status": {"changed_to": "resolved"}, "category": category},
            "action": {
                "type": "send_notification",
                "recipient": "requester",
                "message": "{ticket_id} is resolved.",
            },
        },
    )
    assert rule.status_code == 201, rule.text
    rule_id = rule.json()["id"]
    created = await api.post(
        "/v1/tickets",
        headers=write_headers,
        json={"title": "Printer jam", "category": category, "requester": "kim@example.com"},
    )
    ticket_id = created.json()["id"]

    answers = await asyncio.gather(
        *(
            api.patch(
                f"/v1/tickets/{ticket_id}", headers=write_headers, json={"status": "resolved"}
            )
            for _ in range(CONCURRENT_PATCHES)
        )
    )

    assert [r.status_code for r in answers] == [200] * CONCURRENT_PATCHES
    assert {r.json()["status"] for r in answers} == {"resolved"}
    events = await _update_events(backend.sessionmaker, ticket_id)
    assert [json.loads(e.payload)["changed"] for e in events] == [["status"]]

    async def processed() -> list[OutboxRow] | None:
        rows = await _update_events(backend.sessionmaker, ticket_id)
        return rows if all(r.status == "done" for r in rows) else None

    await eventually(processed)
    fired: list[dict[str, Any]] = await executions(api, rule_id, write_headers, ticket_id=ticket_id)
    assert len(fired) == 1
    assert fired[0]["outcome"] != "failed", fired[0]
    await api.delete(f"/v1/automation/rules/{rule_id}", headers=admin_headers)
