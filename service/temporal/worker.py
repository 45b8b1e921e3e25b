"""The worker process: Temporal workers on the task queues, and the background job loops.

``main()`` is what ``protocol-lab worker`` runs. It connects to Temporal (waiting for it to come
up), opens the :class:`Resources`, runs one Temporal worker per task queue (all five unless
``WORKER_TASK_QUEUES`` says otherwise), with the rule engine's and the recurring workflows'
workflows and activities on ``itsm-workflows``, and the background loops
(``service.jobs.runner.run_background``). It stops on SIGINT/SIGTERM or when ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from protocol_lab.domain import TaskQueue
from service.automation import schedule_workflow as automation
from service.automation.context import AutomationContext
from service.automation.engine import rule_index
from service.executions import recurring
from service.heap import freeze_long_lived
from service.jobs import runner as job_runner
from service.jobs.inference import prepare_model
from service.observability.metrics import serve_worker_metrics
from service.settings import Settings, get_settings
from service.state import Resources, open_resources
from service.temporal.activities import StepActivities
from service.temporal.client import connect
from service.temporal.plan_workflow import PlanWorkflow
from service.temporal.queues import temporal_queue

__all__ = [
    "PASSTHROUGH_MODULES",
    "build_workers",
    "connect_when_ready",
    "main",
    "workflow_runner",
]

log = logging.getLogger("service.temporal.worker")

AUTOMATION_QUEUE = TaskQueue.WORKFLOWS.value
# Libraries that workflow modules may import (directly or through the domain model): loaded once
# outside the sandbox instead of per workflow run (numpy cannot be loaded twice in a process).
PASSTHROUGH_MODULES = (
    "numpy",
    "scipy",
    "polars",
    "pandas",
    "pyarrow",
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "yaml",
    "sqlalchemy",
    "httpx",
    "bullmq",
    "redis",
    "fastapi",
    "starlette",
    "protocol_lab",
    "prometheus_client",
    # the tracing interceptor's spans inside workflows use the process's tracer provider
    "opentelemetry",
    # plain data modules of the service that the workflow module imports
    "service.settings",
    "service.temporal.search_attributes",
    # process-wide metrics, counted by the store and the starter that workflow modules import
    "service.observability.metrics",
    "service.observability.tracing",
)


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox with :data:`PASSTHROUGH_MODULES` passed through."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def build_workers(
    client: Client,
    resources: Resources,
    *,
    task_queues: Sequence[str] | None = None,
    graceful_shutdown: timedelta = timedelta(seconds=3),
) -> list[Worker]:
    """One worker per task queue, with the plan workflow and the step activities.

    ``task_queues`` (default: the settings' ``worker_task_queues``, else the spec's five) are the
    spec's names; each worker polls the Temporal task queue of its name (after the prefix).
    """
    settings = resources.settings
    queues = list(task_queues or settings.worker_task_queues or [q.value for q in TaskQueue])
    steps = StepActivities(resources).all()
    workers = []
    for queue in queues:
        workflows: list[type] = [PlanWorkflow]
        activities: list[Callable[..., Any]] = list(steps)
        if queue == AUTOMATION_QUEUE:
            # the rule engine's own workflows, and what the Schedules of recurring workflows start
            workflows += [*automation.workflows(), *recurring.workflows()]
            activities += [*automation.activities(resources), *recurring.activities(resources)]
        workers.append(
            Worker(
                client,
                task_queue=temporal_queue(settings, queue),
                workflows=workflows,
                activities=activities,
                graceful_shutdown_timeout=graceful_shutdown,
                workflow_runner=workflow_runner(),
            )
        )
    return workers


async def connect_when_ready(settings: Settings, *, within_s: float = 60.0) -> Client:
    """Connect to Temporal, retrying while it comes up."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await connect(settings)
        except Exception:
            if time.monotonic() > deadline:
                raise
            log.info("waiting for Temporal at %s", settings.temporal_address)
            await asyncio.sleep(0.5)


async def ready_to_freeze(resources: Resources) -> None:
    """Build what the worker keeps (the triage model and the libraries it imports, the rule
    index), then freeze the heap (:func:`service.heap.freeze_long_lived`): before any work is
    in flight. A part that cannot be built now (the store unreachable) is built later, unfrozen.
    """
    await prepare_model()
    try:
        await rule_index(AutomationContext.of(resources))
    except Exception as exc:
        log.warning("rule index not built ahead (the dispatcher builds it): %s", exc)
    freeze_long_lived()


async def _background(resources: Resources, stop: asyncio.Event) -> None:
    try:
        await job_runner.run_background(resources, stop=stop)
    except Exception:
        # The workflow workers keep running; the failure is logged for the operator.
        log.exception("background job loops stopped with an error")


async def main(
    client: Client | None = None,
    *,
    settings: Settings | None = None,
    stop: asyncio.Event | None = None,
    freeze_heap: bool | None = None,
) -> None:
    """Run the worker until interrupted (or until ``stop`` is set).

    ``freeze_heap`` (by default when the worker connects its own client, i.e. runs in a process
    of its own): before taking work, train the triage model, build the rule index and freeze
    what is then alive (:func:`ready_to_freeze`).
    """
    settings = settings or get_settings()
    if freeze_heap is None:
        freeze_heap = client is None
    if client is None:
        if settings.metrics_address:
            serve_worker_metrics(settings.metrics_address)
        client = await connect_when_ready(settings)
    own_stop = stop is None
    stop = stop or asyncio.Event()
    if own_stop:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
    async with open_resources(settings, temporal=client) as resources:
        workers = build_workers(client, resources)
        if freeze_heap:
            await ready_to_freeze(resources)
        running = [asyncio.create_task(w.run(), name=f"worker:{w.task_queue}") for w in workers]
        background = asyncio.create_task(_background(resources, stop), name="background")
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([stopper, *running], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper and task.exception() is not None:
                    log.error("worker stopped: %s", task.exception())
        finally:
            stop.set()
            await asyncio.gather(
                *(w.shutdown() for w in workers if w.is_running), return_exceptions=True
            )
            await asyncio.gather(*running, background, stopper, return_exceptions=True)
    for task in running:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


if __name__ == "__main__":  # python -m service.temporal.worker (what `protocol-lab worker` runs)
    asyncio.run(main())
