"""The rule resource's schema family: requests, the rule as answered, pages, executions, dry runs.

A rule is answered as it was written: its ``action`` (or ``actions``) exactly as sent, and only
the fields that apply to its trigger (a scheduled rule's schedule, a webhook rule's URL; a
webhook secret only in the answer that creates or rotates it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from protocol_lab.domain import StartWorkflowAction, Trigger
from protocol_lab.domain.cron import MAX_CRON_CHARS
from protocol_lab.domain.rules import MAX_ACTIONS, SendNotificationAction, UpdateFieldAction
from protocol_lab.domain.tickets import WRITABLE_FIELDS

__all__ = [
    "MAX_DICT_KEYS",
    "MAX_INTERVAL_S",
    "ActionBody",
    "Deleted",
    "DryRunRequest",
    "DryRunResult",
    "ExecutionPublic",
    "ExecutionsPage",
    "RuleCreate",
    "RulePublic",
    "RuleUpdate",
    "RulesPage",
    "SecretRotated",
    "ToggleResult",
]

MAX_INTERVAL_S = 366 * 86400
MAX_DICT_KEYS = 100

_CONDITIONS_DOC = (
    "field -> expected value or operator object, all of which must hold; the keys all and any "
    "take a list of such objects (every one / at least one must hold), nested at most 4 deep, "
    "100 conditions in all"
)
_ACTION_DOC = (
    "type (start_workflow, send_notification, update_field) plus the action's parameters; "
    "notification message and subject, and the value of a free-text field, may use "
    "{{ticket.<field>}}, {{rule.name}} and {{rule.id}}"
)
_ACTIONS_DOC = f"instead of action: 1 to {MAX_ACTIONS} actions, performed in order"
_CRON_DOC = (
    "scheduled rules, instead of schedule_interval_s: a 5-field cron expression in UTC "
    "(minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly"
)


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its ``$defs`` references written out in place."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[str(node["$ref"]).rsplit("/", 1)[-1]])
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined


def _action_schema() -> dict[str, Any]:
    """The OpenAPI shape of an action: one of the three, ``type`` first and required."""
    shapes = []
    for model in (StartWorkflowAction, SendNotificationAction, UpdateFieldAction):
        shape = _inlined(model.model_json_schema())
        shape["required"] = ["type", *shape.get("required", [])]
        shapes.append(shape)
    shapes[-1]["properties"]["field"]["enum"] = sorted(WRITABLE_FIELDS)
    return {"oneOf": shapes, "description": _ACTION_DOC}


# Parsed as a plain object, so that errors name the action's fields as written (the domain
# model validates it); documented in the OpenAPI as the three action shapes.
ActionBody = Annotated[
    dict[str, Any], Field(max_length=MAX_DICT_KEYS), WithJsonSchema(_action_schema())
]


class RuleCreate(BaseModel):
    """A new rule: ``action`` (one) or ``actions`` (several, in order)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="A descriptive name for the rule", min_length=1, max_length=200)
    trigger: Trigger = Field(description="The event that activates the rule")
    conditions: dict[str, Any] = Field(
        default_factory=dict, max_length=MAX_DICT_KEYS, description=_CONDITIONS_DOC
    )
    action: ActionBody | None = Field(default=None, description=_ACTION_DOC)
    actions: list[ActionBody] | None = Field(
        default=None, min_length=1, max_length=MAX_ACTIONS, description=_ACTIONS_DOC
    )
    enabled: bool = Field(default=True, description="Whether the rule is active")
    schedule_interval_s: float | None = Field(
        default=None,
        ge=1,
        le=MAX_INTERVAL_S,
        allow_inf_nan=False,
        description="scheduled rules: seconds between runs (default 3600, at most a year)",
    )
    schedule_cron: str | None = Field(
        default=None, min_length=1, max_length=MAX_CRON_CHARS, description=_CRON_DOC
    )


