"""The workflow resource's schema family: requests, the workflow object, pages, status views."""

from __future__ import annotations

import re
import time
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from protocol_lab.domain import EventType, Outcome, Step, TaskQueue, TriggerType, WorkflowStatus

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
    "WorkflowDefinition",
    "WorkflowDefinitionList",
    "WorkflowDefinitionWrite",
    "WorkflowPage",
    "WorkflowSchedule",
    "WorkflowStatusView",
]

MAX_START_AHEAD_S: Final = 366 * 86400
MIN_INTERVAL_S: Final = 60.0
MAX_INTERVAL_S: Final = 366 * 86400.0
MAX_CRON_CHARS: Final = 100
_CRON_MACROS: Final = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly")
_CRON_FIELD: Final = re.compile(r"^[0-9A-Za-z*/,-]{1,30}$")
MAX_ARCHIVE_AGE_S: Final = 10 * 366 * 86400
MAX_NAME_CHARS: Final = 200
MAX_DICT_KEYS: Final = 50
MAX_DEFINITION_STEPS: Final = 50
MAX_DEFINITION_DESCRIPTION: Final = 2000
MAX_CATEGORY_CHARS: Final = 64


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
    step: str | None = Field(default=None, description="the plan's step id, where one applies")
    attempt: int | None = Field(
        default=None, ge=1, description="the attempt number of an activity (1 for the first)"
    )
    outcome: Outcome | None = Field(
        default=None,
        description="why a step or the workflow ended: completed, timed_out, rejected,"
        " cancelled or failed (on closing events)",
    )
    actor: str | None = Field(
        default=None, description="who acted: the sender of a signal, the approver of a rejection"
    )


class Workflow(BaseModel):
    """A single durable execution within Temporal, with its full timeline."""

    id: str = Field(
        description="unique identifier: wf_ + 14 base62 characters, time-ordered"
        " (ids made before this form have 11)"
    )
    name: str = Field(
        description="the workflow definition this execution runs (GET /v1/workflow-definitions)"
    )
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
    ticket_id: str | None = Field(
        default=None, description="the ticket the workflow was started for (its input's ticket_id)"
    )
    timeline: list[TimelineEntry]


class WorkflowPage(BaseModel):
    """A page of workflows, newest first."""

    has_more: bool
    data: list[Workflow]


class WorkflowSchedule(BaseModel):
    """When a recurring scheduled workflow runs: a cron expression or an interval (one of them).

    Each run is a new workflow execution of the newest version of the definition (its input
    carries ``schedule_id``, the recurring workflow's id), started by a Temporal Schedule.
    """

    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(
        default=None,
        max_length=MAX_CRON_CHARS,
        description="5 fields in UTC (minute hour day-of-month month day-of-week), e.g."
        " '0 9 * * MON-FRI', or @hourly, @daily, @weekly, @monthly, @yearly",
        examples=["0 9 * * MON-FRI"],
    )
    interval_s: float | None = Field(
        default=None,
        ge=MIN_INTERVAL_S,
        le=MAX_INTERVAL_S,
        allow_inf_nan=False,
        description=f"run every this many seconds (at least {MIN_INTERVAL_S:g})",
    )

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, cron: str | None) -> str | None:
        if cron is None or cron.strip() in _CRON_MACROS:
            return None if cron is None else cron.strip()
        fields = cron.split()
        if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
            raise ValueError(
                "a cron expression has 5 fields (minute hour day-of-month month day-of-week)"
                f" of digits, names and * / , -, or is one of {', '.join(_CRON_MACROS)}"
            )
        return " ".join(fields)

    @model_validator(mode="after")
    def _exactly_one(self) -> WorkflowSchedule:
        if (self.cron is None) == (self.interval_s is None):
            raise ValueError("give exactly one of cron and interval_s")
        return self


