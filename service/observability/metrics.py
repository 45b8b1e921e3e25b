"""The service's Prometheus metrics: what happens in this process, and what the store and the
queues hold when scraped.

Counted where it happens (each process its own, summed by Prometheus): request latency by route,
rule firings and how their executions end, workflow starts by task queue and trigger. Read at
scrape time from shared state, so any API process reports the whole service: the outbox's lag
(events not yet processed and the age of the oldest), BullMQ job counts per queue and state, and
workflows per task queue and status from Temporal's visibility (completions and failures, over
its retention). Each read is bounded (``SCRAPE_WAIT_S``); one that fails or times out is left out
and counted in ``protocol_scrape_errors_total``.

The worker serves the Temporal SDK's own metrics (``temporal_*``: workflow completions and
failures by task queue and workflow type, task latencies, slots) on ``METRICS_ADDRESS``, and this
module's counters beside them (see :func:`serve_worker_metrics`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from service.state import Resources

__all__ = [
    "CONTENT_TYPE_LATEST",
    "SCRAPE_WAIT_S",
    "MetricsMiddleware",
    "render_metrics",
    "rule_executed",
    "rule_fired",
    "serve_worker_metrics",
    "workflow_started",
]

log = logging.getLogger("service.observability.metrics")

SCRAPE_WAIT_S: Final = 2.0
# Any other method a client makes up counts as "other": labels stay a bounded set.
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_WORKFLOW_STATUSES: Final = ("Running", "Completed", "Failed", "Canceled", "Terminated", "TimedOut")

REQUEST_SECONDS = Histogram(
    "protocol_http_request_duration_seconds",
    "Time to answer an API request, by method, route template and status code.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RULE_FIRINGS = Counter(
    "protocol_rule_firings_total",
    "Rule firings recorded (one per rule, event and action), by trigger.",
    ["trigger"],
)
RULE_EXECUTIONS = Counter(
    "protocol_rule_executions_total",
    "Rule executions that ended, by outcome (succeeded, failed, loop_stopped, ...).",
    ["outcome"],
)
WORKFLOW_STARTS = Counter(
    "protocol_workflow_starts_total",
    "Workflows started, by task queue and trigger type.",
    ["task_queue", "trigger_type"],
)
OUTBOX_EVENTS = Gauge(
    "protocol_outbox_events", "Outbox events by status (done events until pruned).", ["status"]
)
OUTBOX_LAG = Gauge(
    "protocol_outbox_lag_seconds",
    "Age of the oldest outbox event not processed yet (pending or processing); 0 when none.",
)
QUEUE_JOBS = Gauge("protocol_queue_jobs", "BullMQ jobs by queue and state.", ["queue", "state"])
WORKFLOWS = Gauge(
    "protocol_workflows",
    "Workflows Temporal's visibility holds, by task queue and execution status.",
    ["task_queue", "status"],
)
SCRAPE_ERRORS = Counter(
    "protocol_scrape_errors_total",
    "Scrape-time reads that failed or timed out, by source.",
    ["source"],
)
for _source in ("outbox", "queues", "workflows"):
    SCRAPE_ERRORS.labels(source=_source)

# In the worker, each count also goes to the Temporal runtime's meter (served with the SDK's).
_temporal_counters: dict[str, Any] = {}


def rule_fired(trigger: str) -> None:
    """Count one recorded firing of a rule."""
    RULE_FIRINGS.labels(trigger=trigger).inc()
    _also_temporal("protocol_rule_firings", 1, {"trigger": trigger})


def rule_executed(outcome: str, count: int = 1) -> None:
    """Count ``count`` rule executions that ended with ``outcome``."""
    if count > 0:
        RULE_EXECUTIONS.labels(outcome=outcome).inc(count)
        _also_temporal("protocol_rule_executions", count, {"outcome": outcome})


def workflow_started(task_queue: str, trigger_type: str) -> None:
    """Count one workflow started."""
    WORKFLOW_STARTS.labels(task_queue=task_queue, trigger_type=trigger_type).inc()
    _also_temporal(
        "protocol_workflow_starts", 1, {"task_queue": task_queue, "trigger_type": trigger_type}
    )


def _also_temporal(name: str, value: int, labels: dict[str, str]) -> None:
    counter = _temporal_counters.get(name)
    if counter is not None:
        counter.add(value, labels)


def serve_worker_metrics(bind_address: str) -> None:
    """Make the Temporal runtime of this process serve Prometheus metrics at ``bind_address``
    (``host:port``): the SDK's own and this module's counters. Call before the first client."""
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=bind_address, counters_total_suffix=True, durations_as_seconds=True
            )
        )
    )
    Runtime.set_default(runtime, error_if_already_set=False)
    meter = runtime.metric_meter
    for name in ("protocol_rule_firings", "protocol_rule_executions", "protocol_workflow_starts"):
        _temporal_counters[name] = meter.create_counter(name, "see service.observability.metrics")


class MetricsMiddleware:
    """Times every HTTP request, labelled with its route template (``/v1/workflows/{id}``), so
    the label set stays bounded; requests no route matched count as ``unmatched``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; observe its duration when the answer has started."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method = scope.get("method", "")
            REQUEST_SECONDS.labels(
                method=method if method in _METHODS else "other",
                route=_template(scope),
                status=str(status),
            ).observe(time.perf_counter() - started)


