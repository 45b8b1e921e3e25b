"""Whether workers poll Temporal task queues: the readiness check before work is handed over.

The embedded stack waits on it before it calls itself started, a sweep before it starts its
runs, and the tests before they give a worker work. It needs the ``temporal`` extra.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from temporalio.client import Client

__all__ = ["TaskKind", "polled"]

TaskKind = Literal["workflow", "activity"]


async def polled(
    client: Client,
    task_queues: Iterable[str],
    kinds: Iterable[TaskKind] = ("workflow", "activity"),
) -> bool:
    """True when every one of ``task_queues`` has a poller for each of ``kinds`` of task."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    types = {
        "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    }
    wanted = [types[kind] for kind in kinds]
    for queue in task_queues:
        for task_type in wanted:
            answer = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=queue),
                    task_queue_type=task_type,
                )
            )
            if not answer.pollers:
                return False
    return True
