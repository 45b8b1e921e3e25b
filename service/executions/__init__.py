"""Workflow executions, the service layer: what the API's workflow endpoints and the automation
engine call to start, read, list, control and archive executions on Temporal."""

from service.executions.archive import archive_closed_workflows
from service.executions.context import TemporalContext
from service.executions.control import (
    cancel_workflow,
    claim_cancel_key,
    pause_workflow,
    resume_workflow,
    signal_workflow,
)
from service.executions.queries import get_status, get_workflow, list_workflows
from service.executions.starter import start_workflow

__all__ = [
    "TemporalContext",
    "archive_closed_workflows",
    "cancel_workflow",
    "claim_cancel_key",
    "get_status",
    "get_workflow",
    "list_workflows",
    "pause_workflow",
    "resume_workflow",
    "signal_workflow",
    "start_workflow",
]
