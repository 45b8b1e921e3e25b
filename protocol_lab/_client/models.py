"""The API's answers as typed objects: pydantic models of the schemas in its OpenAPI document.

Every answer the client returns is an :class:`ApiModel`: its fields are attributes
(``workflow.status``, ``workflow.timeline[0].event``) and :attr:`ApiModel.raw` is the JSON
object exactly as the API sent it (keys the model does not know, and keys the API left out,
stay as they were). A model names the OpenAPI schema it mirrors in ``openapi_schema``;
``tests/client/test_live_service.py`` compares every model with the served ``/openapi.json``
field by field (names, types and enums, required-ness), so the two cannot drift unnoticed.

These models are the library's own: the service's are not imported (the library never
imports ``service``). The value vocabularies (statuses, events, task queues, triggers,
priorities) and the workflow steps come from :mod:`protocol_lab.domain`, which the service
shares.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from protocol_lab.domain.catalog import Step
from protocol_lab.domain.queues import JobQueue, TaskQueue
from protocol_lab.domain.rules import Trigger
from protocol_lab.domain.tickets import Priority, TicketStatus
from protocol_lab.domain.timeline import EventType, Outcome, TriggerType
from protocol_lab.domain.timeline import WorkflowStatus as WorkflowState

__all__ = [
    "MODELS",
    "Action",
    "ApiModel",
    "CancelResult",
    "ControlResult",
    "Deleted",
    "DryRunResult",
    "PageData",
    "QueueCounts",
    "QueueList",
    "Rule",
    "RuleExecution",
    "SecretRotated",
    "SendNotificationAction",
    "SignalResult",
    "StartWorkflowAction",
    "Ticket",
    "TimelineEntry",
    "ToggleResult",
    "UpdateFieldAction",
    "Workflow",
    "WorkflowDefinition",
    "WorkflowDefinitionList",
    "WorkflowState",
    "WorkflowStatus",
    "warn_subscript",
]

JSONObject = dict[str, Any]
ItemT = TypeVar("ItemT", bound="ApiModel")

# Unix seconds: whole seconds by default, a float with the sub-second part on request.
UnixTime = int | float


class ApiModel(BaseModel):
    """Base of every answer: typed fields, plus the JSON as received in :attr:`raw`.

    Fields the model does not declare are kept (``extra="allow"``), so a newer service's
    additions survive a round trip through an older client.
    """

    model_config = ConfigDict(extra="allow")

    openapi_schema: ClassVar[str] = ""
    _raw: JSONObject | None = PrivateAttr(default=None)

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """The model of ``data`` (a decoded JSON object), remembering ``data`` as :attr:`raw`.

        Raises ``pydantic.ValidationError`` when ``data`` does not have the schema's shape.
        """
        model = cls.model_validate(data)
        model._raw = data
        return model

    @property
    def raw(self) -> JSONObject:
        """The JSON object as the API sent it (for a model built in code: its JSON form)."""
        if self._raw is None:
            return self.model_dump(mode="json", exclude_unset=True)
        return self._raw

    def __getitem__(self, key: str) -> Any:
        """Deprecated dict-style read of the raw JSON (``workflow["id"]``).

        The client returned plain dicts before it returned models; use the attribute
        (``workflow.id``) or :attr:`raw` (``workflow.raw["id"]``).
        """
        warn_subscript(type(self).__name__, key)
        return self.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Deprecated dict-style read of the raw JSON with a default; see :meth:`__getitem__`."""
        warn_subscript(type(self).__name__, key)
        return self.raw.get(key, default)

    def __contains__(self, key: object) -> bool:
        """Deprecated dict-style test of a key of the raw JSON (``"reason" in answer``).

        Kept so that such a test does not silently become False: use :attr:`raw`.
        """
        warn_subscript(type(self).__name__, str(key))
        return key in self.raw


def warn_subscript(model: str, key: str) -> None:
    """Warn that dict-style reads of a client answer are deprecated (the models replace them)."""
    warnings.warn(
        f"{model}[{key!r}]: the client returns models now; use the attribute "
        f"(.{key}) or .raw[{key!r}] for the JSON as received",
        DeprecationWarning,
        stacklevel=3,
    )


