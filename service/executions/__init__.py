"""The workflow service: what the API's workflow endpoints (and the automation engine) call."""

from service.workflows.archive import archive_closed_workflows
from service.workflows.context import ArchiveContext, TemporalContext
from service.workflows.control import (
    cancel_workflow,
    claim_cancel_key,
    pause_workflow,
    resume_workflow,
    signal_workflow,
)
from service.workflows.queries import get_status, get_workflow, list_workflows
from service.workflows.starter import start_workflow

__all__ = [
    "ArchiveContext",
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
