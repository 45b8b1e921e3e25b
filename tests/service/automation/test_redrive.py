"""Transient failures are retried until the give-up horizon, then the event fails and can be
re-driven; permanent failures fail at once; the lease is renewed while an event is processed.

The engine runs on a store of its own per test (SQLite and PostgreSQL), with the session's
Temporal and Redis, or with a Temporal client that cannot connect (a port nobody listens on).
The admin endpoint and the ``protocol-lab events redrive`` command are driven over real HTTP,
against the service in uvicorn on a store of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import serving
from outbox_helpers import (
    NOTIFY_RULE,
    WORKFLOW_RULE,
    add_rule,
    event_rows,
    executions_of,
    new_tickets,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from typer.testing import CliRunner, Result
from waiting import eventually

from protocol_lab.cli import app as cli
from protocol_lab.domain import Catalog, JobQueue
from service.app import create_app
from service.automation.context import AutomationContext, RuleCaches
from service.automation.engine import RETRY_FIRST_S, process_event
from service.automation.starting import ActionError
from service.automation.transient import is_temporal_outage, is_transient
from service.errors import UnavailableError
from service.executions.context import temporal_errors
from service.jobs.producer import JobProducer
from service.settings import Settings
from service.stack import free_port
from service.store.db import make_engine, make_sessionmaker
from service.store.outbox import (
    OutboxRow,
    add_event,
    audit_job_id,
    claim_event,
    fail_event,
    pending_event_ids,
    redrive_events,
    suggestion_job_id,
)
from service.temporal.queues import temporal_queue

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

Sessions = async_sessionmaker[AsyncSession]


def _raised(exc: BaseException, *, via: type[BaseException] | None = None) -> BaseException:
    """``exc`` as the engine sees it: raised, or re-raised as ``via`` from it."""
    try:
        try:
            raise exc
        except BaseException as inner:
            if via is None:
                raise
            raise via("wrapped") from inner
    except BaseException as seen:
        return seen


def _through_temporal_errors(exc: BaseException) -> BaseException:
    """``exc`` as the workflow service turns it into an API error."""
    try:
        with temporal_errors():
            raise exc
    except BaseException as seen:
        return seen
    raise AssertionError("not raised")


def _rpc(status: RPCStatusCode) -> RPCError:
    return RPCError("rpc", status, b"")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_through_temporal_errors(_rpc(RPCStatusCode.UNAVAILABLE)), True),
        (_through_temporal_errors(_rpc(RPCStatusCode.DEADLINE_EXCEEDED)), True),
        (_through_temporal_errors(RuntimeError("Failed client connect: refused")), True),
        (_rpc(RPCStatusCode.RESOURCE_EXHAUSTED), True),
        (RedisConnectionError("refused"), True),
        (RedisTimeoutError("slow"), True),
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (OSError("network unreachable"), True),
        (_raised(ConnectionResetError(), via=RuntimeError), True),
        (_through_temporal_errors(_rpc(RPCStatusCode.INVALID_ARGUMENT)), False),
        (_through_temporal_errors(_rpc(RPCStatusCode.PERMISSION_DENIED)), False),
        (UnavailableError("no Temporal client is configured"), False),
        (ActionError("no workflow named 'X'"), False),
        (KeyError("ticket"), False),
        (ValueError("'on_ticket_exploded' is not a valid Trigger"), False),
        (RuntimeError("something else"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_transient_failures_are_told_from_permanent_ones(
    error: BaseException, transient: bool
) -> None:
    assert is_transient(error) is transient


@pytest.mark.parametrize(
    ("error", "temporal", "transient"),
    [
        (_through_temporal_errors(_rpc(RPCStatusCode.UNAVAILABLE)), True, True),
        (_through_temporal_errors(RuntimeError("Failed client connect: refused")), True, True),
        (_rpc(RPCStatusCode.DEADLINE_EXCEEDED), True, True),
        (_through_temporal_errors(_rpc(RPCStatusCode.INVALID_ARGUMENT)), False, False),
        (OperationalError("SELECT 1", {}, Exception("database is locked")), False, True),
        (RedisConnectionError("refused"), False, True),
        (ConnectionRefusedError(), False, True),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_a_temporal_outage_is_told_from_the_store_or_redis_failing(
    error: BaseException, temporal: bool, transient: bool
) -> None:
    """Only while Temporal alone is down do an event's side jobs go out before its rules."""
    assert is_temporal_outage(error) is temporal
    assert is_transient(error) is transient


