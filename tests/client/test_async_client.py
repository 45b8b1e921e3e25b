"""AsyncClient against the fake API; the twin of tests/client/test_client.py."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest

from protocol_lab.client import (
    ApiDecodeError,
    ApiRequestError,
    ApiServerError,
    ApiStatusError,
    ApiTimeoutError,
    AsyncClient,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
)
from protocol_lab.domain import ProtocolLabError

from .fake_api import READ_ONLY_TOKEN, FakeApi, Fault


def record_in(sleeps: list[float]) -> Callable[[float], Awaitable[None]]:
    """An async sleep that only records the pause asked for."""

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return sleep


# -- requests and auth ---------------------------------------------------------------------


async def test_requests_carry_bearer_token_and_json_accept(
    aclient: AsyncClient, fake: FakeApi
) -> None:
    await aclient.get_job_queues()
    (seen,) = fake.seen
    assert seen.headers["Authorization"] == "Bearer tok_write"
    assert seen.headers["Accept"] == "application/json"
    assert seen.path == "/v1/jobs/queues"
    assert "Idempotency-Key" not in seen.headers


async def test_base_url_path_prefix_is_kept(fake: FakeApi) -> None:
    async with AsyncClient(
        base_url="http://api.test/gateway/", token="tok_write", transport=fake.transport
    ) as api:
        with pytest.raises(NotFoundError):
            await api.get_workflow("wf_1")
    assert fake.seen[0].path == "/gateway/v1/workflows/wf_1"


async def test_missing_token_is_an_authentication_error(fake: FakeApi) -> None:
    async with AsyncClient(base_url="http://api.test", transport=fake.transport) as api:
        with pytest.raises(AuthenticationError) as info:
            await api.list_workflows()
    err = info.value
    assert err.status_code == 401
    assert err.type == "authentication_error"
    assert err.message == "missing or invalid bearer token"
    assert err.request.url.path == "/v1/workflows"
    assert err.response.status_code == 401
    assert "Authorization" not in fake.seen[0].headers
    assert isinstance(err, ApiStatusError)
    assert isinstance(err, ProtocolLabError)


async def test_read_only_token_cannot_write(fake: FakeApi) -> None:
    async with AsyncClient(
        base_url="http://api.test", token=READ_ONLY_TOKEN, transport=fake.transport
    ) as api:
        page = await api.list_rules()
        assert (page.has_more, page.data) == (False, [])
        with pytest.raises(PermissionDeniedError) as info:
            await api.create_ticket(title="Printer on fire")
    assert info.value.status_code == 403
    assert info.value.type == "permission_error"


# -- workflows -----------------------------------------------------------------------------


async def test_workflow_lifecycle(aclient: AsyncClient, fake: FakeApi) -> None:
    wf = await aclient.create_workflow(
        name="VPN Access Revocation",
        task_queue="itsm-network",
        trigger_type="manual",
        input={"ticket_id": "TKT-5102", "user_id": "usr_9xKmPq"},
    )
    assert wf.status == "active"
    (post,) = fake.requests_to("POST", "/v1/workflows")
    assert post.body == {
        "name": "VPN Access Revocation",
        "task_queue": "itsm-network",
        "trigger_type": "manual",
        "input": {"ticket_id": "TKT-5102", "user_id": "usr_9xKmPq"},
    }
    uuid.UUID(post.headers["Idempotency-Key"])

    wf_id = wf.id
    assert (await aclient.get_workflow(wf_id)).name == "VPN Access Revocation"
    assert (await aclient.get_workflow_status(wf_id)).status == "active"
    signal = await aclient.signal_workflow(
        wf_id, signal_name="approval_received", payload={"decision": "approved"}
    )
    assert signal.accepted is True
    assert (signal.signal_name, signal.reason) == ("approval_received", None)
    paused = await aclient.pause_workflow(wf_id, reason="Waiting for stock")
    assert paused.status == "paused"
    assert fake.workflows[wf_id]["timeline"][-1]["detail"] == "Waiting for stock"
    assert fake.seen[-1].body == {"reason": "Waiting for stock"}
    with pytest.raises(ConflictError) as info:
        await aclient.pause_workflow(wf_id)
    assert info.value.status_code == 409
    assert info.value.type == "conflict"
    assert (await aclient.resume_workflow(wf_id)).status == "active"
    assert fake.seen[-1].body == {}
    cancelled = await aclient.cancel_workflow(wf_id, reason="Duplicate request")
    assert cancelled.status == "failed"
    assert cancelled.timeline[0].detail == "Duplicate request"
    keys = [s.headers["Idempotency-Key"] for s in fake.seen if s.method == "POST"]
    assert len(keys) == len(set(keys)) == 6


async def test_scheduled_workflow_start_at_is_sent_as_unix_seconds(
    aclient: AsyncClient, fake: FakeApi
) -> None:
    when = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    wf = await aclient.create_workflow(
        name="SLA Escalation",
        task_queue="itsm-high-priority",
        trigger_type="scheduled",
        start_at=when,
    )
    assert wf.status == "draft"
    assert fake.seen[0].body["start_at"] == int(when.timestamp())
    await aclient.create_workflow(
        name="SLA Escalation", task_queue="itsm-workflows", start_at=1708732800.5, time_scale=60.0
    )
    assert fake.seen[1].body == {
        "name": "SLA Escalation",
        "task_queue": "itsm-workflows",
        "start_at": 1708732800.5,
        "time_scale": 60.0,
    }
    with pytest.raises(ValueError, match="timezone-aware"):
        await aclient.create_workflow(name="x", task_queue="y", start_at=datetime(2026, 12, 1))


async def test_unknown_workflow_is_not_found_and_ids_are_quoted(
    aclient: AsyncClient, fake: FakeApi
) -> None:
    with pytest.raises(NotFoundError) as info:
        await aclient.get_workflow("wf/../rules")
    assert info.value.type == "not_found"
    assert fake.seen[0].path == "/v1/workflows/wf%2F..%2Frules"
    with pytest.raises(ValueError, match="non-empty"):
        await aclient.get_workflow("")


# -- pagination ----------------------------------------------------------------------------


async def test_iter_workflows_follows_cursors_forwards(aclient: AsyncClient, fake: FakeApi) -> None:
    ids = fake.seed_workflows(25)
    assert [w.id async for w in aclient.aiter_workflows(page_size=10)] == ids
    pages = fake.requests_to("GET", "/v1/workflows")
    assert [p.params for p in pages] == [
        {"limit": "10"},
        {"limit": "10", "starting_after": ids[9]},
        {"limit": "10", "starting_after": ids[19]},
    ]


async def test_iter_workflows_filters_and_default_page_size(
    aclient: AsyncClient, fake: FakeApi
) -> None:
    fake.seed_workflows(12, task_queue="itsm-fleet")
    fake.seed_workflows(3, task_queue="itsm-network")
    found = [
        item async for item in aclient.aiter_workflows(status="completed", task_queue="itsm-fleet")
    ]
    assert [w.status for w in found] == ["completed"] * 4
    assert {w.task_queue for w in found} == {"itsm-fleet"}
    (page,) = fake.requests_to("GET", "/v1/workflows")
    assert page.params == {"status": "completed", "task_queue": "itsm-fleet", "limit": "100"}


async def test_ticket_filter_and_precise_timestamps_are_sent(
    aclient: AsyncClient, fake: FakeApi
) -> None:
    ids = fake.seed_workflows(3)
    await aclient.list_workflows(
        ticket_id="TKT-12", status="active", limit=2, precise_timestamps=True
    )
    found = [
        w
        async for w in aclient.aiter_workflows(
            ticket_id="TKT-12", page_size=2, precise_timestamps=True
        )
    ]
    assert [w.id for w in found] == ids
    await aclient.list_workflows(ticket_id="TKT-12")
    await aclient.get_workflow(ids[0], precise_timestamps=True)
    await aclient.get_workflow_status(ids[0], precise_timestamps=True)
    await aclient.get_workflow(ids[0])
    await aclient.get_workflow_status(ids[0])
    precise = {"ticket_id": "TKT-12", "timestamps": "float"}
    assert [p.params for p in fake.seen] == [
        precise | {"status": "active", "limit": "2"},
        precise | {"limit": "2"},
        precise | {"limit": "2", "starting_after": ids[1]},
        {"ticket_id": "TKT-12"},
        {"timestamps": "float"},
        {"timestamps": "float"},
        {},
        {},
    ]


async def test_iterators_are_lazy_and_check_page_size_at_once(
    aclient: AsyncClient, fake: FakeApi
) -> None:
    fake.seed_workflows(5)
    iterator = aclient.aiter_workflows(page_size=2)
    assert fake.seen == []
    assert (await anext(iterator)).id == "wf_0001"
    assert len(fake.seen) == 1
    with pytest.raises(ValueError, match="page_size"):
        aclient.aiter_workflows(page_size=101)
    with pytest.raises(ValueError, match="page_size"):
        aclient.aiter_tickets(page_size=0)


async def test_pagination_backwards_walks_away_from_the_cursor(
    aclient: AsyncClient, fake: FakeApi
) -> None:
    ids = fake.seed_workflows(7)
    page = await aclient.list_workflows(limit=2, ending_before=ids[5])
    assert page.raw == {"has_more": True, "data": [fake.workflows[ids[3]], fake.workflows[ids[4]]]}
    assert [w.id for w in page.data] == [ids[3], ids[4]]
    back = [
        w["id"] async for w in aclient.apaginate("/v1/workflows", page_size=2, ending_before=ids[5])
    ]
    assert back == [ids[4], ids[3], ids[2], ids[1], ids[0]]
    forward = [
        w["id"]
        async for w in aclient.apaginate("/v1/workflows", page_size=3, starting_after=ids[1])
    ]
    assert forward == ids[2:]


async def test_list_page_and_limit_checks(aclient: AsyncClient, fake: FakeApi) -> None:
    ids = fake.seed_workflows(12)
    page = await aclient.list_workflows()
    assert page.has_more is True
    assert [w.id for w in page.data] == ids[:10]
    page = await aclient.list_workflows(limit=5, starting_after=ids[9])
    assert page.has_more is False
    assert [w.id for w in page.data] == ids[10:]
    with pytest.raises(ValueError, match="limit"):
        await aclient.list_workflows(limit=500)
    with pytest.raises(ValueError, match="not both"):
        await aclient.list_workflows(starting_after=ids[0], ending_before=ids[2])
    with pytest.raises(InvalidRequestError) as info:
        await aclient.list_workflows(starting_after="wf_missing")
    assert info.value.status_code == 400
    assert info.value.type == "invalid_request"


async def test_rules_crud_toggle_test_and_executions(aclient: AsyncClient, fake: FakeApi) -> None:
    action = {
        "type": "start_workflow",
        "workflow_name": "P1 Incident Response",
        "task_queue": "itsm-high-priority",
    }
    rule = await aclient.create_rule(
        name="Auto-assign P1 tickets to on-call",
        trigger="on_ticket_created",
        conditions={"priority": "P1", "category": "incident"},
        action=action,
    )
    rule_id = rule.id
    assert rule.enabled is True
    assert "enabled" not in fake.seen[0].body
    assert (await aclient.get_rule(rule_id)).raw["action"] == action
    assert (await aclient.toggle_rule(rule_id)).enabled is False
    assert [item async for item in aclient.aiter_rules(enabled=True)] == []
    assert [r.id async for r in aclient.aiter_rules(enabled=False)] == [rule_id]
    assert fake.seen[-1].params == {"enabled": "false", "limit": "100"}
    updated = await aclient.update_rule(rule_id, name="P1 to on-call", conditions=None)
    assert fake.seen[-1].body == {"name": "P1 to on-call", "conditions": None}
    assert updated.name == "P1 to on-call"
    await aclient.update_rule(rule_id, enabled=True, conditions={"priority": "P1"})
    assert fake.seen[-1].method == "PATCH"
    assert "Idempotency-Key" not in fake.seen[-1].headers

    ticket = await aclient.create_ticket(
        title="Core switch down", priority="P1", category="incident"
    )
    assert (await aclient.test_rule(rule_id, ticket_id=ticket.id)).would_fire is True
    assert (await aclient.test_rule(rule_id, ticket={"priority": "P4"})).would_fire is False
    dry = await aclient.test_rule(
        rule_id,
        ticket_id=ticket.id,
        ticket={"priority": "P3"},
        previous={"priority": "P2"},
    )
    assert dry.would_fire is False
    assert fake.seen[-1].body == {
        "ticket_id": ticket.id,
        "ticket": {"priority": "P3"},
        "previous": {"priority": "P2"},
    }

    fake.seed_executions(rule_id, 5)
    got = [e.id async for e in aclient.aiter_rule_executions(rule_id, page_size=2)]
    assert got == [f"exec_{n}" for n in range(5)]
    on_one = [e.id async for e in aclient.aiter_rule_executions(rule_id, ticket_id="TKT-1")]
    assert on_one == ["exec_1", "exec_3"]
    assert fake.seen[-1].params == {"ticket_id": "TKT-1", "limit": "100"}
    page = await aclient.list_rule_executions(rule_id, ticket_id="TKT-0", limit=2)
    assert [e.id for e in page.data] == ["exec_0", "exec_2"]
    assert page.has_more is True
    page = await aclient.list_rule_executions(rule_id, ticket_id="TKT-0", starting_after="exec_2")
    assert [e.id for e in page.data] == ["exec_4"]
    assert page.has_more is False

    deleted = await aclient.delete_rule(rule_id)
    assert deleted is not None
    assert deleted.raw == {"id": rule_id, "deleted": True}
    with pytest.raises(NotFoundError):
        await aclient.get_rule(rule_id)
    with pytest.raises(InvalidRequestError, match="unknown trigger"):
        await aclient.create_rule(name="bad", trigger="on_full_moon", action=action)


async def test_tickets_create_update_and_filtered_iteration(
    aclient: AsyncClient, fake: FakeApi
) -> None:
    for n in range(6):
        await aclient.create_ticket(
            title=f"Ticket {n}",
            priority="P1" if n % 2 else "P3",
            category="incident",
            assignee="usr_1" if n < 3 else None,
            requester="usr_9" if n == 4 else None,
        )
    assert "assignee" not in fake.seen[-1].body
    p1 = [
        item
        async for item in aclient.aiter_tickets(priority="P1", category="incident", page_size=1)
    ]
    assert [t.title for t in p1] == ["Ticket 1", "Ticket 3", "Ticket 5"]
    ticket_id = p1[0].id
    updated = await aclient.update_ticket(ticket_id, status="in_progress", assignee=None)
    assert fake.seen[-1].body == {"status": "in_progress", "assignee": None}
    assert updated.status == "in_progress"
    assert (await aclient.get_ticket(ticket_id)).assignee is None
    assert [t.id async for t in aclient.aiter_tickets(status="in_progress")] == [ticket_id]
    page = await aclient.list_tickets(assignee="usr_1", limit=1)
    assert page.has_more is True
    assert [t.title for t in page.data] == ["Ticket 0"]
    assert [t.title async for t in aclient.aiter_tickets(requester="usr_9")] == ["Ticket 4"]


async def test_job_queues(aclient: AsyncClient) -> None:
    queues = await aclient.get_job_queues()
    assert [q.name for q in queues.data] == ["email", "notification"]


async def test_generic_request_decodes_json_empty_and_refuses_non_json(
    aclient: AsyncClient,
) -> None:
    assert (await aclient.request("GET", "/v1/jobs/queues"))["data"][0]["name"] == "email"
    assert await aclient.request("GET", "/v1/test/empty") is None
    with pytest.raises(ApiDecodeError) as info:
        await aclient.request("GET", "/v1/test/text")
    assert info.value.response.status_code == 200


async def test_per_request_timeout_overrides_the_client_default(fake: FakeApi) -> None:
    timeout = httpx.Timeout(7.0)
    async with AsyncClient(
        base_url="http://api.test", token="tok_write", timeout=timeout, transport=fake.transport
    ) as api:
        assert api.build_request("GET", "/v1/workflows").extensions["timeout"]["read"] == 7.0
        req = api.build_request("GET", "/v1/workflows", timeout=1.5)
        assert req.extensions["timeout"] == {"connect": 1.5, "read": 1.5, "write": 1.5, "pool": 1.5}


# -- retries -------------------------------------------------------------------------------


async def test_post_retried_on_5xx_with_the_same_idempotency_key(
    aclient: AsyncClient, fake: FakeApi, sleeps: list[float]
) -> None:
    fake.inject(Fault("status", status=503), Fault("status", status=502))
    wf = await aclient.create_workflow(
        name="Laptop Provisioning - New Hire", task_queue="itsm-accessories"
    )
    posts = fake.requests_to("POST", "/v1/workflows")
    assert len(posts) == 3
    assert len({p.headers["Idempotency-Key"] for p in posts}) == 1
    assert list(fake.workflows) == [wf.id]
    assert sleeps == [0.5, 1.0]


async def test_lost_response_is_replayed_not_duplicated(
    aclient: AsyncClient, fake: FakeApi
) -> None:
    fake.inject(Fault("lost"), Fault("lost"))
    ticket = await aclient.create_ticket(title="VPN down", idempotency_key="key-123")
    posts = fake.requests_to("POST", "/v1/tickets")
    assert [p.headers["Idempotency-Key"] for p in posts] == ["key-123"] * 3
    assert list(fake.tickets) == [ticket.id]
    again = await aclient.create_ticket(title="VPN down", idempotency_key="key-123")
    assert again.raw == ticket.raw
    with pytest.raises(ConflictError, match="idempotency key"):
        await aclient.create_ticket(title="Other", idempotency_key="key-123")


async def test_retry_after_is_honoured(
    aclient: AsyncClient, fake: FakeApi, sleeps: list[float]
) -> None:
    fake.inject(Fault("status", status=429, type="rate_limited", retry_after="3"))
    assert (await aclient.list_rules()).data == []
    assert sleeps == [3.0]
    assert len(fake.seen) == 2


async def test_retry_after_beyond_the_cap_is_raised(
    aclient: AsyncClient, fake: FakeApi, sleeps: list[float]
) -> None:
    fake.inject(Fault("status", status=429, type="rate_limited", retry_after="3600"))
    with pytest.raises(RateLimitError) as info:
        await aclient.list_rules()
    assert info.value.status_code == 429
    assert info.value.response.headers["Retry-After"] == "3600"
    assert sleeps == []
    assert len(fake.seen) == 1


async def test_retries_run_out_with_capped_backoff(
    aclient: AsyncClient, fake: FakeApi, sleeps: list[float]
) -> None:
    fake.inject(*[Fault("status", status=500)] * 4)
    with pytest.raises(ApiServerError) as info:
        await aclient.get_job_queues()
    assert info.value.status_code == 500
    assert info.value.type == "api_error"
    assert len(fake.seen) == 4
    assert sleeps == [0.5, 1.0, 2.0]


async def test_connect_errors_are_retried_then_raised(
    aclient: AsyncClient, fake: FakeApi, sleeps: list[float]
) -> None:
    fake.inject(Fault("connect"))
    assert (await aclient.list_tickets()).data == []
    fake.inject(*[Fault("connect")] * 4)
    with pytest.raises(ApiRequestError) as info:
        await aclient.list_tickets()
    assert not isinstance(info.value, ApiTimeoutError)
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert info.value.request.url.path == "/v1/tickets"
    assert len(fake.seen) == 6


async def test_timeouts_on_reads_become_api_timeout_errors(
    fake: FakeApi, sleeps: list[float]
) -> None:
    fake.seed_workflows(1)
    fake.inject(Fault("lost"), Fault("lost"))
    async with AsyncClient(
        base_url="http://api.test",
        token="tok_write",
        transport=fake.transport,
        retry=RetryPolicy(max_retries=1, initial_delay=0.0),
        sleep=record_in(sleeps),
    ) as api:
        with pytest.raises(ApiTimeoutError):
            await api.get_workflow("wf_0001")
    assert len(fake.seen) == 2
    assert sleeps == []


async def test_patch_is_not_retried_on_5xx_but_is_on_connect_errors(
    aclient: AsyncClient, fake: FakeApi
) -> None:
    ticket = await aclient.create_ticket(title="Disk full")
    fake.inject(Fault("status", status=503))
    with pytest.raises(ApiServerError):
        await aclient.update_ticket(ticket.id, status="pending")
    assert len(fake.requests_to("PATCH", f"/v1/tickets/{ticket.id}")) == 1
    fake.inject(Fault("connect"))
    assert (await aclient.update_ticket(ticket.id, status="pending")).status == "pending"
    assert len(fake.requests_to("PATCH", f"/v1/tickets/{ticket.id}")) == 3


async def test_retries_can_be_disabled(fake: FakeApi) -> None:
    fake.inject(Fault("status", status=503))
    async with AsyncClient(
        base_url="http://api.test",
        token="tok_write",
        transport=fake.transport,
        retry=RetryPolicy(max_retries=0),
    ) as api:
        with pytest.raises(ApiServerError):
            await api.list_workflows()
    assert len(fake.seen) == 1


async def test_pagination_retries_a_failed_page(
    aclient: AsyncClient, fake: FakeApi, sleeps: list[float]
) -> None:
    ids = fake.seed_workflows(4)
    iterator = aclient.aiter_workflows(page_size=2)
    assert [(await anext(iterator)).id, (await anext(iterator)).id] == ids[:2]
    fake.inject(Fault("status", status=503, retry_after="1"))
    assert [w.id async for w in iterator] == ids[2:]
    assert sleeps == [1.0]


async def test_toggle_is_never_replayed_once_it_may_have_arrived(
    aclient: AsyncClient, fake: FakeApi
) -> None:
    rule = await aclient.create_rule(
        name="Escalate stale tickets after 24h",
        trigger="scheduled",
        conditions={"status": "open", "idle_hours": 24},
        action={
            "type": "start_workflow",
            "workflow_name": "SLA Escalation",
            "task_queue": "itsm-high-priority",
        },
    )
    path = f"/v1/automation/rules/{rule.id}/toggle"
    fake.inject(Fault("lost"))
    with pytest.raises(ApiTimeoutError):
        await aclient.toggle_rule(rule.id)
    (sent,) = fake.requests_to("POST", path)
    assert "Idempotency-Key" not in sent.headers
    assert fake.rules[rule.id]["enabled"] is False  # toggled once, not twice
    fake.inject(Fault("connect"))
    assert (await aclient.toggle_rule(rule.id)).enabled is True
    assert len(fake.requests_to("POST", path)) == 3


async def test_refused_connections_are_retried_then_raised(
    refused_url: str, sleeps: list[float]
) -> None:
    policy = RetryPolicy(max_retries=2, initial_delay=0.01, jitter=0.0)
    async with AsyncClient(
        base_url=refused_url, token="t", retry=policy, sleep=record_in(sleeps)
    ) as api:
        with pytest.raises(ApiRequestError) as info:
            await api.update_ticket("TKT-1", status="open")  # even a PATCH: it never left
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert sleeps == [0.01, 0.02]


async def test_a_server_that_never_answers_times_out(silent_url: str, sleeps: list[float]) -> None:
    policy = RetryPolicy(max_retries=1, initial_delay=0.0)
    async with AsyncClient(
        base_url=silent_url,
        token="t",
        timeout=httpx.Timeout(0.2),
        retry=policy,
        sleep=record_in(sleeps),
    ) as api:
        with pytest.raises(ApiTimeoutError) as info:
            await api.create_ticket(title="hello?")
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert info.value.request.headers["Idempotency-Key"]


# -- lifecycle -----------------------------------------------------------------------------


async def test_context_manager_closes(fake: FakeApi) -> None:
    api = AsyncClient(base_url="http://api.test", token="tok_write", transport=fake.transport)
    async with api as entered:
        assert entered is api
        assert not api.is_closed
    assert api.is_closed
    assert "tok_write" not in repr(api)


async def test_base_url_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="base_url"):
        AsyncClient(base_url="localhost:3000")
