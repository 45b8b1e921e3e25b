"""Workflow definitions in the store, on SQLite and PostgreSQL: versions, the newest of each
name, a version taken by a concurrent writer, the bounds, and the lookup by name that the
starter and the rule engine use; and the service itself on PostgreSQL (definitions, a draft,
its start)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stores import empty_store
from waiting import eventually

from protocol_lab.domain import Catalog, load_catalog
from service.app import create_app
from service.errors import ConflictError
from service.executions import definitions
from service.executions.definitions import (
    find_definition,
    list_definitions,
    save_definition,
    workflow_defined,
)
from service.settings import Settings
from service.state import Resources
from service.store.definitions import (
    VersionTakenError,
    insert_definition,
    latest_definition,
    latest_definitions,
)
from service.store.drafts import get_draft

Sessions = async_sessionmaker[AsyncSession]

PLAN: dict[str, Any] = {
    "task_queue": "itsm-workflows",
    "steps": [
        {
            "id": "reset",
            "kind": "activity",
            "activity": "ticket_update",
            "detail": "Resetting",
            "done": "Reset",
            "params": {"fields": {"status": "resolved"}},
        }
    ],
}


@dataclass
class Context:
    """The part of the API state the definitions need."""

    sessionmaker: Sessions
    catalog: Catalog
    settings: Any = None
    temporal: Any = None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str
) -> AsyncIterator[Sessions]:
    async with empty_store(request.param, folder=tmp_path, postgres_url=postgres_url) as made:
        yield made


async def test_versions_and_the_newest_of_each_name(sessions: Sessions) -> None:
    async with sessions() as session:
        for name, version in [("A", 1), ("A", 2), ("B", 1), ("A", 3)]:
            await insert_definition(
                session,
                name=name,
                version=version,
                plan_json=json.dumps({"v": version}),
                created_by="me",
            )
        newest = await latest_definition(session, name="A")
        assert newest is not None
        assert newest.version == 3
        assert [(r.name, r.version) for r in await latest_definitions(session, limit=10)] == [
            ("A", 3),
            ("B", 1),
        ]
        with pytest.raises(VersionTakenError):
            await insert_definition(session, name="A", version=2, plan_json="{}", created_by="me")
        assert await latest_definition(session, name="C") is None


async def test_the_lookup_merges_the_catalog_and_the_store(sessions: Sessions) -> None:
    ctx = Context(sessionmaker=sessions, catalog=load_catalog())
    assert await workflow_defined(ctx, "Password Reset")
    assert not await workflow_defined(ctx, "Nightly Cleanup")
    stored, created = await save_definition(
        ctx, name="Nightly Cleanup", body=PLAN, created_by="me", create_only=True
    )
    assert (created, stored.version, stored.builtin) == (True, 1, False)
    assert await workflow_defined(ctx, "Nightly Cleanup")

    builtin = load_catalog()["Password Reset"].model_dump(mode="json")
    builtin["description"] = "changed"
    del builtin["name"]
    v2, _ = await save_definition(
        ctx, name="Password Reset", body=builtin, created_by="me", create_only=False
    )
    assert v2.version == 2
    found = await find_definition(ctx, "Password Reset")
    assert found is not None
    assert found.plan.description == "changed"
    first = await find_definition(ctx, "Password Reset", version=1)
    assert first is not None
    assert first.builtin
    names = {d.plan.name: d.version for d in await list_definitions(ctx)}
    assert names["Nightly Cleanup"] == 1
    assert names["Password Reset"] == 2
    assert len(names) == len(load_catalog()) + 1


async def test_concurrent_writers_store_distinct_versions_or_are_told(sessions: Sessions) -> None:
    ctx = Context(sessionmaker=sessions, catalog=load_catalog())
    bodies = [
        {**PLAN, "description": f"writer {i}"}  # distinct bodies: each one is a new version
        for i in range(6)
    ]
    outcomes = await asyncio.gather(
        *(
            save_definition(ctx, name="Racy", body=body, created_by="me", create_only=False)
            for body in bodies
        ),
        return_exceptions=True,
    )
    stored = [o[0].version for o in outcomes if isinstance(o, tuple)]
    refused = [o for o in outcomes if not isinstance(o, tuple)]
    assert all(isinstance(o, ConflictError) for o in refused), refused
    assert len(stored) == len(set(stored)) >= 1
    newest = await find_definition(ctx, "Racy")
    assert newest is not None
    assert newest.version == max(stored)


async def test_the_store_bounds_names_and_versions(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = Context(sessionmaker=sessions, catalog=load_catalog())
    monkeypatch.setattr(
        definitions,
        "LIMITS",
        definitions.DefinitionLimits(stored_names=2, versions_per_name=2),
    )
    for name in ("One", "Two"):
        await save_definition(ctx, name=name, body=PLAN, created_by="me", create_only=True)
    with pytest.raises(ConflictError):
        await save_definition(ctx, name="Three", body=PLAN, created_by="me", create_only=True)
    await save_definition(
        ctx, name="One", body={**PLAN, "description": "2"}, created_by="me", create_only=False
    )
    with pytest.raises(ConflictError) as versions:
        await save_definition(
            ctx, name="One", body={**PLAN, "description": "3"}, created_by="me", create_only=False
        )
    assert "versions" in versions.value.message


@pytest.mark.postgres
@pytest.mark.temporal
@pytest.mark.redis
async def test_the_service_keeps_definitions_and_drafts_on_postgresql(
    worker: None, service_settings: Settings, postgres_url: str, admin_headers: dict[str, str]
) -> None:
    app = create_app(service_settings)
    headers = admin_headers
    async with (
        empty_store("postgres", postgres_url=postgres_url) as postgres,
        app.router.lifespan_context(app),
    ):
        state: Resources = app.state.protocol
        state.sessionmaker = postgres  # the app's store is this PostgreSQL schema
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://pg") as api:
            name = f"Postgres Mailbox {uuid.uuid4().hex[:8]}"
            step = {
                "id": "lookup",
                "kind": "activity",
                "activity": "integration",
                "integration": "directory",
                "detail": "Looking up",
                "done": "Looked up",
                "duration": {"dist": "fixed", "seconds": 1},
            }
            body = {**PLAN, "steps": [step]}
            created = await api.post(f"/v1/workflow-definitions/{name}", headers=headers, json=body)
            assert created.status_code == 201, created.text
            changed = await api.put(
                f"/v1/workflow-definitions/{name}",
                headers=headers,
                json={**body, "description": "second"},
            )
            assert (changed.status_code, changed.json()["version"]) == (201, 2)
            async with postgres() as session:
                newest = await latest_definition(session, name=name)
            assert newest is not None
            assert newest.version == 2
            draft = await api.post(
                "/v1/workflows",
                headers=headers,
                json={"name": name, "task_queue": "itsm-workflows", "trigger_type": "scheduled"},
            )
            assert draft.status_code == 201, draft.text
            wf = draft.json()["id"]
            async with postgres() as session:
                assert await get_draft(session, workflow_id=wf) is not None
            listed = await api.get(
                "/v1/workflows", headers=headers, params={"status": "draft", "name": name}
            )
            assert [w["id"] for w in listed.json()["data"]] == [wf]
            started = await api.post(f"/v1/workflows/{wf}/start", headers=headers)
            assert started.status_code == 200, started.text

            async def completed() -> bool:
                status = await api.get(f"/v1/workflows/{wf}/status", headers=headers)
                return bool(status.json()["status"] == "completed")

            await eventually(completed, within_s=60)
            async with postgres() as session:
                assert await get_draft(session, workflow_id=wf) is None
