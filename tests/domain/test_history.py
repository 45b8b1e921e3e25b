"""The history mapper on real histories: an activity starts when a worker begins it.

The workflow's activity runs on a task queue of its own with no worker at first, so it waits
in the queue; the worker comes later and holds the activity while the workflow is signalled.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from waiting import eventually

from protocol_lab.domain.history import build_timeline

pytestmark = pytest.mark.temporal

HELD_S = 1.0


class Gate:
    """The activity, held by the test until it lets it finish."""

    def __init__(self) -> None:
        self.running = asyncio.Event()
        self.release = asyncio.Event()

    @activity.defn(name="check_stock")
    async def check_stock(self, item: str) -> str:
        """Report that the activity runs, then finish when released."""
        self.running.set()
        await self.release.wait()
        return f"{item} in stock"


@workflow.defn
class HeldStep:
    """One activity on the task queue given, under the default retry policy."""

    @workflow.signal
    def note(self) -> None:
        """A signal that changes nothing; it only marks a moment in the history."""

    @workflow.run
    async def run(self, activity_queue: str) -> str:
        result: str = await workflow.execute_activity(
            "check_stock",
            "laptop",
            activity_id="check_stock",
            task_queue=activity_queue,
            start_to_close_timeout=timedelta(seconds=30),
        )
        return result


def _time(event: HistoryEvent) -> float:
    return event.event_time.ToDatetime().timestamp()


async def test_activity_started_is_when_a_worker_begins_it(temporal_client: Client) -> None:
    client = temporal_client
    workflow_queue = f"held-wf-{uuid.uuid4().hex[:8]}"
    activity_queue = f"held-act-{uuid.uuid4().hex[:8]}"
    gate = Gate()
    async with Worker(
        client,
        task_queue=workflow_queue,
        workflows=[HeldStep],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await client.start_workflow(
            HeldStep.run,
            activity_queue,
            id=f"held_{uuid.uuid4().hex[:8]}",
            task_queue=workflow_queue,
        )

        async def queued() -> bool:
            pending = (await handle.describe()).raw_description.pending_activities
            return (
                bool(pending)
                and pending[0].state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
            )

        await eventually(queued, within_s=20)
        history = await handle.fetch_history()
        [scheduled] = [
            e
            for e in history.events
            if e.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        ]
        scheduled_at = _time(scheduled)
        waiting = await build_timeline(handle.id, history.events, converter=client.data_converter)
        # scheduled, no worker: the step has not started
        assert [e.event for e in waiting.events] == ["workflow_started"]

        await eventually(lambda: time.time() >= scheduled_at + HELD_S, within_s=HELD_S + 5)
        worker_at = time.time()
        async with Worker(client, task_queue=activity_queue, activities=[gate.check_stock]):
            await eventually(gate.running.is_set, within_s=20)
            await handle.signal(HeldStep.note)

            async def noted() -> bool:
                events = (await handle.fetch_history()).events
                return any(
                    e.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
                    for e in events
                )

            await eventually(noted, within_s=20)
            gate.release.set()
            assert await handle.result() == "laptop in stock"

    history = await handle.fetch_history()
    kinds = [e.event_type for e in history.events]
    # Temporal writes the started event of a retryable activity when it closes: after the
    # signal that came while it ran, though its time is earlier
    started_event = history.events[kinds.index(HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)]
    assert kinds.index(HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) < kinds.index(
        HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    )

    timeline = await build_timeline(handle.id, history.events, converter=client.data_converter)
    assert [(e.event, e.step) for e in timeline.events] == [
        ("workflow_started", None),
        ("activity_started", "check_stock"),
        ("signal_received", "note"),
        ("activity_completed", "check_stock"),
        ("workflow_completed", None),
    ]
    started = timeline.events[1]
    # the timeline keeps microseconds: the nanosecond event time rounds to within 1 µs
    assert started.timestamp == pytest.approx(_time(started_event), abs=1.5e-6)
    assert started.timestamp >= worker_at > scheduled_at + HELD_S
    assert started.workflow_name == "HeldStep"
    assert started.task_queue == workflow_queue
    stamps = [e.timestamp for e in timeline.events]
    assert stamps == sorted(stamps)