async def _unreachable_temporal() -> Client:
    """A client of a Temporal nobody runs: every call fails as while Temporal is down."""
    return await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)


def _with(ctx: AutomationContext, **changes: Any) -> AutomationContext:
    """The same context with other settings, Temporal client or catalog."""
    return dataclasses.replace(ctx, caches=RuleCaches(), **changes)


async def _row(ctx: AutomationContext, event_id: int) -> OutboxRow:
    [row] = await event_rows(ctx.sessionmaker, [event_id])
    return row


async def _eligible(ctx: AutomationContext, event_id: int) -> bool:
    async with ctx.sessionmaker() as session:
        return event_id in await pending_event_ids(session)


async def _job_exists(ctx: AutomationContext, queue: JobQueue, job_id: str) -> bool:
    return await ctx.jobs.queue(queue).getJob(job_id) is not None


async def _job_added_at(ctx: AutomationContext, queue: JobQueue, job_id: str) -> int:
    """When the job with this id was added (ms); fails if there is none."""
    job = await ctx.jobs.queue(queue).getJob(job_id)
    assert job is not None, f"no {queue.value} job {job_id}"
    return int(job.timestamp)


async def test_transient_failures_are_retried_until_the_horizon_then_the_event_is_redriven(
    ctx: AutomationContext, temporal_client: Client
) -> None:
    notify = await add_rule(ctx.sessionmaker, NOTIFY_RULE)
    start = await add_rule(ctx.sessionmaker, WORKFLOW_RULE)
    [event_id] = await new_tickets(ctx.sessionmaker, 1, title="Temporal is down")
    down = _with(ctx, temporal=await _unreachable_temporal())

    # Temporal down: the notification goes out, the workflow waits, the event is retried.
    assert await process_event(down, event_id=event_id) is False
    row = await _row(ctx, event_id)
    assert (row.status, row.attempts) == ("processing", 1)
    assert row.error is not None
    assert row.error.startswith("attempt 1: ")
    assert row.lease_until <= time.time() + RETRY_FIRST_S
    by_rule = {e.rule_id: e for e in await executions_of(ctx.sessionmaker, [event_id])}
    assert by_rule[notify].outcome == "succeeded"
    assert by_rule[start].outcome == "pending"
    notified_at = by_rule[notify].finished_at
    # The ticket's own side jobs need no Temporal: they do not wait for its rules.
    assert row.ticket_id is not None
    audit_id = audit_job_id(event_id, row.created_at)
    suggestion_id = suggestion_job_id(row.ticket_id, row.created_at)
    audit_added = await _job_added_at(ctx, JobQueue.AUDIT, audit_id)
    suggestion_added = await _job_added_at(ctx, JobQueue.AI_INFERENCE, suggestion_id)

    await eventually(lambda: _eligible(ctx, event_id))
    assert await process_event(down, event_id=event_id) is False
    row = await _row(ctx, event_id)
    assert row.attempts == 2
    assert row.status == "processing"  # still retried: far from the 24 h horizon

    # Past the horizon, the next failure gives up: the event and its pending execution fail.
    hopeless = _with(down, settings=ctx.settings.model_copy(update={"event_retry_hours": 1e-9}))
    await eventually(lambda: _eligible(ctx, event_id))
    assert await process_event(hopeless, event_id=event_id) is True
    row = await _row(ctx, event_id)
    assert row.status == "failed"
    assert row.error is not None
    assert row.error.startswith("gave up after 1e-09 h and 3 attempts: ")
    by_rule = {e.rule_id: e for e in await executions_of(ctx.sessionmaker, [event_id])}
    assert by_rule[start].outcome == "failed"
    assert by_rule[start].detail == row.error
    # each attempt sent them again; the job ids kept them one job each
    assert await _job_added_at(ctx, JobQueue.AUDIT, audit_id) == audit_added
    assert await _job_added_at(ctx, JobQueue.AI_INFERENCE, suggestion_id) == suggestion_added

    # Re-driven with Temporal back: the workflow starts, the notification is not repeated.
    async with ctx.sessionmaker() as session:
        assert await redrive_events(session) == [event_id]
    row = await _row(ctx, event_id)
    assert (row.status, row.attempts, row.error) == ("pending", 0, None)
    assert row.requeued_at is not None
    assert await process_event(ctx, event_id=event_id) is True
    assert (await _row(ctx, event_id)).status == "done"
    after = {e.rule_id: e for e in await executions_of(ctx.sessionmaker, [event_id])}
    assert after[start].id == by_rule[start].id
    assert after[start].outcome == "succeeded", after[start].detail
    assert after[notify].finished_at == notified_at
    assert after[start].workflow_id is not None
    described = await temporal_client.get_workflow_handle(after[start].workflow_id).describe()
    assert described.task_queue == temporal_queue(ctx.settings, "itsm-high-priority")
    assert await _job_exists(ctx, JobQueue.AUDIT, audit_id)
    assert await _job_exists(ctx, JobQueue.NOTIFICATION, str(after[notify].job_id))
    async with ctx.sessionmaker() as session:
        assert await redrive_events(session) == []  # nothing failed any more


