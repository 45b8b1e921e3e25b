"""Idempotency-Key on rule, ticket and workflow creation: keys belong to the calling token, are
claimed in the transaction that creates the resource (a failed create leaves no claim behind),
and expire after ``IDEMPOTENCY_TTL_S``, when the daily maintenance job prunes them."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update
from temporalio.client import Client
from waiting import eventually

from protocol_lab.domain import JobQueue, TaskQueue
from service.errors import UnavailableError
from service.executions.models import WorkflowCreate
from service.executions.starter import create_workflow
from service.stack import free_port
from service.state import Resources
from service.store.idempotency import IdempotencyKey

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

RULES = "/v1/automation/rules"


def webhook_rule(name: str) -> dict[str, Any]:
    """A webhook rule (its creation answers with the signing secret)."""
    return {
        "name": name,
        "trigger": "webhook",
        "action": {"type": "send_notification", "recipient": "ops", "message": "hook fired"},
    }


@pytest.fixture
async def reject_inserts(app_state: Resources) -> AsyncIterator[None]:
    """Until the test drops them, the store refuses rules named and tickets titled 'rejected'."""
    names = ("reject_rule", "reject_ticket")
    async with app_state.engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE TRIGGER reject_rule BEFORE INSERT ON automation_rules "
                "WHEN NEW.name = 'rejected' BEGIN SELECT RAISE(ABORT, 'rule rejected'); END"
            )
        )
        await conn.execute(
            text(
                "CREATE TRIGGER reject_ticket BEFORE INSERT ON tickets "
                "WHEN NEW.title = 'rejected' BEGIN SELECT RAISE(ABORT, 'ticket rejected'); END"
            )
        )
    yield
    async with app_state.engine.begin() as conn:
        for name in names:
            await conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))


async def drop_trigger(app_state: Resources, name: str) -> None:
    """Let the store accept what ``name`` refused."""
    async with app_state.engine.begin() as conn:
        await conn.execute(text(f"DROP TRIGGER {name}"))


async def stored_keys(app_state: Resources, key: str) -> list[IdempotencyKey]:
    """The claims of ``key``, whatever their scope."""
    async with app_state.sessionmaker() as session:
        rows = await session.execute(select(IdempotencyKey).where(IdempotencyKey.key == key))
        return list(rows.scalars())


async def test_another_token_replaying_a_rule_key_gets_its_own_rule(
    api: httpx.AsyncClient, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    key = f"hook-{uuid.uuid4().hex}"
    body = webhook_rule("Deploy hook")
    mine = await api.post(RULES, headers={**write_headers, "Idempotency-Key": key}, json=body)
    assert mine.status_code == 201, mine.text
    again = await api.post(RULES, headers={**write_headers, "Idempotency-Key": key}, json=body)
    assert (again.json()["id"], again.json()["secret"]) == (
        mine.json()["id"],
        mine.json()["secret"],
    )

    theirs = await api.post(RULES, headers={**admin_headers, "Idempotency-Key": key}, json=body)
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["secret"] not in (None, mine.json()["secret"])
    for rule in (mine, theirs):
        await api.delete(f"{RULES}/{rule.json()['id']}", headers=admin_headers)


async def test_another_token_replaying_a_ticket_key_gets_its_own_ticket(
    api: httpx.AsyncClient, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    key = f"ticket-{uuid.uuid4().hex}"
    body = {"title": "Badge reader broken"}
    mine = await api.post(
        "/v1/tickets", headers={**write_headers, "Idempotency-Key": key}, json=body
    )
    again = await api.post(
        "/v1/tickets", headers={**write_headers, "Idempotency-Key": key}, json=body
    )
    theirs = await api.post(
        "/v1/tickets", headers={**admin_headers, "Idempotency-Key": key}, json=body
    )
    assert (mine.status_code, again.status_code, theirs.status_code) == (201, 201, 201)
    assert again.json()["id"] == mine.json()["id"]
    assert theirs.json()["id"] != mine.json()["id"]


async def test_concurrent_ticket_creates_with_one_key_make_one_ticket(
    api: httpx.AsyncClient, write_headers: dict[str, str]
) -> None:
    headers = {**write_headers, "Idempotency-Key": f"ticket-{uuid.uuid4().hex}"}
    answers = await asyncio.gather(
        *(api.post("/v1/tickets", headers=headers, json={"title": "Monitor"}) for _ in range(8))
    )
    assert [r.status_code for r in answers] == [201] * 8
    assert len({r.json()["id"] for r in answers}) == 1


async def test_a_failed_rule_create_leaves_its_key_free(
    api: httpx.AsyncClient,
    app_state: Resources,
    reject_inserts: None,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    headers = {**write_headers, "Idempotency-Key": f"rule-{uuid.uuid4().hex}"}
    failed = await api.post(RULES, headers=headers, json=webhook_rule("rejected"))
    assert failed.status_code == 500
    assert await stored_keys(app_state, headers["Idempotency-Key"]) == []

    await drop_trigger(app_state, "reject_rule")
    retried = await api.post(RULES, headers=headers, json=webhook_rule("rejected"))
    assert retried.status_code == 201, retried.text
    assert retried.json()["secret"]
    got = await api.get(f"{RULES}/{retried.json()['id']}", headers=write_headers)
    assert got.status_code == 200
    await api.delete(f"{RULES}/{retried.json()['id']}", headers=admin_headers)


async def test_a_failed_ticket_create_leaves_its_key_free(
    api: httpx.AsyncClient,
    app_state: Resources,
    reject_inserts: None,
    write_headers: dict[str, str],
) -> None:
    headers = {**write_headers, "Idempotency-Key": f"ticket-{uuid.uuid4().hex}"}
    failed = await api.post("/v1/tickets", headers=headers, json={"title": "rejected"})
    assert failed.status_code == 500
    assert await stored_keys(app_state, headers["Idempotency-Key"]) == []

    await drop_trigger(app_state, "reject_ticket")
    retried = await api.post("/v1/tickets", headers=headers, json={"title": "rejected"})
    assert retried.status_code == 201, retried.text
    again = await api.post("/v1/tickets", headers=headers, json={"title": "rejected"})
    assert again.json()["id"] == retried.json()["id"]


async def test_a_failed_workflow_start_is_completed_by_the_retry(
    api: httpx.AsyncClient, worker: None, app_state: Resources, write_headers: dict[str, str]
) -> None:
    request = WorkflowCreate(name="Password Reset", task_queue=TaskQueue.WORKFLOWS)
    key = f"wf-{uuid.uuid4().hex}"
    unreachable = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)
    down = dataclasses.replace(app_state, temporal=unreachable)
    async with app_state.sessionmaker() as session:
        with pytest.raises(UnavailableError):
            await create_workflow(down, session=session, request=request, idempotency_key=key)

    async with app_state.sessionmaker() as session:
        started = await create_workflow(
            app_state, session=session, request=request, idempotency_key=key
        )
    async with app_state.sessionmaker() as session:
        again = await create_workflow(
            app_state, session=session, request=request, idempotency_key=key
        )
    assert again["id"] == started["id"]
    status = await api.get(f"/v1/workflows/{started['id']}/status", headers=write_headers)
    assert status.status_code == 200
    await api.post(f"/v1/workflows/{started['id']}/cancel", headers=write_headers)


async def test_an_expired_key_is_new_and_pruned_by_maintenance(
    api: httpx.AsyncClient,
    worker: None,
    app_state: Resources,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    key = f"hook-{uuid.uuid4().hex}"
    headers = {**write_headers, "Idempotency-Key": key}
    first = await api.post(RULES, headers=headers, json=webhook_rule("Nightly hook"))
    assert first.status_code == 201
    expired_at = time.time() - app_state.settings.idempotency_ttl_s - 60
    async with app_state.sessionmaker() as session:
        await session.execute(
            update(IdempotencyKey).where(IdempotencyKey.key == key).values(created_at=expired_at)
        )
        await session.commit()

    second = await api.post(RULES, headers=headers, json=webhook_rule("Nightly hook"))
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
    [claim] = await stored_keys(app_state, key)
    assert claim.resource_id == second.json()["id"]

    async with app_state.sessionmaker() as session:
        await session.execute(
            update(IdempotencyKey).where(IdempotencyKey.key == key).values(created_at=expired_at)
        )
        await session.commit()
    await app_state.jobs.enqueue(
        JobQueue.MAINTENANCE, "prune", {}, job_id=f"maintenance-{uuid.uuid4().hex}"
    )

    async def pruned() -> bool:
        return await stored_keys(app_state, key) == []

    await eventually(pruned, within_s=30)
    for rule in (first, second):
        await api.delete(f"{RULES}/{rule.json()['id']}", headers=admin_headers)
