"""Starting a workflow from a rule action, through the workflow service's starter.

The workflow id is chosen when the execution is recorded and passed on every attempt, so a
firing that is retried starts the workflow once (the starter returns the first execution).
A refusal of the request itself (unknown workflow, queue or trigger type) cannot succeed on
retry and is raised as ``ActionError``; Temporal being unavailable is raised as it is.
"""

from __future__ import annotations

from typing import Any

from service.automation.context import AutomationContext
from service.errors import ServiceError, UnavailableError
from service.executions import definitions, starter

__all__ = ["ActionError", "start_rule_workflow", "workflow_defined"]


class ActionError(Exception):
    """An action that cannot succeed however often it is tried (recorded as failed)."""


async def workflow_defined(ctx: AutomationContext, name: str) -> bool:
    """True when ``name`` is a defined workflow: the catalog's or one stored over the API."""
    return bool(await definitions.workflow_defined(ctx, name))


async def start_rule_workflow(
    ctx: AutomationContext,
    *,
    workflow_id: str,
    name: str,
    task_queue: str,
    trigger_type: str,
    input: dict[str, Any],
) -> str:
    """Start the newest version of workflow ``name`` (catalog or stored definition) under
    ``workflow_id``; return the id (idempotent)."""
    try:
        started = await starter.start_workflow(
            ctx,
            name=name,
            task_queue=task_queue,
            trigger_type=trigger_type,
            input=input,
            workflow_id=workflow_id,
        )
    except ServiceError as exc:
        if not isinstance(exc, UnavailableError):
            raise ActionError(exc.message) from exc
        raise
    return str(started.get("id", workflow_id)) if isinstance(started, dict) else workflow_id
