"""Both clients against the real service app (store, rules, tickets, jobs).

The FastAPI app runs with its lifespan on the session's Temporal dev server and Redis and its
own SQLite store, reached in-process through ``httpx.ASGITransport`` by AsyncClient and over
real HTTP (uvicorn on a loopback port, in a thread) by Client. Its background jobs (audit, AI
suggestion, SLA timer per ticket, with ids derived from ticket ids) go to a Redis of this
module's own, so they never meet the jobs of the service's tests, whose tickets have the same
ids in another store. Rules stay disabled while tickets are created, and the only workflows
started here are drafts scheduled an hour ahead, terminated at the end of their test, so
nothing runs on the task queues shared with the service's own tests.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from live_server import serving
from temporalio.client import Client as TemporalClient
from waiting import eventually, eventually_sync

from protocol_lab._client.models import MODELS, PAGES, PageData
from protocol_lab.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    QueueList,
    Rule,
    SecretRotated,
    SendNotificationAction,
    SignalResult,
    StartWorkflowAction,
    Ticket,
    Workflow,
    WorkflowDefinition,
    WorkflowState,
    WorkflowStatus,
)
from service.app import create_app
from service.settings import Settings
from service.stack import EmbeddedRedis, EmbeddedTemporal

from .openapi_shapes import differences

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

READ_TOKEN = "client-read-token"
WRITE_TOKEN = "client-write-token"
ADMIN_TOKEN = "client-admin-token"
P1_ACTION = {
    "type": "start_workflow",
    "workflow_name": "P1 Incident Response",
    "task_queue": "itsm-high-priority",
}


def _settings(temporal_server: EmbeddedTemporal, redis: EmbeddedRedis, state: Path) -> Settings:
    return Settings(
        temporal_address=temporal_server.address,
        temporal_namespace=temporal_server.namespace,
        redis_url=redis.url,
        database_url=f"sqlite+aiosqlite:///{state / 'service.db'}",
        state_dir=state,
        api_tokens={READ_TOKEN: ["read"], WRITE_TOKEN: ["write"], ADMIN_TOKEN: ["admin"]},
    )


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A redis-server for this module alone."""
    server = EmbeddedRedis(state_dir=tmp_path_factory.mktemp("client-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def live_app(
    temporal_server: EmbeddedTemporal,
    private_redis: EmbeddedRedis,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[FastAPI]:
    """The service app with its lifespan entered, on a store of its own."""
    state = tmp_path_factory.mktemp("client-live")
    app = create_app(_settings(temporal_server, private_redis, state))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
def live_url(
    temporal_server: EmbeddedTemporal,
    private_redis: EmbeddedRedis,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The service served by uvicorn on a loopback port (in a thread), on a store of its own."""
    state = tmp_path_factory.mktemp("client-live-http")
    app = create_app(_settings(temporal_server, private_redis, state))
    with serving(app, name="client-live-uvicorn", lifespan="on") as url:
        yield url


def _client(app: FastAPI, token: str | None) -> AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return AsyncClient(base_url="http://testserver", token=token, transport=transport)


async def test_tickets_round_trip_with_idempotency_and_both_directions(live_app: FastAPI) -> None:
    async with _client(live_app, WRITE_TOKEN) as api:
        first = await api.create_ticket(
            title="VPN broken", category="network", priority="P2", idempotency_key="client-live-1"
        )
        again = await api.create_ticket(
            title="VPN broken", category="network", priority="P2", idempotency_key="client-live-1"
        )
        assert again.id == first.id
        others = [
            await api.create_ticket(title=f"Laptop {n}", category="hardware", priority="P3")
            for n in range(4)
        ]
        created = [first.id, *(t.id for t in others)]

        listed = [t.id async for t in api.aiter_tickets(page_size=2)]
        assert sorted(listed) == sorted(created)  # the replay made no second ticket
        assert listed == sorted(created, key=lambda i: int(i[4:]), reverse=True)  # newest first
        page = await api.list_tickets(limit=2)
        assert page.has_more is True
        assert [t.id for t in page.data] == listed[:2]
        backwards = [
            t["id"]
            async for t in api.apaginate("/v1/tickets", page_size=2, ending_before=listed[-1])
        ]
        assert backwards == listed[-2::-1]  # walking away from the cursor, nearest first

        hardware = [t.id async for t in api.aiter_tickets(category="hardware", priority="P3")]
        assert sorted(hardware) == sorted(t.id for t in others)

        updated = await api.update_ticket(first.id, status="in_progress", assignee="bob")
        assert (updated.status, updated.assignee) == ("in_progress", "bob")
        cleared = await api.update_ticket(first.id, assignee=None)
        assert cleared.assignee is None
        assert (await api.get_ticket(first.id)).status == "in_progress"
        with pytest.raises(NotFoundError) as info:
            await api.get_ticket("TKT-999999")
        assert info.value.type == "not_found"
        with pytest.raises(InvalidRequestError) as bad:
            await api.create_ticket(title="x", priority="P9")
        assert bad.value.status_code == 400
        assert "priority" in bad.value.message


async def test_rules_toggle_dry_run_and_executions(live_app: FastAPI) -> None:
    async with _client(live_app, WRITE_TOKEN) as api:
        rule = await api.create_rule(
            name="Auto-assign P1 tickets to on-call",
            trigger="on_ticket_created",
            conditions={"priority": "P1", "category": "incident"},
            action=P1_ACTION,
            enabled=False,
        )
        rule_id = rule.id
        assert rule.id.startswith("rule_")
        assert rule.enabled is False
        assert rule_id in [r.id async for r in api.aiter_rules(enabled=False)]
        assert rule_id not in [r.id async for r in api.aiter_rules(enabled=True)]

        dry = await api.test_rule(rule_id, ticket={"priority": "P1", "category": "incident"})
        assert dry.matched is True
        assert dry.would_fire is False  # disabled
        assert (await api.toggle_rule(rule_id)).enabled is True
        assert (await api.toggle_rule(rule_id)).enabled is False

        renamed = await api.update_rule(rule_id, name="P1 to on-call")
        assert renamed.name == "P1 to on-call"
        assert renamed.conditions == {"priority": "P1", "category": "incident"}
        executions = await api.list_rule_executions(rule_id)
        assert (executions.has_more, executions.data) == (False, [])
        assert [e async for e in api.aiter_rule_executions(rule_id)] == []

        with pytest.raises(PermissionDeniedError, match="admin"):
            await api.delete_rule(rule_id)  # deleting takes the admin scope
        async with _client(live_app, ADMIN_TOKEN) as admin:
            deleted = await admin.delete_rule(rule_id)
            assert deleted is not None
            assert deleted.raw == {"id": rule_id, "deleted": True}
        with pytest.raises(NotFoundError):
            await api.get_rule(rule_id)
        with pytest.raises(InvalidRequestError, match="trigger"):
            await api.create_rule(name="bad", trigger="on_full_moon", action=P1_ACTION)


async def test_scopes_and_tokens_map_to_errors(live_app: FastAPI) -> None:
    async with _client(live_app, READ_TOKEN) as reader:
        assert isinstance(await reader.get_job_queues(), QueueList)
        page = await reader.list_rules(limit=1)
        assert set(page.raw) >= {"has_more", "data"}
        with pytest.raises(PermissionDeniedError) as info:
            await reader.create_ticket(title="read-only")
        assert (info.value.status_code, info.value.type) == (403, "permission_error")
    async with _client(live_app, None) as anonymous:
        with pytest.raises(AuthenticationError) as auth:
            await anonymous.list_tickets()
        assert (auth.value.status_code, auth.value.type) == (401, "authentication_error")
    async with _client(live_app, "not-a-token") as stranger:
        with pytest.raises(AuthenticationError):
            await stranger.get_job_queues()


def test_sync_client_over_real_http(live_url: str) -> None:
    with Client(base_url=live_url, token=WRITE_TOKEN) as api:
        created = [
            api.create_ticket(
                title=f"Printer {n}", category="hardware", idempotency_key=f"http-{n}"
            )
            for n in range(3)
        ]
        again = api.create_ticket(title="Printer 0", category="hardware", idempotency_key="http-0")
        assert again.raw == created[0].raw
        listed = [t.id for t in api.iter_tickets(category="hardware", page_size=1)]
        assert listed == [t.id for t in reversed(created)]
        backwards = [
            t["id"] for t in api.paginate("/v1/tickets", page_size=1, ending_before=listed[-1])
        ]
        assert backwards == listed[-2::-1]
        rule = api.create_rule(
            name="P1 to on-call", trigger="on_ticket_created", action=P1_ACTION, enabled=False
        )
        assert api.get_rule(rule.id).enabled is False
        assert api.update_ticket(created[1].id, priority="P1").priority == "P1"
        assert [t.id for t in api.iter_tickets(priority="P1")] == [created[1].id]
        with pytest.raises(NotFoundError):
            api.get_ticket("TKT-424242")


# -- workflows by ticket, with sub-second timestamps ------------------------------------------


def _new_ticket() -> str:
    # The Temporal server is the whole session's: a ticket no other test uses.
    return f"TKT-{secrets.randbelow(10**11) + 10**11}"


def _draft(ticket: str) -> dict[str, Any]:
    """A workflow scheduled an hour ahead: listed, readable, and nothing of it runs."""
    return {
        "name": "SLA Escalation",
        "task_queue": "itsm-high-priority",
        "trigger_type": "scheduled",
        "input": {"ticket_id": ticket},
        "start_at": time.time() + 3600,
    }


async def _terminate(temporal: TemporalClient, ids: list[str]) -> None:
    for workflow_id in ids:
        await temporal.get_workflow_handle(workflow_id).terminate("client test over")


def _floors(precise: Any, whole: Any) -> None:
    assert type(precise) is float
    assert type(whole) is int
    assert math.floor(precise) == whole


async def test_async_client_lists_by_ticket_with_precise_timestamps(
    live_app: FastAPI, temporal_client: TemporalClient
) -> None:
    one, two = _new_ticket(), _new_ticket()
    started: list[str] = []
    try:
        async with _client(live_app, WRITE_TOKEN) as api:
            mine = [(await api.create_workflow(**_draft(one))).id for _ in range(3)]
            theirs = [(await api.create_workflow(**_draft(two))).id for _ in range(2)]
            started += mine + theirs

            async def lists(ticket: str, expected: list[str]) -> bool:
                found = [w.id async for w in api.aiter_workflows(ticket_id=ticket, page_size=2)]
                return found == expected

            await eventually(lambda: lists(one, mine[::-1]), within_s=20, every_s=0.2)
            await eventually(lambda: lists(two, theirs[::-1]), within_s=20, every_s=0.2)
            page = await api.list_workflows(ticket_id=one, limit=2, status="draft")
            assert ([w.id for w in page.data], page.has_more) == (mine[:0:-1], True)

            precise = await api.list_workflows(ticket_id=two, precise_timestamps=True)
            whole = await api.list_workflows(ticket_id=two)
            assert [w.id for w in precise.data] == theirs[::-1]
            for p, w in zip(precise.data, whole.data, strict=True):
                _floors(p.started_at, w.started_at)
            assert [
                w.id async for w in api.aiter_workflows(ticket_id=two, precise_timestamps=True)
            ] == theirs[::-1]
            got = await api.get_workflow(mine[0], precise_timestamps=True)
            _floors(got.started_at, (await api.get_workflow(mine[0])).started_at)
            assert got.started_at != math.floor(got.started_at)  # start_at had a fraction
            status = await api.get_workflow_status(mine[0], precise_timestamps=True)
            assert status.started_at == got.started_at
            _floors(status.started_at, (await api.get_workflow_status(mine[0])).started_at)

            with pytest.raises(InvalidRequestError) as bad:
                await api.list_workflows(ticket_id="TKT-12x")
            assert "ticket_id" in bad.value.message
    finally:
        await _terminate(temporal_client, started)


async def test_sync_client_lists_by_ticket_with_precise_timestamps_over_http(
    live_url: str, temporal_client: TemporalClient
) -> None:
    ticket, other = _new_ticket(), _new_ticket()
    started: list[str] = []

    def drive() -> None:
        with Client(base_url=live_url, token=WRITE_TOKEN) as api:
            mine = [api.create_workflow(**_draft(ticket)).id for _ in range(2)]
            started.extend(mine)
            started.append(api.create_workflow(**_draft(other)).id)
            eventually_sync(
                lambda: (
                    [w.id for w in api.iter_workflows(ticket_id=ticket, page_size=1)] == mine[::-1]
                ),
                within_s=20,
                every_s=0.2,
            )
            precise = api.list_workflows(ticket_id=ticket, precise_timestamps=True)
            whole = api.list_workflows(ticket_id=ticket)
            assert [w.id for w in precise.data] == mine[::-1]
            for p, w in zip(precise.data, whole.data, strict=True):
                _floors(p.started_at, w.started_at)
            got = api.get_workflow(mine[0], precise_timestamps=True)
            _floors(got.started_at, api.get_workflow(mine[0]).started_at)
            status = api.get_workflow_status(mine[0], precise_timestamps=True)
            _floors(status.started_at, api.get_workflow_status(mine[0]).started_at)
            with pytest.raises(InvalidRequestError):
                api.list_workflows(ticket_id="TKT-")

    try:
        await asyncio.to_thread(drive)
    finally:
        await _terminate(temporal_client, started)


# -- the typed answers against the served contract -------------------------------------------


def test_the_models_agree_with_the_served_openapi_document(live_url: str) -> None:
    with Client(base_url=live_url, token=READ_TOKEN) as api:
        spec = api.request("GET", "/openapi.json")
    schemas = spec["components"]["schemas"]
    problems = [
        line
        for model in MODELS
        for line in (
            differences(model, schemas[model.openapi_schema], schemas)
            if model.openapi_schema in schemas
            else [f"{model.__name__}: the service serves no schema {model.openapi_schema!r}"]
        )
    ]
    for page_schema, item in PAGES.items():
        if page_schema not in schemas:
            problems.append(f"the service serves no schema {page_schema!r}")
            continue
        problems += differences(PageData[item], schemas[page_schema], schemas)  # type: ignore[valid-type]
    assert problems == []
    assert len(MODELS) >= 17  # every typed answer is compared


async def test_typed_answers_for_definitions_drafts_signals_and_rules(
    live_app: FastAPI, temporal_client: TemporalClient
) -> None:
    name = f"Client typed check {secrets.token_hex(4)}"
    ticket = _new_ticket()
    steps = [
        {
            "kind": "signal",
            "id": "owner_ok",
            "signal": "owner_approved",
            "detail": "Awaiting the owner",
            "done": "Owner approved",
            "timeout_s": 3600,
        }
    ]
    started: list[str] = []
    try:
        async with _client(live_app, ADMIN_TOKEN) as admin:
            made = await admin.create_workflow_definition(
                name=name, task_queue="itsm-workflows", steps=steps, category="access"
            )
            assert isinstance(made, WorkflowDefinition)
            assert (made.version, made.builtin, made.signals) == (1, False, ["owner_approved"])
            assert made.steps[0].kind == "signal"
            listed = await admin.list_workflow_definitions()
            assert name in [d.name for d in listed.data]
            again = await admin.update_workflow_definition(
                name, task_queue="itsm-workflows", steps=steps, category="access"
            )
            assert again.version == 1  # the same body stores nothing
            assert (await admin.get_workflow_definition(name, version=1)).raw == made.raw

        async with _client(live_app, WRITE_TOKEN) as api:
            draft = await api.create_workflow(
                name=name,
                task_queue="itsm-workflows",
                trigger_type="scheduled",
                input={"ticket_id": ticket},
            )
            started.append(draft.id)
            assert isinstance(draft, Workflow)
            assert (draft.status, draft.ticket_id) == (WorkflowState.DRAFT, ticket)
            running = await api.start_workflow(draft.id)
            assert running.status is WorkflowState.ACTIVE
            with pytest.raises(ConflictError):
                await api.start_workflow(draft.id)  # a draft starts once
            status = await api.get_workflow_status(draft.id)
            assert isinstance(status, WorkflowStatus)
            assert status.steps_total == 1
            refused = await api.signal_workflow(draft.id, signal_name="no_such_signal")
            assert isinstance(refused, SignalResult)
            assert refused.accepted is False
            assert refused.reason
            assert refused.raw["accepted"] is False
            by_name = [w.id async for w in api.aiter_workflows(name=name)]
            assert by_name == [draft.id]

            rule = await api.create_rule(
                name=f"{name} rule",
                trigger="on_ticket_created",
                conditions={"any": [{"priority": "P1"}, {"category": "access"}]},
                actions=[
                    {
                        "type": "start_workflow",
                        "workflow_name": name,
                        "task_queue": "itsm-workflows",
                    },
                    {
                        "type": "send_notification",
                        "recipient": "owner",
                        "message": "{{ticket.title}} needs you",
                    },
                ],
                enabled=False,
            )
            assert isinstance(rule, Rule)
            first, second = rule.actions or []
            assert isinstance(first, StartWorkflowAction)
            assert isinstance(second, SendNotificationAction)
            assert first.trigger_type == "automatic"  # the model's default ...
            assert "trigger_type" not in rule.raw["actions"][0]  # ... the answer as written
            assert rule.action is None
            assert "action" not in rule.raw
            mine = [r.id async for r in api.aiter_rules(workflow_name=name)]
            assert mine == [rule.id]
            page = await api.list_rules(action_type="send_notification", limit=100)
            assert rule.id in [r.id for r in page.data]
            with pytest.warns(DeprecationWarning, match=r"\.raw\['id'\]"):
                assert rule["id"] == rule.id  # the dict-style read of before, deprecated

            hook = await api.create_rule(
                name=f"{name} hook", trigger="webhook", action=P1_ACTION, enabled=False
            )
            assert hook.secret  # shown once, when created ...
            read = await api.get_rule(hook.id)
            assert (read.secret, "secret" in read.raw) == (None, False)  # ... never after
            rotated = await api.rotate_rule_secret(hook.id)
            assert isinstance(rotated, SecretRotated)
            assert (rotated.id, rotated.secret != hook.secret) == (hook.id, True)
    finally:
        await _terminate(temporal_client, started)


async def test_pages_iterate_across_pages_forwards_and_backwards(live_app: FastAPI) -> None:
    requester = f"pages-{secrets.token_hex(4)}"
    async with _client(live_app, WRITE_TOKEN) as api:
        made = [
            (await api.create_ticket(title=f"Page {n}", requester=requester)).id for n in range(5)
        ]
        newest_first = made[::-1]
        page = await api.list_tickets(requester=requester, limit=2)
        assert isinstance(page.data[0], Ticket)
        assert ([t.id for t in page.data], page.has_more) == (newest_first[:2], True)
        assert [t.id async for t in page] == newest_first  # on across the next pages
        second = await page.next_page()
        assert second is not None
        assert [t.id for t in second.data] == newest_first[2:4]
        last = await second.next_page()
        assert last is not None
        assert (last.has_more, await last.next_page()) == (False, None)
        back = await api.list_tickets(requester=requester, limit=2, ending_before=newest_first[4])
        assert [t.id async for t in back] == newest_first[3::-1]  # nearest first