async def test_a_permanent_failure_fails_at_once_and_a_redrive_by_id_runs_it_again(
    ctx: AutomationContext,
) -> None:
    start = await add_rule(ctx.sessionmaker, WORKFLOW_RULE)
    [event_id] = await new_tickets(ctx.sessionmaker, 1, title="Unknown plan")
    catalog = Catalog({k: v for k, v in ctx.catalog.items() if k != "P1 Incident Response"})
    assert await process_event(_with(ctx, catalog=catalog), event_id=event_id) is True
    # processed: the execution failed for good at the first attempt, the event is done
    row = await _row(ctx, event_id)
    assert (row.status, row.attempts, row.error) == ("done", 1, None)
    [failed] = await executions_of(ctx.sessionmaker, [event_id])
    assert (failed.rule_id, failed.outcome) == (start, "failed")
    assert failed.detail == "no workflow named 'P1 Incident Response' is defined"

    async with ctx.sessionmaker() as session:
        assert await redrive_events(session) == []  # "all failed" is events that failed
        assert await redrive_events(session, event_ids=[event_id]) == [event_id]
        assert await redrive_events(session, event_ids=[event_id]) == []  # queued already
    assert await process_event(ctx, event_id=event_id) is True
    [again] = await executions_of(ctx.sessionmaker, [event_id])
    assert (again.id, again.outcome) == (failed.id, "succeeded")


