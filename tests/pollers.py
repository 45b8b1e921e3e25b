"""Whether a worker polls: the readiness check the tests wait on before they give it work."""

from __future__ import annotations

from collections.abc import Iterable

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue as TaskQueueRef
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

__all__ = ["polled"]


async def polled(
    client: Client,
    queues: Iterable[str],
    kind: TaskQueueType.ValueType = TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
) -> bool:
    """True when every one of ``queues`` has a poller of ``kind`` (workflow or activity)."""
    for queue in queues:
        answer = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueueRef(name=queue),
                task_queue_type=kind,
            )
        )
        if not answer.pollers:
            return False
    return True
