"""Task queue prefixes: two services on one Temporal namespace, each with its own prefix, do not
take each other's tasks, and both speak the spec's task queue names to their clients."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from waiting import eventually

from service.executions import get_status, get_workflow, list_workflows, start_workflow
from service.settings import Settings
from service.state import Resources
from service.temporal.queues import spec_queue, temporal_queue
from service.temporal.worker import build_workers

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

NAME, QUEUE = "VPN Access Revocation", "itsm-network"
# fast enough that the revocation completes on its timeouts within seconds
TIME_SCALE = 100_000.0


@pytest.fixture
async def two_services(
    service_settings: Settings, temporal_client: Client
) -> AsyncIterator[tuple[Resources, Resources]]:
    """The resources of two services on the session's Temporal, each with a prefix of its own."""
    opened = []
    for name in ("one", "two"):
        prefix = f"{name}-{uuid.uuid4().hex[:8]}-"
        settings = service_settings.model_copy(update={"task_queue_prefix": prefix})
        opened.append(await Resources.open(settings, temporal=temporal_client))
    try:
        yield opened[0], opened[1]
    finally:
        for resources in opened:
            await resources.close()


def test_the_prefix_goes_before_the_spec_name_and_comes_off_again() -> None:
    settings = Settings(task_queue_prefix="pr-7-")
    assert temporal_queue(settings, "itsm-fleet") == "pr-7-itsm-fleet"
    assert spec_queue(settings, "pr-7-itsm-fleet") == "itsm-fleet"
    assert spec_queue(settings, "elsewhere") == "elsewhere"
    assert temporal_queue(Settings(), "itsm-fleet") == "itsm-fleet"  # no prefix: the spec's name


async def test_a_worker_takes_only_the_tasks_of_its_prefix(
    two_services: tuple[Resources, Resources], temporal_client: Client
) -> None:
    one, two = two_services
    # the second service's workflow is started first: a worker sharing its queue would take it
    theirs = (await start_workflow(two, name=NAME, task_queue=QUEUE, time_scale=TIME_SCALE))["id"]
    [worker] = build_workers(temporal_client, one, task_queues=[QUEUE])
    async with worker:
        ours = (await start_workflow(one, name=NAME, task_queue=QUEUE, time_scale=TIME_SCALE))["id"]

        async def completed() -> bool:
            return bool((await get_status(one, ours))["status"] == "completed")

        await eventually(completed, within_s=60)

    # no worker of the second service ran, and the first's took nothing of its workflow
    history = await temporal_client.get_workflow_handle(theirs).fetch_history()
    kinds = [event.event_type for event in history.events]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED not in kinds, kinds
    described = await temporal_client.get_workflow_handle(theirs).describe()
    assert described.task_queue == temporal_queue(two.settings, QUEUE)

    # each service lists and shows its own workflows under the spec's queue name
    for resources, mine, other in ((one, ours, theirs), (two, theirs, ours)):
        view = await get_workflow(resources, mine)
        assert view["task_queue"] == QUEUE
        listed, _ = await list_workflows(resources, task_queue=QUEUE, limit=100)
        ids = {item["id"] for item in listed}
        assert mine in ids
        assert other not in ids
        assert {item["task_queue"] for item in listed} == {QUEUE}

    [worker] = build_workers(temporal_client, two, task_queues=[QUEUE])
    async with worker:

        async def theirs_completed() -> bool:
            return bool((await get_status(two, theirs))["status"] == "completed")

        await eventually(theirs_completed, within_s=60)
