"""Each queue's processor on real parts: SMTP, HTTP, Redis, the store, scikit-learn, analytics."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from bullmq import Job
from job_helpers import Receiver
from sqlalchemy import update
from waiting import eventually

from protocol_lab.domain import JobQueue
from service.jobs import inference, runner
from service.jobs.producer import JobProducer
from service.jobs.runner import PROCESSORS, run_background
from service.jobs.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from service.state import Resources
from service.store.notifications import get_suggestion, list_audit, list_notifications
from service.store.tickets import TicketRow, create_ticket, parse_ticket_id

pytestmark = [pytest.mark.redis]


async def _finished(res: Resources, queue: JobQueue, job_id: str, *, within_s: float = 60) -> Job:
    """Wait until a job is completed or failed for good; return it."""

    async def finished() -> Job | None:
        job = await res.jobs.queue(queue).getJob(job_id)
        if job is None or await job.getState() not in ("completed", "failed"):
            return None
        # Read again: the job fetched before the state check may predate its result.
        final: Job | None = await res.jobs.queue(queue).getJob(job_id)
        assert final is not None
        return final

    return await eventually(finished, within_s=within_s, every_s=0.05)


async def _until(probe: Any, *, within_s: float = 20) -> Any:
    return await eventually(probe, within_s=within_s, every_s=0.05)


async def _ticket(res: Resources, **fields: Any) -> dict[str, Any]:
    async with res.sessionmaker() as session:
        ticket, _ = await create_ticket(session, fields=fields, actor="test")
    return ticket


async def test_email_goes_out_over_smtp(resources: Resources, mailbox: Any) -> None:
    job_id = await resources.jobs.enqueue(
        JobQueue.EMAIL,
        "rule_notification",
        {
            "to": "ann@example.com",
            "subject": "Resolved",
            "body": "Your ticket is resolved.",
            "ticket_id": "TKT-7",
        },
        job_id="email-test-1",
    )
    job = await _finished(resources, JobQueue.EMAIL, job_id)
    assert await job.getState() == "completed"
    [message] = [m for m in mailbox.messages if m["Message-ID"] == "<email-test-1@protocol-lab>"]
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "Resolved"
    assert message["X-Protocol-Ticket"] == "TKT-7"
    assert "Your ticket is resolved." in message.get_payload()


async def test_email_to_a_ticket_requester_and_a_bad_address_fails_for_good(
    resources: Resources, mailbox: Any
) -> None:
    ticket = await _ticket(resources, title="Password", requester="bob@example.com")
    await resources.jobs.enqueue(
        JobQueue.EMAIL, "password_reset", {"ticket_id": ticket["id"]}, job_id="email-test-2"
    )
    job = await _finished(resources, JobQueue.EMAIL, "email-test-2")
    assert await job.getState() == "completed"
    assert any(m["To"] == "bob@example.com" for m in mailbox.messages)
    await resources.jobs.enqueue(JobQueue.EMAIL, "x", {"to": "nobody"}, job_id="email-test-3")
    job = await _finished(resources, JobQueue.EMAIL, "email-test-3")
    assert await job.getState() == "failed"
    assert "no valid recipient" in job.failedReason
    assert job.attemptsMade == 1  # unrecoverable: not retried
    failed = await resources.jobs.queue(JobQueue.EMAIL).getJobs(["failed"])
    assert "email-test-3" in {j.id for j in failed}


async def test_notification_is_stored_on_its_ticket_and_forwarded_signed(
    resources: Resources, receiver: Receiver
) -> None:
    ticket = await _ticket(resources, title="Outage", assignee="carol")
    await resources.jobs.enqueue(
        JobQueue.NOTIFICATION, "incident_update", {"ticket_id": ticket["id"]}, job_id="note-1"
    )
    job = await _finished(resources, JobQueue.NOTIFICATION, "note-1")
    assert await job.getState() == "completed", job.failedReason
    async with resources.sessionmaker() as session:
        [note] = await list_notifications(session, ticket_id=ticket["id"])
    assert note["recipient"] == "carol"
    assert note["message"] == f"incident update on {ticket['id']}"
    assert note["delivered_to"] == f"{receiver.url}/notify"
    [hit] = [h for h in receiver.hits("/notify") if json.loads(h["body"])["id"] == "note-1"]
    assert json.loads(hit["body"])["ticket_id"] == ticket["id"]
    assert (
        verify(
            hit["body"],
            secret=resources.settings.integration_secret.get_secret_value(),
            timestamp=hit["headers"][TIMESTAMP_HEADER],
            signature=hit["headers"][SIGNATURE_HEADER],
        )
        is None
    )


async def test_webhook_delivery_retries_with_backoff_then_succeeds(
    resources: Resources, receiver: Receiver
) -> None:
    receiver.fail_first["/flaky"] = 2
    await resources.jobs.enqueue(
        JobQueue.WEBHOOK_DELIVERY,
        "ticket_event",
        {"url": f"{receiver.url}/flaky", "payload": {"ticket_id": "TKT-1"}, "secret": "s3"},
        job_id="hook-1",
        backoff_ms=200,
    )
    job = await _finished(resources, JobQueue.WEBHOOK_DELIVERY, "hook-1")
    assert await job.getState() == "completed"
    hits = receiver.hits("/flaky")
    assert len(hits) == 3
    assert [h["headers"]["X-Protocol-Attempt"] for h in hits] == ["1", "2", "3"]
    assert {h["headers"]["Idempotency-Key"] for h in hits} == {"hook-1"}
    for hit in hits:
        assert (
            verify(
                hit["body"],
                secret="s3",
                timestamp=hit["headers"][TIMESTAMP_HEADER],
                signature=hit["headers"][SIGNATURE_HEADER],
            )
            is None
        )
    stamps = [int(h["headers"][TIMESTAMP_HEADER]) for h in hits]
    assert stamps == sorted(stamps)


async def test_webhook_refused_fails_and_is_kept(resources: Resources, receiver: Receiver) -> None:
    await resources.jobs.enqueue(
        JobQueue.WEBHOOK_DELIVERY,
        "ticket_event",
        {"url": f"{receiver.url}/gone", "payload": {}},
        job_id="hook-2",
        backoff_ms=100,
    )
    job = await _finished(resources, JobQueue.WEBHOOK_DELIVERY, "hook-2")
    assert await job.getState() == "failed"
    assert "HTTP 404" in job.failedReason
    assert len(receiver.hits("/gone")) == 1


async def test_audit_appends_once_per_job(resources: Resources) -> None:
    for _ in range(2):
        await resources.jobs.enqueue(
            JobQueue.AUDIT, "access_revoked", {"subject": "TKT-42", "user": "u1"}, job_id="audit-1"
        )
    await _finished(resources, JobQueue.AUDIT, "audit-1")
    async with resources.sessionmaker() as session:
        entries = await list_audit(session, subject="TKT-42")
    assert len(entries) == 1
    assert entries[0]["kind"] == "access_revoked"
    assert entries[0]["data"]["user"] == "u1"


async def test_ai_inference_suggests_category_and_priority(resources: Resources) -> None:
    ticket = await _ticket(
        resources, title="Website down for all customers", description="500 errors"
    )
    await resources.jobs.enqueue(
        JobQueue.AI_INFERENCE, "suggest", {"ticket_id": ticket["id"]}, job_id="ai-test-1"
    )
    job = await _finished(resources, JobQueue.AI_INFERENCE, "ai-test-1", within_s=60)
    assert await job.getState() == "completed", job.failedReason
    async with resources.sessionmaker() as session:
        suggestion = await get_suggestion(session, ticket_id=ticket["id"])
    assert suggestion is not None
    assert suggestion["category"] == "incident"
    assert suggestion["priority"] in ("P1", "P2")
    assert 0 < suggestion["category_confidence"] <= 1


async def test_sla_timer_records_a_breach_and_notifies(resources: Resources) -> None:
    ticket = await _ticket(resources, title="Late", priority="P1", assignee="dave")
    async with resources.sessionmaker() as session:
        await session.execute(
            update(TicketRow)
            .where(TicketRow.number == parse_ticket_id(ticket["id"]))
            .values(created_at=time.time() - 5 * 3600)
        )
        await session.commit()
    await resources.jobs.enqueue(
        JobQueue.SLA_TIMER, "response_check", {"ticket_id": ticket["id"]}, job_id="sla-test-1"
    )
    job = await _finished(resources, JobQueue.SLA_TIMER, "sla-test-1")
    assert await job.getState() == "completed", job.failedReason
    async with resources.sessionmaker() as session:
        [entry] = await list_audit(session, subject=ticket["id"])
    assert entry["kind"] == "sla_breached"

    async def notified() -> list[dict[str, Any]]:
        async with resources.sessionmaker() as session:
            return await list_notifications(session, ticket_id=ticket["id"])

    [note] = await _until(notified)
    assert note["recipient"] == "dave"
    assert "SLA" in (note["subject"] or "")


async def test_fleet_sync_goes_to_its_integration(resources: Resources, receiver: Receiver) -> None:
    await resources.jobs.enqueue(
        JobQueue.FLEET_SYNC, "device_enrolled", {"device": "d1"}, job_id="fleet-1"
    )
    job = await _finished(resources, JobQueue.FLEET_SYNC, "fleet-1")
    assert await job.getState() == "completed", job.failedReason
    [hit] = receiver.hits("/sync")
    assert json.loads(hit["body"])["data"] == {"device": "d1"}
    # No integration configured for asset-sync: recorded, not sent.
    await resources.jobs.enqueue(
        JobQueue.ASSET_SYNC, "asset", {"ticket_id": "TKT-9"}, job_id="asset-1"
    )
    await _finished(resources, JobQueue.ASSET_SYNC, "asset-1")
    async with resources.sessionmaker() as session:
        [entry] = await list_audit(session, subject="TKT-9")
    assert entry["kind"] == "sync_skipped"


async def test_export_and_sla_report(resources: Resources) -> None:
    await _ticket(resources, title="Exported")
    await resources.jobs.enqueue(JobQueue.EXPORT, "tickets", {}, job_id="export-1")
    job = await _finished(resources, JobQueue.EXPORT, "export-1")
    assert await job.getState() == "completed", job.failedReason
    result = json.loads(job.returnvalue) if isinstance(job.returnvalue, str) else job.returnvalue
    lines = (await asyncio.to_thread(Path(result["path"]).read_text)).splitlines()
    assert len(lines) == result["tickets"] >= 1
    assert any(json.loads(line)["title"] == "Exported" for line in lines)

    await resources.jobs.enqueue(JobQueue.REPORT_GENERATION, "sla", {}, job_id="report-1")
    job = await _finished(resources, JobQueue.REPORT_GENERATION, "report-1", within_s=120)
    assert await job.getState() == "completed", job.failedReason
    result = json.loads(job.returnvalue) if isinstance(job.returnvalue, str) else job.returnvalue
    assert result["groups"] >= 5
    markdown = await asyncio.to_thread(Path(result["markdown"]).read_text)
    assert "itsm-high-priority" in markdown
    assert "attainment" in markdown


async def test_maintenance_prunes_processed_events_only(resources: Resources) -> None:
    from sqlalchemy import func, select

    from service.store.outbox import OutboxRow, finish_event

    async with resources.sessionmaker() as session:
        _, done_id = await create_ticket(session, fields={"title": "old"}, actor="test")
        _, pending_id = await create_ticket(session, fields={"title": "new"}, actor="test")
        await finish_event(session, event_id=done_id)
    await resources.jobs.enqueue(
        JobQueue.MAINTENANCE, "prune", {"retention_days": 0}, job_id="maint-1"
    )
    job = await _finished(resources, JobQueue.MAINTENANCE, "maint-1")
    assert await job.getState() == "completed", job.failedReason
    async with resources.sessionmaker() as session:
        remaining = set(
            (
                await session.execute(
                    select(OutboxRow.id).where(OutboxRow.id.in_([done_id, pending_id]))
                )
            ).scalars()
        )
        assert remaining == {pending_id}
        assert (await session.execute(select(func.count(OutboxRow.id)))).scalar()


async def test_the_background_loops_train_the_triage_model_before_any_ticket(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trained at the worker's start, not by the first ai-inference job: that job would hold
    the interpreter for the imports and the training while the process's workflows wait."""
    monkeypatch.setattr(inference, "_MODEL", None)
    stop = asyncio.Event()
    background = asyncio.create_task(run_background(resources, stop=stop))
    try:
        trained = await eventually(lambda: inference._MODEL, within_s=60)
        assert (
            trained.suggest("VPN down for the whole office").category in trained.category.classes_
        )
    finally:
        stop.set()
        await background


