"""Timelines straight from Temporal: real histories from the dev server, mapped to rows.

The workflows run in a namespace of their own, so their task queue can be one of the five
real queue names without meeting the service's workers.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio import activity, workflow
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from waiting import eventually

from protocol_lab.analytics import Timelines

pytestmark = pytest.mark.temporal

QUEUE = "itsm-accessories"
MEMO = {
    "workflow_name": "Laptop Provisioning - New Hire",
    "trigger_type": "automatic",
    "priority": "P3",
    "ticket_id": "TKT-9",
}


@activity.defn
async def provision(asset: str) -> str:
    """Pretend to provision an asset."""
    return f"provisioned {asset}"


@workflow.defn
class TinyProvisioning:
    """Provision, wait for an approval signal, then finish or fail."""

    def __init__(self) -> None:
        self.approved = False
        self.stage = "provisioning"

    @workflow.signal
    def approval_received(self) -> None:
        self.approved = True

    @workflow.query
    def current_stage(self) -> str:
        return self.stage

    @workflow.run
    async def run(self, fail: bool) -> str:
        await workflow.execute_activity(
            provision,
            "laptop",
            activity_id="provision_asset",
            start_to_close_timeout=timedelta(seconds=10),
        )
        self.stage = "waiting"
        await workflow.wait_condition(lambda: self.approved)
        if fail:
            raise ApplicationError("approval rejected", non_retryable=True)
        return "done"


async def _namespace_client(client: Client) -> Client:
    name = f"analytics-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=name, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    target = client.service_client.config.target_host

    async def served() -> Client | None:
        try:
            ns_client = await Client.connect(target, namespace=name)
            await ns_client.count_workflows()
        except Exception:  # the namespace is not served yet
            return None
        return ns_client

    return await eventually(served, within_s=30, every_s=0.3)


async def _wait_for_stage(handle: WorkflowHandle[Any, Any], stage: str) -> None:
    async def reached() -> bool:
        return bool(await handle.query(TinyProvisioning.current_stage) == stage)

    await eventually(reached, within_s=10, every_s=0.05)


async def test_from_temporal_maps_real_histories(temporal_client: Client) -> None:
    client = await _namespace_client(temporal_client)
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[TinyProvisioning],
        activities=[provision],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handles = {}
        for key, fail in (("ok", False), ("failed", True), ("cancelled", False)):
            handles[key] = await client.start_workflow(
                TinyProvisioning.run,
                fail,
                id=f"wf_{key}_{uuid.uuid4().hex[:6]}",
                task_queue=QUEUE,
                memo=MEMO,
            )
        for handle in handles.values():
            await _wait_for_stage(handle, "waiting")
        await handles["ok"].signal(TinyProvisioning.approval_received)
        await handles["failed"].signal(TinyProvisioning.approval_received)
        await handles["cancelled"].cancel()
        assert await handles["ok"].result() == "done"
        for key in ("failed", "cancelled"):
            with pytest.raises(WorkflowFailureError):
                await handles[key].result()

    async def all_closed() -> bool:  # visibility is eventually consistent
        return (await client.count_workflows("ExecutionStatus != 'Running'")).count == 3

    await eventually(all_closed, within_s=20, every_s=0.2)

    tl = await Timelines.from_temporal(client, concurrency=2)
    events, workflows = tl.collect()
    rows = {r["workflow_id"]: r for r in workflows.iter_rows(named=True)}
    assert set(rows) == {h.id for h in handles.values()}
    for row in rows.values():
        assert row["workflow_name"] == MEMO["workflow_name"]
        assert (str(row["task_queue"]), str(row["trigger_type"])) == (QUEUE, "automatic")
        assert (row["priority"], row["ticket_id"]) == ("P3", "TKT-9")
    assert str(rows[handles["ok"].id]["outcome"]) == "completed"
    assert str(rows[handles["failed"].id]["outcome"]) == "failed"
    assert rows[handles["failed"].id]["end_detail"] == "approval rejected"
    assert str(rows[handles["cancelled"].id]["outcome"]) == "cancelled"

    ok = events.filter(events["workflow_id"] == handles["ok"].id).sort("timestamp")
    assert [str(e) for e in ok["event"]] == [
        "workflow_started",
        "activity_started",
        "activity_completed",
        "signal_received",
        "workflow_completed",
    ]
    assert ok["step"].to_list() == [
        None,
        "provision_asset",
        "provision_asset",
        "manager_approval",  # the catalog step waiting for "approval_received"
        None,
    ]
    steps = tl.steps().collect()
    approval = steps.filter(
        (steps["workflow_id"] == handles["ok"].id) & (steps["step"] == "manager_approval")
    )
    assert approval["human"].item() is True
    assert approval["human_wait_s"].item() > 0