class WorkflowCreate(BaseModel):
    """Create a workflow execution: it starts at once unless ``trigger_type`` is scheduled.

    A scheduled workflow starts at ``start_at`` (one time; a draft until then), runs on a
    recurring ``schedule`` (cron or interval; the created workflow is the draft its runs are
    started from), or, with neither, is created as a draft that
    ``POST /v1/workflows/{id}/start`` starts.
    """

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
        min_length=1,
        max_length=MAX_NAME_CHARS,
        description="a defined workflow's name (GET /v1/workflow-definitions lists them)",
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
    schedule: WorkflowSchedule | None = Field(
        default=None,
        description="for trigger_type scheduled, instead of start_at: run again and again on"
        " a cron expression or an interval (Temporal Schedule); at most"
        " MAX_SCHEDULES_PER_CALLER (20) per API token",
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
    """The answer to a signal: whether the workflow will act on it, from its recorded state."""

    id: str
    signal_name: str
    accepted: bool = Field(
        description="true: sent durably (taken even if no worker runs now); false: not sent,"
        " the workflow would not act on it (see reason)"
    )
    reason: str | None = Field(
        default=None,
        description="why the signal was not accepted: its plan has no such signal, or its step"
        " is over (already received or timed out)",
    )
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


_DEFINITION_EXAMPLE: Final[dict[str, Any]] = {
    "task_queue": "itsm-workflows",
    "description": "Grant a shared mailbox after the owner approves.",
    "category": "access",
    "steps": [
        {
            "id": "owner_approval",
            "kind": "signal",
            "signal": "approval_received",
            "detail": "Awaiting mailbox owner approval",
            "done": "Mailbox owner approved",
            "timeout_s": 86400,
            "on_timeout": "fail",
        },
        {
            "id": "grant_access",
            "kind": "activity",
            "activity": "integration",
            "integration": "exchange",
            "detail": "Granting mailbox access",
            "done": "Mailbox access granted",
            "params": {"operation": "grant"},
            "duration": {"dist": "fixed", "seconds": 5},
        },
    ],
}


class WorkflowDefinitionWrite(BaseModel):
    """A workflow definition to add (POST) or to version (PUT), as in ``data/definitions/*.yaml``.

    Steps run in order: ``kind: activity`` steps (``activity`` one of integration,
    ticket_update, asset_reserve, asset_release, asset_assign, enqueue_job; a retry policy, a
    ``timeout_s`` and an optional compensation) and ``kind: signal`` steps (wait for
    ``signal`` at most ``timeout_s``, then ``on_timeout``: fail, continue or cancel). Bounded:
    at most 50 steps, texts of 200 characters, ids of 64, timeouts of 30 days, 64 KiB in all.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_DEFINITION_EXAMPLE]})

    name: str | None = Field(
        default=None,
        max_length=100,
        description="the workflow's name; in PUT/POST .../{name} optional and equal to the path's",
    )
    task_queue: TaskQueue = Field(description="the task queue its executions usually run on")
    description: str = Field(default="", max_length=MAX_DEFINITION_DESCRIPTION)
    category: str | None = Field(default=None, max_length=MAX_CATEGORY_CHARS)
    steps: list[Step] = Field(
        min_length=1, max_length=MAX_DEFINITION_STEPS, description="the plan, in order"
    )


class WorkflowDefinition(BaseModel):
    """One version of a workflow definition: what ``POST /v1/workflows`` and rules can start.

    The catalog's definitions are version 1 (``builtin`` true); each PUT stores the next
    version, which new executions use; running executions keep the version they started with.
    """

    name: str = Field(description="the name workflows and rules refer to")
    version: int = Field(ge=1, description="1 for the built-in catalog, then +1 per PUT")
    builtin: bool = Field(description="true for the catalog's own version 1")
    task_queue: TaskQueue
    description: str
    category: str | None
    signals: list[str] = Field(description="the signal names its signal steps wait for, sorted")
    steps: list[Step] = Field(description="the plan with each step's signal and timeouts")
    created_at: float | None = Field(
        description="Unix seconds this version was stored; null for the built-in catalog"
    )


class WorkflowDefinitionList(BaseModel):
    """The newest version of every defined workflow, by name (bounded: at most a few hundred)."""

    data: list[WorkflowDefinition]
