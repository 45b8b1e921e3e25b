"""The Temporal Schedules of recurring workflows: one per recurring workflow.

The schedule ``workflow-schedule-<workflow id>`` starts ``RecurringWorkflowRun`` on
``itsm-workflows`` on the workflow's cron expression or interval (one run at a time: a run due
while the previous start is still under way is skipped); it is deleted when the recurring
workflow is cancelled.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError, RPCStatusCode

from protocol_lab.domain import TaskQueue
from service.errors import InvalidRequestError, ServiceError
from service.executions.context import RPC_TIMEOUT, temporal_errors
from service.executions.recurring import RecurringRunInput, RecurringWorkflowRun
from service.settings import Settings
from service.temporal.queues import temporal_queue

__all__ = [
    "MAX_SCHEDULES_PER_CALLER",
    "SCHEDULE_PREFIX",
    "create_recurring_schedule",
    "delete_recurring_schedule",
    "recurring_schedule_id",
]

SCHEDULE_PREFIX: Final = "workflow-schedule-"
MAX_SCHEDULES_PER_CALLER: Final = 20


def recurring_schedule_id(workflow_id: str) -> str:
    """The Temporal Schedule id of a recurring workflow."""
    return SCHEDULE_PREFIX + workflow_id


def _spec(schedule: dict[str, Any]) -> ScheduleSpec:
    cron = schedule.get("cron")
    if cron is not None:
        return ScheduleSpec(cron_expressions=[str(cron)])
    return ScheduleSpec(
        intervals=[ScheduleIntervalSpec(every=timedelta(seconds=float(schedule["interval_s"])))]
    )


async def create_recurring_schedule(
    client: Client, *, workflow_id: str, name: str, schedule: dict[str, Any], settings: Settings
) -> None:
    """Create the schedule of recurring workflow ``workflow_id`` (idempotent); its runs start on
    the recurring workflows' task queue of ``settings``.

    InvalidRequestError when Temporal refuses the cron expression, UnavailableError when it
    is unavailable.
    """
    action = ScheduleActionStartWorkflow(
        RecurringWorkflowRun.run,
        RecurringRunInput(recurring_id=workflow_id),
        id=f"recurring-run-{workflow_id}",
        task_queue=temporal_queue(settings, TaskQueue.WORKFLOWS.value),
        execution_timeout=timedelta(minutes=30),
    )
    try:
        with temporal_errors():
            await client.create_schedule(
                recurring_schedule_id(workflow_id),
                Schedule(
                    action=action,
                    spec=_spec(schedule),
                    policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
                    state=ScheduleState(note=f"recurring workflow {name!r} ({workflow_id})"),
                ),
                rpc_timeout=RPC_TIMEOUT,
            )
    except ScheduleAlreadyRunningError:
        return
    except ServiceError as exc:
        if isinstance(exc, InvalidRequestError) and schedule.get("cron") is not None:
            raise InvalidRequestError(f"schedule.cron: {exc.message}") from None
        raise


async def delete_recurring_schedule(client: Client, *, workflow_id: str) -> None:
    """Delete the schedule of recurring workflow ``workflow_id`` if there is one."""
    handle = client.get_schedule_handle(recurring_schedule_id(workflow_id))
    with temporal_errors():
        try:
            await handle.delete(rpc_timeout=RPC_TIMEOUT)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
