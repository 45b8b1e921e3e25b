"""What crosses the wire between the API, the plan workflow and its activities.

The names and payload shapes are defined in :mod:`protocol_lab.domain.wire`, so the library's
history mapper reads them without importing the service; they are re-exported here for the
workflow, its activities and the API.
"""

from __future__ import annotations

from protocol_lab.domain.wire import (
    ACTIVITY_NAMES,
    CANCELLED_FAILURE_TYPE,
    MEMO_STATE,
    PAUSE_UPDATE,
    RESUME_UPDATE,
    SIGNAL_UPDATE,
    STATE_QUERY,
    WORKFLOW_TYPE,
    ControlInput,
    PlanInput,
    SignalInput,
    StepInput,
    StepOutcome,
    WorkflowState,
)

__all__ = [
    "ACTIVITY_NAMES",
    "CANCELLED_FAILURE_TYPE",
    "MEMO_STATE",
    "PAUSE_UPDATE",
    "RESUME_UPDATE",
    "SIGNAL_UPDATE",
    "STATE_QUERY",
    "WORKFLOW_TYPE",
    "ControlInput",
    "PlanInput",
    "SignalInput",
    "StepInput",
    "StepOutcome",
    "WorkflowState",
]