async def test_bad_data_fails_the_event_at_once(ctx: AutomationContext) -> None:
    async with ctx.sessionmaker() as session:
        event_id = await add_event(session, kind="on_ticket_exploded", payload={})
        await session.commit()
    assert await process_event(ctx, event_id=event_id) is True
    row = await _row(ctx, event_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.error == "ValueError: 'on_ticket_exploded' is not a valid Trigger"


class _SlowJobs(JobProducer):
    """A producer whose rule notifications wait at a gate (an answer that takes long)."""

    def __init__(self, redis_url: str, *, prefix: str) -> None:
        super().__init__(redis_url, prefix=prefix)
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def enqueue(
        self, queue: JobQueue | str, name: str, data: dict[str, Any], **kw: Any
    ) -> str:
        if name == "rule_notification":
            self.entered.set()
            await self.gate.wait()
        return await super().enqueue(queue, name, data, **kw)


LEASE_S = 2.0  # short for the test (the dispatcher's is LEASE_SECONDS), long enough for a loaded CI


async def test_the_lease_is_renewed_while_a_slow_event_is_processed(
    ctx: AutomationContext,
) -> None:
    await add_rule(ctx.sessionmaker, NOTIFY_RULE)
    [event_id] = await new_tickets(ctx.sessionmaker, 1, title="Slow")
    slow = _SlowJobs(ctx.jobs.redis_url, prefix=ctx.jobs.prefix)
    working = asyncio.create_task(
        process_event(_with(ctx, jobs=slow), event_id=event_id, lease_s=LEASE_S)
    )
    try:
        await eventually(slow.entered.is_set)
        claimed_at = time.time()
        leases: set[float] = set()

        async def renewed_past_several_leases() -> bool:
            row = await _row(ctx, event_id)
            assert row.lease_until > time.time(), "the lease ran out"
            assert not await _eligible(ctx, event_id)
            async with ctx.sessionmaker() as session:
                assert await claim_event(session, event_id=event_id) is None
            leases.add(row.lease_until)
            return len(leases) >= 4 and time.time() > claimed_at + 2 * LEASE_S

        await eventually(renewed_past_several_leases, every_s=LEASE_S / 6)
    finally:
        slow.gate.set()
        assert await working is True
        await slow.close()
    row = await _row(ctx, event_id)
    assert (row.status, row.attempts) == ("done", 1)  # claimed once
    [execution] = await executions_of(ctx.sessionmaker, [event_id])
    assert execution.outcome == "succeeded"


@dataclasses.dataclass
class Live:
    """The service in uvicorn (no worker: re-driven events stay queued) and its store."""

    url: str
    sessionmaker: Sessions


@pytest.fixture(scope="module")
async def live(
    service_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Live]:
    state: Path = tmp_path_factory.mktemp("redrive-live")
    settings = service_settings.model_copy(
        update={"state_dir": state, "database_url": f"sqlite+aiosqlite:///{state / 'db.sqlite'}"}
    )
    assert settings.database_url is not None
    with serving(create_app(settings), name="redrive-uvicorn") as url:
        engine = make_engine(settings.database_url)
        try:
            yield Live(url=url, sessionmaker=make_sessionmaker(engine))
        finally:
            await engine.dispose()


async def _failed_event(live: Live) -> int:
    """An event that failed (as an event gives up), with nothing else about it."""
    async with live.sessionmaker() as session:
        event_id = await add_event(session, kind="on_ticket_created", payload={})
        await session.commit()
        await fail_event(session, event_id=event_id, error="ConnectionError: gave up")
    return event_id


async def test_the_redrive_endpoint_needs_the_admin_scope_and_requeues_failed_events(
    live: Live, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    first, second = await _failed_event(live), await _failed_event(live)
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        url = "/v1/automation/events/redrive"
        refused = await http.post(url, headers=write_headers, json={})
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"] == "permission_error"
        bad = await http.post(url, headers=admin_headers, json={"event_ids": [], "x": 1})
        assert bad.status_code == 400, bad.text

        one = await http.post(url, headers=admin_headers, json={"event_ids": [second, 10**9]})
        assert one.status_code == 200, one.text
        assert one.json() == {"requeued": 1, "event_ids": [second]}
        rest = await http.post(url, headers=admin_headers)  # no body: every failed event
        assert rest.status_code == 200, rest.text
        assert first in rest.json()["event_ids"]
        assert second not in rest.json()["event_ids"]
        again = await http.post(url, headers=admin_headers, json={"event_ids": [first, second]})
        assert again.json() == {"requeued": 0, "event_ids": []}
    for event_id in (first, second):
        [row] = await event_rows(live.sessionmaker, [event_id])
        assert (row.status, row.error) == ("pending", None)


async def test_the_redrive_command_calls_the_service_with_an_admin_token(
    live: Live, admin_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    event_id = await _failed_event(live)
    admin = admin_headers["Authorization"].removeprefix("Bearer ")
    writer = write_headers["Authorization"].removeprefix("Bearer ")
    runner = CliRunner()
    args = ["events", "redrive", str(event_id), "--base-url", live.url]

    def run(argv: list[str]) -> Result:
        return runner.invoke(cli, argv)  # in a thread: the command waits for the service

    refused = await asyncio.to_thread(run, [*args, "--token", writer])
    assert refused.exit_code == 1, refused.output
    assert "redrive failed" in refused.output
    assert "admin" in refused.output

    done = await asyncio.to_thread(run, [*args, "--token", admin])
    assert done.exit_code == 0, done.output
    assert done.output.strip() == f"re-queued 1 event(s): {event_id}"

    neither = await asyncio.to_thread(run, ["events", "redrive", "--token", admin])
    assert neither.exit_code == 2
    assert "give event ids, or --all" in neither.output