class PageData(ApiModel, Generic[ItemT]):
    """The wire shape of one page of a list: ``{"has_more": bool, "data": [item, ...]}``.

    The clients hand it out wrapped in ``Page`` / ``AsyncPage``, which can fetch the next
    pages; this model is what the OpenAPI's ``*Page`` schemas describe.
    """

    has_more: bool
    data: list[ItemT]


# -- workflows -------------------------------------------------------------------------------


class TimelineEntry(ApiModel):
    """One event of a workflow's timeline."""

    openapi_schema: ClassVar[str] = "TimelineEntry"

    event: EventType
    timestamp: UnixTime
    detail: str | None = None
    step: str | None = None
    attempt: int | None = None
    outcome: Outcome | None = None
    actor: str | None = None


class Workflow(ApiModel):
    """A workflow execution with its timeline (``GET /v1/workflows/{id}``, lists, creates)."""

    openapi_schema: ClassVar[str] = "Workflow"

    id: str
    name: str
    status: WorkflowState
    trigger_type: TriggerType
    task_queue: TaskQueue
    started_at: UnixTime | None
    completed_at: UnixTime | None
    ticket_id: str | None = None
    timeline: list[TimelineEntry]


class WorkflowStatus(ApiModel):
    """A workflow's progress (``GET /v1/workflows/{id}/status``).

    Its ``status`` is one of :class:`WorkflowState` (the domain's workflow statuses).
    """

    openapi_schema: ClassVar[str] = "WorkflowStatusView"

    id: str
    status: WorkflowState
    current_step: str | None
    steps_completed: int
    steps_total: int
    started_at: UnixTime | None
    elapsed_seconds: int


class SignalResult(ApiModel):
    """The answer to a signal: ``accepted`` (sent durably) or not, with the ``reason``."""

    openapi_schema: ClassVar[str] = "SignalResult"

    id: str
    signal_name: str
    accepted: bool
    reason: str | None = None
    status: WorkflowState
    current_step: str | None


class CancelResult(ApiModel):
    """The answer to a cancel: the workflow's status and its timeline so far."""

    openapi_schema: ClassVar[str] = "CancelResult"

    id: str
    status: WorkflowState
    cancelled_at: int
    timeline: list[TimelineEntry]


class ControlResult(ApiModel):
    """The answer to a pause or a resume: the workflow's status and progress."""

    openapi_schema: ClassVar[str] = "ControlResult"

    id: str
    status: WorkflowState
    current_step: str | None
    steps_completed: int
    steps_total: int


class WorkflowDefinition(ApiModel):
    """One version of a workflow definition: what workflows and rules can start."""

    openapi_schema: ClassVar[str] = "WorkflowDefinition"

    name: str
    version: int
    builtin: bool
    task_queue: TaskQueue
    description: str
    category: str | None
    signals: list[str]
    steps: list[Step]
    created_at: float | None


class WorkflowDefinitionList(ApiModel):
    """The newest version of every defined workflow (``GET /v1/workflow-definitions``)."""

    openapi_schema: ClassVar[str] = "WorkflowDefinitionList"

    data: list[WorkflowDefinition]


# -- automation rules ------------------------------------------------------------------------


class StartWorkflowAction(ApiModel):
    """A rule action that starts a workflow on a task queue."""

    type: Literal["start_workflow"]
    workflow_name: str
    task_queue: TaskQueue
    trigger_type: Literal["automatic", "event_based"] = "automatic"
    input: dict[str, Any] = Field(default_factory=dict)


class SendNotificationAction(ApiModel):
    """A rule action that queues a notification or an e-mail."""

    type: Literal["send_notification"]
    channel: Literal["notification", "email"] = "notification"
    recipient: str
    message: str
    subject: str | None = None


class UpdateFieldAction(ApiModel):
    """A rule action that sets one writable field of the ticket."""

    type: Literal["update_field"]
    field: Literal["assignee", "category", "description", "priority", "status", "title"]
    value: str | None


Action = Annotated[
    StartWorkflowAction | SendNotificationAction | UpdateFieldAction,
    Field(discriminator="type"),
]
"""One action of a rule, told apart by its ``type``."""


