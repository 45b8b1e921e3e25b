"""Workflow definitions in the store, on SQLite and PostgreSQL: versions, the newest of each
name, a version taken by a concurrent writer, the bounds, and the lookup by name that the
starter and the rule engine use."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stores import empty_store

from protocol_lab.domain import Catalog, load_catalog
from service.api.errors import ApiError
from service.store.definitions import (
    VersionTakenError,
    insert_definition,
    latest_definition,
    latest_definitions,
)
from service.workflows import definitions
from service.workflows.definitions import (
    find_definition,
    list_definitions,
    save_definition,
    workflow_defined,
)

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
    assert all(isinstance(o, ApiError) and o.status_code == 409 for o in refused), refused
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
    with pytest.raises(ApiError) as full:
        await save_definition(ctx, name="Three", body=PLAN, created_by="me", create_only=True)
    assert full.value.status_code == 409
    await save_definition(
        ctx, name="One", body={**PLAN, "description": "2"}, created_by="me", create_only=False
    )
    with pytest.raises(ApiError) as versions:
        await save_definition(
            ctx, name="One", body={**PLAN, "description": "3"}, created_by="me", create_only=False
        )
    assert "versions" in versions.value.message