async def test_a_stopping_worker_abandons_a_job_that_never_ends_and_keeps_it(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop waits for a job in progress only for the grace period: BullMQ's own close would
    wait for it forever (and ignores cancellation). The job is left active in Redis, neither
    failed nor removed, for BullMQ to hand out again once its lock expires."""
    began = asyncio.Event()

    async def never_ends(_res: Resources, _job: Job) -> None:
        began.set()
        await asyncio.Event().wait()

    monkeypatch.setitem(PROCESSORS, JobQueue.EXPORT, never_ends)
    monkeypatch.setattr(runner, "SHUTDOWN_GRACE_S", 0.5)
    # queues of its own: the module's workers take no job of this test
    jobs = JobProducer(resources.jobs.redis_url, prefix=f"t{uuid.uuid4().hex[:10]}")
    monkeypatch.setattr(resources, "jobs", jobs)
    stop = asyncio.Event()
    background = asyncio.create_task(run_background(resources, stop=stop))
    try:
        job_id = await jobs.enqueue(JobQueue.EXPORT, "tickets", {}, job_id="stuck")
        await eventually(began.is_set, within_s=30)
        stop.set()
        # not wait_for: cancelling a stop stuck in BullMQ's close would hang as well
        stopped, _ = await asyncio.wait({background}, timeout=30)
        assert stopped, "the worker did not stop: it waits for the job that never ends"
        job = await jobs.queue(JobQueue.EXPORT).getJob(job_id)
        assert job is not None
        assert await job.getState() == "active"
    finally:
        stop.set()
        background.cancel()
        await jobs.close()