class Rule(ApiModel):
    """An automation rule, answered as it was written.

    ``action`` or ``actions`` is set, as the rule was written; the schedule fields only for a
    scheduled rule, ``webhook_url`` only for a webhook rule, ``secret`` only in the answer that
    creates it (see :attr:`ApiModel.raw` for exactly which keys the API sent).
    """

    openapi_schema: ClassVar[str] = "RulePublic"

    id: str
    name: str
    trigger: Trigger
    conditions: dict[str, Any]
    action: Action | None = None
    actions: list[Action] | None = None
    enabled: bool
    created_at: int
    updated_at: int
    schedule_interval_s: float | None = None
    schedule_cron: str | None = None
    webhook_url: str | None = None
    secret: str | None = None


class RuleExecution(ApiModel):
    """One firing of one action of a rule, and what it produced."""

    openapi_schema: ClassVar[str] = "ExecutionPublic"

    id: str
    rule_id: str
    rule_name: str
    trigger: str
    event: str
    event_id: int | None
    ticket_id: str | None
    depth: int
    conditions: list[dict[str, Any]]
    action: dict[str, Any]
    action_index: int
    outcome: Literal["pending", "succeeded", "failed", "loop_stopped"]
    detail: str | None
    workflow_id: str | None
    job_id: str | None
    fired_at: int
    finished_at: int | None


class DryRunResult(ApiModel):
    """Would a rule fire on an event, why or why not, and what it would do."""

    openapi_schema: ClassVar[str] = "DryRunResult"

    rule_id: str
    would_fire: bool
    matched: bool
    enabled: bool
    reason: str
    checks: list[dict[str, Any]]
    action: dict[str, Any]
    actions: list[dict[str, Any]]
    ticket_id: str | None


class ToggleResult(ApiModel):
    """A rule's enabled state after a toggle."""

    openapi_schema: ClassVar[str] = "ToggleResult"

    id: str
    name: str
    enabled: bool
    toggled_at: int


class SecretRotated(ApiModel):
    """A webhook rule's new signing secret (shown once)."""

    openapi_schema: ClassVar[str] = "SecretRotated"

    id: str
    secret: str
    rotated_at: int


class Deleted(ApiModel):
    """The answer to a delete."""

    openapi_schema: ClassVar[str] = "Deleted"

    id: str
    deleted: Literal[True] = True


# -- tickets and jobs ------------------------------------------------------------------------


class Ticket(ApiModel):
    """A ticket, the events the rules react to."""

    openapi_schema: ClassVar[str] = "TicketPublic"

    id: str
    title: str
    description: str | None
    category: str | None
    priority: Priority
    status: TicketStatus
    assignee: str | None
    requester: str | None
    created_at: int
    updated_at: int
    last_activity_at: int


class QueueCounts(ApiModel):
    """One background queue: its purpose, concurrency and job counts per state."""

    openapi_schema: ClassVar[str] = "QueueCounts"

    name: JobQueue
    purpose: str
    concurrency: int
    counts: dict[str, int]


class QueueList(ApiModel):
    """Every background queue (``GET /v1/jobs/queues``)."""

    openapi_schema: ClassVar[str] = "QueuesList"

    data: list[QueueCounts]


MODELS: tuple[type[ApiModel], ...] = (
    TimelineEntry,
    Workflow,
    WorkflowStatus,
    SignalResult,
    CancelResult,
    ControlResult,
    WorkflowDefinition,
    WorkflowDefinitionList,
    Rule,
    RuleExecution,
    DryRunResult,
    ToggleResult,
    SecretRotated,
    Deleted,
    Ticket,
    QueueCounts,
    QueueList,
)
"""Every model that mirrors a named OpenAPI schema (its ``openapi_schema``)."""

PAGES: dict[str, type[ApiModel]] = {
    "WorkflowPage": Workflow,
    "RulesPage": Rule,
    "ExecutionsPage": RuleExecution,
    "TicketsPage": Ticket,
}
"""The OpenAPI's page schemas and the item model of each (the page is ``PageData[item]``)."""