def _template(scope: Scope) -> str:
    """The matched route's path with its parameters named (``/v1/workflows/{workflow_id}``), or
    ``unmatched``. Read from the request's own path, since a route of an included router knows
    only its path below the router's prefix."""
    if scope.get("route") is None:
        return "unmatched"
    names = {str(value): name for name, value in scope.get("path_params", {}).items()}
    return "/".join(
        f"{{{names[part]}}}" if part in names else part for part in scope["path"].split("/")
    )


async def render_metrics(state: Resources) -> bytes:
    """The exposition text: this process's counters after refreshing the scrape-time readings."""
    await asyncio.gather(
        _bounded("outbox", _read_outbox(state)),
        _bounded("queues", _read_queues(state)),
        _bounded("workflows", _read_workflows(state)),
    )
    return generate_latest()


async def _bounded(source: str, reading: Awaitable[None]) -> None:
    try:
        await asyncio.wait_for(reading, SCRAPE_WAIT_S)
    except Exception as exc:  # a scrape answers with what it could read
        SCRAPE_ERRORS.labels(source=source).inc()
        log.warning("metrics: reading %s failed: %s", source, type(exc).__name__)


async def _read_outbox(state: Resources) -> None:
    from sqlalchemy import func, select

    from service.store.outbox import STATUSES, OutboxRow

    async with state.sessionmaker() as session:
        counts = dict(
            (
                await session.execute(
                    select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
                )
            ).all()
        )
        oldest = (
            await session.execute(
                select(func.min(OutboxRow.created_at)).where(
                    OutboxRow.status.in_(("pending", "processing"))
                )
            )
        ).scalar()
    for status in STATUSES:
        OUTBOX_EVENTS.labels(status=status).set(int(counts.get(status, 0)))
    OUTBOX_LAG.set(max(0.0, time.time() - float(oldest)) if oldest is not None else 0.0)


async def _read_queues(state: Resources) -> None:
    for queue, states in (await state.jobs.counts()).items():
        for name, count in states.items():
            QUEUE_JOBS.labels(queue=queue, state=name).set(count)


async def _read_workflows(state: Resources) -> None:
    from protocol_lab.domain import TaskQueue
    from service.temporal.queues import temporal_queue

    async def count(task_queue: str) -> None:
        on_temporal = temporal_queue(state.settings, task_queue)
        answer = await state.temporal.count_workflows(
            f"TaskQueue = '{on_temporal}' GROUP BY ExecutionStatus"
        )
        found = {str(g.group_values[0]): g.count for g in answer.groups if g.group_values}
        for status in _WORKFLOW_STATUSES:
            WORKFLOWS.labels(task_queue=task_queue, status=status.lower()).set(found.get(status, 0))

    await asyncio.gather(*(count(queue.value) for queue in TaskQueue))
