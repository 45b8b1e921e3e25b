"""The workflow resource's schema family: requests, the workflow object, pages, status views."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocol_lab.domain import EventType, TaskQueue, TriggerType, WorkflowStatus

__all__ = [
    "ArchiveRequest",
    "ArchiveResult",
    "CancelRequest",
    "CancelResult",
    "ControlRequest",
    "ControlResult",
    "SignalRequest",
    "SignalResult",
    "TimelineEntry",
    "Timestamps",
    "UnixTime",
    "Workflow",
    "WorkflowCreate",
    "WorkflowPage",
    "WorkflowStatusView",
]

MAX_START_AHEAD_S: Final = 366 * 86400
MAX_ARCHIVE_AGE_S: Final = 10 * 366 * 86400
MAX_NAME_CHARS: Final = 200
MAX_DICT_KEYS: Final = 50


class Timestamps(StrEnum):
    """How the workflow reads write their timestamps (query parameter ``timestamps``)."""

    INT = "int"
    FLOAT = "float"


# Unix seconds: whole (an integer) by default; with timestamps=float a number with the
# sub-second part, whose floor is the whole-second value.
UnixTime = int | float


class TimelineEntry(BaseModel):
    """One execution event of a workflow's timeline."""

    event: EventType = Field(description="what happened")
    timestamp: UnixTime = Field(
        description="when, Unix seconds (a float with timestamps=float, else whole seconds)"
    )
    detail: str | None = Field(default=None, description="the plan's text for the step")


class Workflow(BaseModel):
    """A single durable execution within Temporal, with its full timeline."""

    id: str = Field(description="unique identifier, wf_ + 11 base62 characters")
    name: str = Field(description="the catalog definition this execution runs")
    status: WorkflowStatus = Field(
        description="draft (scheduled, not started), active, paused, completed, failed, archived"
    )
    trigger_type: TriggerType
    task_queue: TaskQueue
    started_at: UnixTime | None = Field(
        description="Unix seconds the execution started (for a draft: when it will start);"
        " a float with timestamps=float"
    )
    completed_at: UnixTime | None = Field(
        description="Unix seconds it closed, null while running; a float with timestamps=float"
    )
    timeline: list[TimelineEntry]


class WorkflowPage(BaseModel):
    """A page of workflows, newest first."""

    has_more: bool
    data: list[Workflow]


class WorkflowCreate(BaseModel):
    """Create and start a workflow execution."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "VPN Access Revocation",
                    "task_queue": "itsm-network",
                    "trigger_type": "manual",
                    "input": {"ticket_id": "TKT-5102", "user_id": "usr_9xKmPq"},
                }
            ]
        }
    )

    name: str = Field(
        min_length=1, max_length=MAX_NAME_CHARS, description="a workflow name of the catalog"
    )
    task_queue: TaskQueue = Field(description="the Temporal task queue to run on")
    trigger_type: TriggerType = Field(default=TriggerType.MANUAL)
    input: dict[str, Any] = Field(
        default_factory=dict,
        max_length=MAX_DICT_KEYS,
        description="input parameters (ticket_id, user_id, ...)",
    )
    start_at: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="for trigger_type scheduled: Unix seconds to start at (draft until then),"
        " at most a year ahead",
    )
    time_scale: float | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        allow_inf_nan=False,
        description="divides every timer and emulated duration (default: the server's)",
    )

    @field_validator("start_at")
    @classmethod
    def _within_a_year(cls, start_at: float | None) -> float | None:
        if start_at is not None and start_at > time.time() + MAX_START_AHEAD_S:
            raise ValueError(f"must be at most {MAX_START_AHEAD_S} s ahead")
        return start_at


class WorkflowStatusView(BaseModel):
    """Lightweight status for polling, read without the history."""

    id: str
    status: WorkflowStatus
    current_step: str | None = Field(description="text of the step in progress")
    steps_completed: int
    steps_total: int
    started_at: UnixTime | None = Field(
        description="Unix seconds the execution started; a float with timestamps=float"
    )
    elapsed_seconds: int = Field(description="seconds since start (until close when closed)")


class SignalRequest(BaseModel):
    """A signal for a running workflow."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "signal_name": "approval_received",
                    "payload": {"approved_by": "usr_3mKpLq", "decision": "approved"},
                }
            ]
        }
    )

    signal_name: str = Field(
        min_length=1,
        max_length=MAX_NAME_CHARS,
        description="e.g. approval_received, user_responded",
    )
    payload: dict[str, Any] = Field(
        default_factory=dict,
        max_length=MAX_DICT_KEYS,
        description="data for the workflow; decision 'rejected' or 'denied' ends it as failed",
    )


class SignalResult(BaseModel):
    """The workflow's answer to a signal."""

    id: str
    signal_name: str
    accepted: bool
    status: WorkflowStatus
    current_step: str | None


class CancelRequest(BaseModel):
    """Optional body of a cancellation."""

    reason: str | None = Field(default=None, max_length=500, description="recorded in the timeline")


class ControlRequest(BaseModel):
    """Optional body of a pause or a resume."""

    reason: str | None = Field(default=None, max_length=500, description="recorded in the timeline")


class CancelResult(BaseModel):
    """A cancelled workflow: compensations ran, status failed."""

    id: str
    status: WorkflowStatus
    cancelled_at: int
    timeline: list[TimelineEntry]


class ControlResult(BaseModel):
    """The state after a pause or a resume."""

    id: str
    status: WorkflowStatus
    current_step: str | None
    steps_completed: int
    steps_total: int


class ArchiveRequest(BaseModel):
    """Optional body of an archiving run."""

    older_than_s: float | None = Field(
        default=None,
        ge=0,
        le=MAX_ARCHIVE_AGE_S,
        allow_inf_nan=False,
        description="archive workflows closed more than this many seconds ago"
        " (default: the server's ARCHIVE_AFTER_S)",
    )


class ArchiveResult(BaseModel):
    """How many closed workflows moved to the archive."""

    archived: int