class RuleUpdate(BaseModel):
    """A partial update of a rule; unset fields keep their value. ``action`` replaces the
    rule's action or actions, and so does ``actions``; ``schedule_interval_s`` replaces a cron
    schedule and ``schedule_cron`` an interval."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    trigger: Trigger | None = None
    conditions: dict[str, Any] | None = Field(
        default=None, max_length=MAX_DICT_KEYS, description=_CONDITIONS_DOC
    )
    action: ActionBody | None = Field(default=None, description=_ACTION_DOC)
    actions: list[ActionBody] | None = Field(
        default=None, min_length=1, max_length=MAX_ACTIONS, description=_ACTIONS_DOC
    )
    enabled: bool | None = None
    schedule_interval_s: float | None = Field(
        default=None, ge=1, le=MAX_INTERVAL_S, allow_inf_nan=False
    )
    schedule_cron: str | None = Field(
        default=None, min_length=1, max_length=MAX_CRON_CHARS, description=_CRON_DOC
    )


class RulePublic(BaseModel):
    """A rule as the API returns it: ``action`` or ``actions`` as they were sent, and only the
    fields of its trigger (fields that do not apply are absent, not null: the routes answer
    without None-valued fields, :data:`WITHOUT_NULLS`)."""

    id: str
    name: str
    trigger: Trigger
    conditions: dict[str, Any]
    action: ActionBody | None = Field(
        default=None, description="the rule's action as sent (absent when it has actions)"
    )
    actions: list[ActionBody] | None = Field(
        default=None, description="the rule's actions as sent (absent when it has one action)"
    )
    enabled: bool
    created_at: int
    updated_at: int
    schedule_interval_s: float | None = Field(
        default=None,
        description="scheduled rules given an interval: seconds between runs (a scheduled rule "
        "given neither this nor schedule_cron runs hourly)",
    )
    schedule_cron: str | None = Field(
        default=None, description="scheduled rules on a cron expression (UTC)"
    )
    webhook_url: str | None = Field(
        default=None, description="webhook rules: where to POST signed deliveries"
    )
    secret: str | None = Field(
        default=None,
        description="webhook rules: the signing secret, only in the answer that creates the "
        "rule (or a PATCH that makes it a webhook rule); POST .../secret rotates it",
    )


class SecretRotated(BaseModel):
    """A webhook rule's new signing secret, shown this once; the old one no longer verifies."""

    id: str
    secret: str
    rotated_at: int


class RulesPage(BaseModel):
    """A page of rules."""

    has_more: bool
    data: list[RulePublic]


class ToggleResult(BaseModel):
    """The new enabled state of a rule."""

    id: str
    name: str
    enabled: bool
    toggled_at: int


class Deleted(BaseModel):
    """A deleted resource."""

    id: str
    deleted: Literal[True] = True


class ExecutionPublic(BaseModel):
    """One action of one firing of a rule: when, on what, conditions seen, the action as sent,
    outcome, ids produced. A rule with several actions has one execution per action, with the
    same ``event`` and its ``action_index``."""

    id: str
    rule_id: str
    rule_name: str
    trigger: str
    event: str
    event_id: int | None
    ticket_id: str | None
    depth: int
    conditions: list[dict[str, Any]] = Field(
        description="each check made: field, op, expected, actual, passed, and group (where in "
        "the all/any groups, e.g. any[1].all[0]; absent at the top level)"
    )
    action: dict[str, Any]
    action_index: int = Field(description="which of the rule's actions (0 for the first)")
    outcome: Literal["pending", "succeeded", "failed", "loop_stopped"]
    detail: str | None
    workflow_id: str | None
    job_id: str | None
    fired_at: int
    finished_at: int | None


class ExecutionsPage(BaseModel):
    """A page of executions, newest first."""

    has_more: bool
    data: list[ExecutionPublic]


class DryRunRequest(BaseModel):
    """What to test a rule on: a stored ticket, a ticket object, or a webhook payload."""

    model_config = ConfigDict(extra="forbid")

    ticket_id: str | None = Field(default=None, max_length=32)
    ticket: dict[str, Any] | None = Field(
        default=None, max_length=MAX_DICT_KEYS, description="fields override the ticket"
    )
    previous: dict[str, Any] | None = Field(
        default=None,
        max_length=MAX_DICT_KEYS,
        description="on_ticket_updated: the ticket before the change",
    )
    payload: dict[str, Any] | None = Field(
        default=None, max_length=MAX_DICT_KEYS, description="webhook rules: the body"
    )


class DryRunResult(BaseModel):
    """Would the rule fire, why or why not, and what it would do. Nothing was done."""

    rule_id: str
    would_fire: bool
    matched: bool
    enabled: bool
    reason: str
    checks: list[dict[str, Any]] = Field(description="each check made, as in an execution")
    action: dict[str, Any] = Field(description="what the first action would do")
    actions: list[dict[str, Any]] = Field(description="what each action would do, in order")
    ticket_id: str | None
