"""The Temporal side of recurring workflows: what a recurring workflow's Schedule starts.

A recurring workflow (``trigger_type: scheduled`` with a ``schedule``) is a draft in the store
plus a Temporal Schedule (:mod:`service.executions.schedules`). At each time of the schedule,
Temporal starts ``RecurringWorkflowRun``, which runs one activity: it starts a run of the
definition as an ordinary plan workflow, with its own time-ordered id (so runs sort and page
like any workflow) derived from the schedule's time and the run's id, so a retried activity
starts the same run once. The worker registers :func:`workflows` and :func:`activities` on
``itsm-workflows``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

if TYPE_CHECKING:
    from service.state import Resources

__all__ = [
    "RUN_ACTIVITY",
    "RecurringRunInput",
    "RecurringRunResult",
    "RecurringStart",
    "RecurringWorkflowRun",
    "activities",
    "workflows",
]

RUN_ACTIVITY = "start_recurring_run"


@dataclass
class RecurringRunInput:
    """Which recurring workflow a Schedule's action runs."""

    recurring_id: str


@dataclass
class RecurringStart:
    """One run to start: of which recurring workflow, at which time, with which id seed."""

    recurring_id: str
    at: float
    seed: str


@dataclass
class RecurringRunResult:
    """The run started, or None when the recurring workflow no longer exists."""

    recurring_id: str
    workflow_id: str | None


@workflow.defn(name="RecurringWorkflowRun")
class RecurringWorkflowRun:
    """Start one run of a recurring workflow (started by its Temporal Schedule)."""

    @workflow.run
    async def run(self, inp: RecurringRunInput) -> RecurringRunResult:
        """Start the run through the activity; the run itself is a plan workflow of its own."""
        start = RecurringStart(
            recurring_id=inp.recurring_id,
            at=workflow.now().timestamp(),
            seed=workflow.info().workflow_id,
        )
        result: RecurringRunResult = await workflow.execute_activity(
            RUN_ACTIVITY,
            start,
            result_type=RecurringRunResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=20,
            ),
        )
        return result


def workflows() -> list[type]:
    """The workflow classes of recurring workflows, for the worker of ``itsm-workflows``."""
    return [RecurringWorkflowRun]


def activities(resources: Resources) -> list[Callable[..., Any]]:
    """The activity that starts a run, bound to a worker's resources."""

    @activity.defn(name=RUN_ACTIVITY)
    async def start_recurring_run(start: RecurringStart) -> RecurringRunResult:
        """Start the run (idempotent: the same ``start`` gives the same workflow id)."""
        from dataclasses import replace

        from service.executions.drafts import start_recurring_run as start_run

        ctx = replace(resources, temporal=activity.client())
        workflow_id = await start_run(
            ctx, recurring_id=start.recurring_id, at=start.at, seed=start.seed
        )
        return RecurringRunResult(recurring_id=start.recurring_id, workflow_id=workflow_id)

    return [start_recurring_run]
