"""Everything of a worker process that runs in a loop, beside the Temporal worker.

:func:`run_background` runs, until ``stop`` is set:

- a BullMQ worker per queue (twelve), each with its processor and the queue's concurrency
  (failed jobs stay in Redis, inspectable through ``/v1/jobs``);
- the outbox dispatcher, which turns ticket events into rule firings (exactly once; several
  dispatchers in several processes share the work through claims, renewed while an event is
  processed; events that fail transiently are retried with capped backoff, see
  ``service.automation.engine``);
- the schedule reconciler, which keeps one Temporal Schedule per scheduled rule, and enqueues
  the daily maintenance job.

It then closes everything it opened, letting jobs in progress finish for
:data:`SHUTDOWN_GRACE_S`; a job still running after that is abandoned, not failed: it stays
active in Redis and BullMQ hands it to a worker again once its lock expires (its stalled-job
check), so a worker asked to stop ends in bounded time and loses no job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, Final

from bullmq import Job, Worker
from opentelemetry.trace import SpanKind

from protocol_lab.domain import JOB_QUEUES, JobQueue
from service.automation.context import AutomationContext
from service.automation.engine import process_pending, retry_delay_s
from service.jobs.audit import process_audit
from service.jobs.delivery import process_webhook_delivery
from service.jobs.inference import prepare_model, process_ai_inference
from service.jobs.messaging import process_email, process_notification
from service.jobs.producer import messaging_attributes
from service.jobs.reports import process_export, process_report
from service.jobs.sla import process_sla_timer
from service.jobs.sync import process_maintenance, process_sync
from service.observability.tracing import continued_span, job_traceparent
from service.state import Resources
from service.store.outbox import wakeup_signal

__all__ = [
    "DISPATCH_POLL_S",
    "PROCESSORS",
    "SHUTDOWN_GRACE_S",
    "close_job_workers",
    "open_job_workers",
    "run_background",
    "run_dispatcher",
]

log = logging.getLogger("service.jobs")

Processor = Callable[[Resources, Job], Awaitable[Any]]

SHUTDOWN_GRACE_S: Final = 5.0
"""How long a stopping worker waits for its loops and jobs in progress before abandoning them:
within the stack's 10 s between SIGTERM and SIGKILL, with the Temporal workers' 3 s beside it."""

PROCESSORS: Final[dict[JobQueue, Processor]] = {
    JobQueue.EMAIL: process_email,
    JobQueue.NOTIFICATION: process_notification,
    JobQueue.SYNC: partial(process_sync, queue="sync"),
    JobQueue.AI_INFERENCE: process_ai_inference,
    JobQueue.REPORT_GENERATION: process_report,
    JobQueue.WEBHOOK_DELIVERY: process_webhook_delivery,
    JobQueue.AUDIT: process_audit,
    JobQueue.SLA_TIMER: process_sla_timer,
    JobQueue.ASSET_SYNC: partial(process_sync, queue="asset-sync"),
    JobQueue.FLEET_SYNC: partial(process_sync, queue="fleet-sync"),
    JobQueue.EXPORT: process_export,
    JobQueue.MAINTENANCE: process_maintenance,
}

DISPATCH_POLL_S: Final = 0.5
RECONCILE_EVERY_S: Final = 60.0


def open_job_workers(resources: Resources, *, queues: list[JobQueue] | None = None) -> list[Worker]:
    """Start a BullMQ worker for each queue (all twelve by default)."""
    workers = []
    for queue in queues or list(JobQueue):
        processor = PROCESSORS[queue]

        async def run(
            job: Job, _token: str, *, _p: Processor = processor, _q: JobQueue = queue
        ) -> Any:
            """Run the queue's processor on one job, in the trace that added it."""
            with continued_span(
                f"process {_q.value}",
                job_traceparent(job.opts),
                kind=SpanKind.CONSUMER,
                attributes={
                    **messaging_attributes(_q, str(job.name), str(job.id), operation="process"),
                    "bullmq.job.attempt": int(job.attemptsMade) + 1,
                },
            ):
                return await _p(resources, job)

        workers.append(
            Worker(
                queue.value,
                run,
                {
                    "connection": resources.jobs.redis_url,
                    "prefix": resources.jobs.prefix,
                    "concurrency": JOB_QUEUES[queue].concurrency,
                    "drainDelay": 1,
                    "name": f"protocol-{queue.value}",
                },
            )
        )
    return workers


