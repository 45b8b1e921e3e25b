"""What crosses the wire between the API, the plan workflow and its activities.

One dataclass in, one value out (fields can be added without breaking running histories).
The workflow's type, update and memo names and these payload shapes are also what the history
mapper (:mod:`protocol_lab.domain.history`) reads back, so they live in the domain. This module
imports nothing heavy, so the workflow sandbox can pass it through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "ACTIVITY_NAMES",
    "CANCELLED_FAILURE_TYPE",
    "MEMO_STATE",
    "PAUSE_UPDATE",
    "PLAN_SIGNAL",
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

WORKFLOW_TYPE: Final = "ProtocolPlan"
# A plan's signals arrive as this Temporal signal (the server keeps it durably, so it is taken
# even when no worker runs at the time); SIGNAL_UPDATE, the update that carried them before, is
# still handled for executions that began then.
PLAN_SIGNAL: Final = "plan_signal"
SIGNAL_UPDATE: Final = "signal"
PAUSE_UPDATE: Final = "pause"
RESUME_UPDATE: Final = "resume"
STATE_QUERY: Final = "state"
MEMO_STATE: Final = "state"
# ApplicationError type of a workflow ended by an ``on_timeout: cancel`` signal wait.
CANCELLED_FAILURE_TYPE: Final = "WorkflowCancelled"

# activity kind (catalog) -> registered activity name
ACTIVITY_NAMES: Final[dict[str, str]] = {
    "integration": "integration_call",
    "ticket_update": "ticket_update",
    "asset_reserve": "asset_reserve",
    "asset_release": "asset_release",
    "asset_assign": "asset_assign",
    "enqueue_job": "enqueue_job",
}


@dataclass
class PlanInput:
    """The input of one plan execution: the plan itself is a snapshot taken at start.

    Keeping the plan in the history makes a running execution immune to catalog edits and lets
    the timeline be rebuilt from the history alone.
    """

    name: str
    task_queue: str
    trigger_type: str
    plan: dict[str, Any]
    input: dict[str, Any] = field(default_factory=dict)
    time_scale: float = 1.0
    start_at: float | None = None


@dataclass
class StepInput:
    """The input of one activity (a plan step or the compensation of one)."""

    workflow_id: str
    workflow_name: str
    step_id: str
    activity: str
    detail: str
    done: str
    integration: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    duration: dict[str, Any] | None = None
    failure_probability: float = 0.0
    time_scale: float = 1.0
    ticket_id: str | None = None
    input: dict[str, Any] = field(default_factory=dict)
    compensation: bool = False


@dataclass
class StepOutcome:
    """What an activity did: a note for the history (the timeline uses the plan's own text, as
    the simulator does), whether it was emulated, and any produced values."""

    detail: str
    emulated: bool = False
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class SignalInput:
    """A signal for a plan step (the :data:`PLAN_SIGNAL` signal's argument).

    ``request_id`` (from the request's Idempotency-Key) makes a repeated delivery a no-op.
    """

    signal_name: str
    payload: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None


@dataclass
class ControlInput:
    """Input of the pause and resume updates."""

    reason: str = ""


@dataclass
class WorkflowState:
    """The execution's own view of itself: answered by the ``state`` query and kept in the memo."""

    status: str
    current_step: str | None
    current_step_id: str | None
    steps_completed: int
    steps_total: int
    awaiting_signal: str | None = None
    paused: bool = False
    signals_received: list[str] = field(default_factory=list)
    # every signal the plan has, and those it still acts on (its steps not yet over)
    plan_signals: list[str] | None = None
    awaited_signals: list[str] | None = None
    # the request ids of the signals it took (a retried request is answered as the first)
    signal_requests: list[str] | None = None
    # last transition, for the timeline: {"event": ..., "step": ..., "detail": ...}
    transition: dict[str, Any] | None = None
