"""Starting a workflow from a rule action, through the workflow service's starter.

The workflow id is chosen when the execution is recorded and passed on every attempt, so a
firing that is retried starts the workflow once (Temporal refuses a second start of an id).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from typing import Any

from temporalio.exceptions import WorkflowAlreadyStartedError

from service.automation.context import AutomationContext

__all__ = ["start_rule_workflow"]


async def start_rule_workflow(
    ctx: AutomationContext,
    *,
    workflow_id: str,
    name: str,
    task_queue: str,
    trigger_type: str,
    input: dict[str, Any],
) -> str:
    """Start catalog workflow ``name`` under ``workflow_id``; return the id (idempotent)."""
    starter = importlib.import_module("service.workflows.starter")
    params = inspect.signature(starter.start_workflow).parameters
    kwargs: dict[str, Any] = {
        "name": name,
        "task_queue": task_queue,
        "trigger_type": trigger_type,
        "input": input,
        "workflow_id": workflow_id,
    }
    for candidate in ("client", "temporal"):
        if candidate in params:
            kwargs[candidate] = ctx.temporal
    if "catalog" in params:
        kwargs["catalog"] = ctx.catalog
    if "settings" in params:
        kwargs["settings"] = ctx.settings
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await starter.start_workflow(**kwargs)
    return workflow_id