async def run_dispatcher(
    ctx: AutomationContext, *, stop: asyncio.Event, poll_s: float = DISPATCH_POLL_S
) -> None:
    """Process outbox events as they come (woken in-process, else polling) until ``stop``.

    A pass that fails as a whole (the store unreachable) is tried again with capped backoff.
    """
    wake = wakeup_signal()
    failures = 0
    while not stop.is_set():
        wake.clear()
        try:
            done = await process_pending(ctx)
            failures = 0
        except Exception:
            failures += 1
            log.exception("outbox dispatch failed (%s in a row); retrying", failures)
            done = 0
        if done:
            continue
        pause = max(poll_s, retry_delay_s(failures)) if failures else poll_s
        waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
        await asyncio.wait(waiters, timeout=pause, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()


async def _reconcile_loop(ctx: AutomationContext, *, stop: asyncio.Event) -> None:
    from service.automation.schedules import reconcile_schedules

    while not stop.is_set():
        try:
            await reconcile_schedules(ctx)
        except Exception as exc:
            log.warning("schedule reconciliation failed: %s", exc)
        try:
            # Daily housekeeping; the job id makes every worker enqueue the same job.
            day = int(time.time() // 86400)
            await ctx.jobs.enqueue(JobQueue.MAINTENANCE, "prune", {}, job_id=f"maintenance-{day}")
        except Exception as exc:
            log.warning("maintenance job not enqueued: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=RECONCILE_EVERY_S)


async def run_background(resources: Resources, *, stop: asyncio.Event) -> None:
    """Run the job processors, the outbox dispatcher and the reconciler until ``stop`` is set;
    the ai-inference queue's model is trained at once, not by the first ticket."""
    ctx = AutomationContext.of(resources)
    workers = open_job_workers(resources)
    tasks = [
        asyncio.create_task(prepare_model(), name="triage-model"),
        asyncio.create_task(run_dispatcher(ctx, stop=stop), name="outbox-dispatcher"),
        asyncio.create_task(_reconcile_loop(ctx, stop=stop), name="schedule-reconciler"),
    ]
    try:
        await stop.wait()
    finally:
        stop.set()
        await close_job_workers(workers, loops=tasks)


async def close_job_workers(
    workers: list[Worker],
    *,
    loops: Sequence[asyncio.Task[Any]] = (),
) -> None:
    """Close BullMQ workers (and wait for ``loops`` to end), in bounded time.

    Jobs in progress, and the loops, get :data:`SHUTDOWN_GRACE_S` to finish; then the loops
    are cancelled and the workers forced closed, which abandons their jobs without failing them
    (see the module docstring). A BullMQ worker's own ``close`` waits for its jobs without
    bound and shields itself from cancellation, so it is only awaited here with a deadline."""
    if not workers and not loops:
        return
    grace = SHUTDOWN_GRACE_S  # read at the call, so that a test can shorten it
    closing = [asyncio.ensure_future(w.close()) for w in workers]
    _, late = await asyncio.wait([*loops, *closing], timeout=grace)
    if late:
        log.warning(
            "%d jobs and %d loops still running %.1f s after the stop: abandoned (the jobs "
            "stay active and are handed out again once their locks expire)",
            sum(len(w.jobs) for w in workers),
            sum(loop in late for loop in loops),
            grace,
        )
        for loop in loops:
            loop.cancel()
        forcing = [asyncio.ensure_future(w.close(force=True)) for w in workers]
        await asyncio.wait([*loops, *closing, *forcing], timeout=grace)
    for loop in loops:
        if loop.done() and not loop.cancelled() and loop.exception() is not None:
            log.error("background loop %s ended with %r", loop.get_name(), loop.exception())
