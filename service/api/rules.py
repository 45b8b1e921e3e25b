"""Automation rules: list, create, read, update, delete, toggle, secret rotation, executions
and dry runs.

A rule is answered as it was written: its ``action`` (or ``actions``) exactly as sent, and only
the fields that apply to its trigger (a scheduled rule's schedule, a webhook rule's URL; a
webhook secret only in the answer that creates or rotates it).
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from protocol_lab.domain import Rule, RuleCycleError, RuleError, StartWorkflowAction, Trigger
from protocol_lab.domain.cron import MAX_CRON_CHARS
from protocol_lab.domain.rules import (
    MAX_ACTIONS,
    ActionType,
    SendNotificationAction,
    UpdateFieldAction,
)
from protocol_lab.domain.tickets import WRITABLE_FIELDS
from service.api.deps import (
    AdminAuth,
    ReadAuth,
    SessionDep,
    StateDep,
    WriteAuth,
    idempotency_scope,
)
from service.api.errors import ApiError
from service.automation.context import AutomationContext
from service.automation.cycles import check_rule_set
from service.automation.engine import dry_run
from service.automation.schedules import delete_rule_schedule, sync_rule_schedule
from service.store.executions import list_executions
from service.store.idempotency import claim_idempotency_key
from service.store.ids import new_id
from service.store.rules import (
    RuleRow,
    delete_rule,
    get_rule,
    insert_rule,
    list_rules,
    new_rule_row,
    rotate_secret,
    rule_dict,
    rule_model,
    save_rule,
)
from service.store.tickets import get_ticket
from service.workflows.definitions import defined_names, workflow_defined

__all__ = ["router"]

log = logging.getLogger("service.api")

router = APIRouter(prefix="/automation/rules", tags=["rules"])

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


# The routes that answer rules leave out the fields that do not apply (None); values inside
# conditions and actions are dictionaries, which this leaves as they are.
WITHOUT_NULLS: dict[str, Any] = {"response_model_exclude_none": True}


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


def _public(row: RuleRow, *, with_secret: bool = False) -> RulePublic:
    body = rule_dict(row)
    if row.trigger == Trigger.WEBHOOK.value:
        body["webhook_url"] = f"/v1/automation/webhooks/{row.id}"
        if with_secret:
            body["secret"] = row.secret
    return RulePublic.model_validate(body)


def _domain_rule(raw: dict[str, Any]) -> Rule:
    try:
        return Rule.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"] if p not in ("function-after[_check()]",))
        msg = str(err["msg"]).removeprefix("Value error, ")
        # Actions are a tagged union: name the field, not the union's internals.
        loc = loc.replace("start_workflow.", "").replace("send_notification.", "")
        loc = loc.replace("update_field.", "")
        raise ApiError.invalid(f"{loc}: {msg}" if loc else msg) from exc
    except RuleError as exc:
        raise ApiError.invalid(str(exc)) from exc


async def _check_workflow(state: StateDep, rule: Rule) -> None:
    for action in rule.steps:
        if isinstance(action, StartWorkflowAction) and not await workflow_defined(
            state, action.workflow_name
        ):
            known = ", ".join(await defined_names(state))
            raise ApiError.invalid(
                f"action.workflow_name: no workflow named {action.workflow_name!r}; known: {known}"
            )


async def _check_cycles(session: SessionDep, *, rule_id: str, rule: Rule) -> None:
    try:
        await check_rule_set(session, rule_id=rule_id, rule=rule)
    except RuleCycleError as exc:
        raise ApiError.conflict(str(exc)) from exc


async def _sync_schedule(state: StateDep, row: RuleRow) -> None:
    # The background reconciler repairs the schedule if Temporal is unreachable right now.
    try:
        await sync_rule_schedule(state.temporal, row=row)
    except Exception as exc:
        log.warning("schedule of rule %s not synced yet: %s", row.id, exc)


async def _load(session: SessionDep, rule_id: str) -> RuleRow:
    row = await get_rule(session, rule_id=rule_id)
    if row is None:
        raise ApiError.not_found(f"no automation rule {rule_id!r}")
    return row


@router.get("", response_model=RulesPage, summary="List all automation rules", **WITHOUT_NULLS)
async def list_all(
    session: SessionDep,
    _: ReadAuth,
    trigger: Annotated[Trigger | None, Query(description="Filter by trigger")] = None,
    enabled: Annotated[bool | None, Query(description="Filter by enabled state")] = None,
    action_type: Annotated[
        ActionType | None, Query(description="Only rules with an action of this type")
    ] = None,
    workflow_name: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="Only rules that start this workflow"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 10,
    starting_after: Annotated[
        str | None, Query(max_length=64, description="Cursor: a rule id")
    ] = None,
    ending_before: Annotated[
        str | None, Query(max_length=64, description="Cursor: a rule id")
    ] = None,
) -> RulesPage:
    """Rules, newest first, filtered by trigger, enabled state, action type and the workflow
    they start (any of their actions counts), with the same cursor."""
    if starting_after and ending_before:
        raise ApiError.invalid("give starting_after or ending_before, not both")
    filters: dict[str, Any] = {}
    if trigger is not None:
        filters["trigger"] = trigger.value
    if enabled is not None:
        filters["enabled"] = enabled
    if action_type is not None:
        filters["action_type"] = action_type.value
    if workflow_name is not None:
        filters["workflow_name"] = workflow_name
    page = await list_rules(
        session,
        filters=filters,
        limit=limit,
        starting_after=starting_after,
        ending_before=ending_before,
    )
    if page is None:
        raise ApiError.invalid(f"no rule {starting_after or ending_before!r} to page from")
    rows, has_more = page
    return RulesPage(has_more=has_more, data=[_public(r) for r in rows])


@router.post(
    "",
    response_model=RulePublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create an automation rule",
    responses={409: {"description": "the rule would close an update_field cycle"}},
    **WITHOUT_NULLS,
)
async def create(
    body: RuleCreate,
    session: SessionDep,
    state: StateDep,
    principal: WriteAuth,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> RulePublic:
    """Create a rule, validated per trigger and action type; enabled defaults to true."""
    rule = _domain_rule(body.model_dump(exclude_none=True))
    await _check_workflow(state, rule)
    rule_id = new_id("rule")
    await _check_cycles(session, rule_id=rule_id, rule=rule)
    if idempotency_key is not None:
        claim = await claim_idempotency_key(
            session,
            scope=idempotency_scope(principal, "rules"),
            key=idempotency_key,
            request=body.model_dump(mode="json"),
            resource_id=rule_id,
            ttl_s=state.settings.idempotency_ttl_s,
        )
        if not claim.first:
            existing = await get_rule(session, rule_id=claim.resource_id)
            if existing is None:
                raise ApiError.conflict("the rule created with this Idempotency-Key is gone")
            return _public(existing, with_secret=True)
    # The key's claim commits with the rule: a failed insert leaves the key free for a retry.
    row = await insert_rule(session, row=new_rule_row(rule, rule_id=rule_id))
    if rule.trigger is Trigger.SCHEDULED:
        await _sync_schedule(state, row)
    return _public(row, with_secret=True)


@router.get(
    "/{rule_id}",
    response_model=RulePublic,
    summary="Retrieve an automation rule",
    **WITHOUT_NULLS,
)
async def retrieve(rule_id: str, session: SessionDep, _: ReadAuth) -> RulePublic:
    """One rule (a webhook rule's secret is never shown again)."""
    return _public(await _load(session, rule_id))


@router.patch(
    "/{rule_id}",
    response_model=RulePublic,
    summary="Update an automation rule",
    responses={409: {"description": "the change would close an update_field cycle"}},
    **WITHOUT_NULLS,
)
async def update(
    rule_id: str, body: RuleUpdate, session: SessionDep, state: StateDep, _: WriteAuth
) -> RulePublic:
    """Change some fields of a rule; the whole rule is validated again.

    A rule that becomes a webhook rule answers with its new secret, this once.
    """
    row = await _load(session, rule_id)
    changes = body.model_dump(exclude_unset=True, mode="json")
    for name in ("name", "trigger", "action", "actions", "enabled", "conditions"):
        if name in changes and changes[name] is None:
            raise ApiError.invalid(f"{name}: may not be null")
    stored = rule_dict(row)
    # Each replaces the other: a new action list replaces a single action, a cron expression
    # an interval, and the other way round.
    for given, other in (
        ("action", "actions"),
        ("actions", "action"),
        ("schedule_cron", "schedule_interval_s"),
        ("schedule_interval_s", "schedule_cron"),
    ):
        if changes.get(given) is not None:
            stored.pop(other, None)
    merged = {**stored, **changes}
    if merged.get("trigger") != Trigger.SCHEDULED.value:
        merged.pop("schedule_interval_s", None)
        merged.pop("schedule_cron", None)
    keys = ("name", "trigger", "conditions", "action", "actions", "enabled")
    raw = {k: merged[k] for k in keys if merged.get(k) is not None}
    for name in ("schedule_interval_s", "schedule_cron"):
        if merged.get(name) is not None:
            raw[name] = merged[name]
    rule = _domain_rule(raw)
    await _check_workflow(state, rule)
    await _check_cycles(session, rule_id=rule_id, rule=rule)
    was_enabled = row.enabled
    had_secret = row.secret is not None
    row = await save_rule(session, row=row, rule=rule, toggled=was_enabled != rule.enabled)
    await _sync_schedule(state, row)
    return _public(row, with_secret=not had_secret)


@router.delete("/{rule_id}", response_model=Deleted, summary="Delete an automation rule")
async def remove(rule_id: str, session: SessionDep, state: StateDep, _: AdminAuth) -> Deleted:
    """Delete a rule and its schedule; its executions stay for the record."""
    row = await _load(session, rule_id)
    scheduled = row.trigger == Trigger.SCHEDULED.value
    await delete_rule(session, rule_id=rule_id)
    if scheduled:
        try:
            await delete_rule_schedule(state.temporal, rule_id=rule_id)
        except Exception as exc:
            log.warning("schedule of deleted rule %s not removed yet: %s", rule_id, exc)
    return Deleted(id=rule_id)


@router.post(
    "/{rule_id}/toggle",
    response_model=ToggleResult,
    summary="Toggle an automation rule",
    responses={409: {"description": "enabling would close an update_field cycle"}},
)
async def toggle(rule_id: str, session: SessionDep, state: StateDep, _: WriteAuth) -> ToggleResult:
    """Enable a disabled rule or disable an enabled one."""
    row = await _load(session, rule_id)
    # Only the state changes: the stored rule is not validated again by checks added since.
    rule = rule_model(row).model_copy(update={"enabled": not row.enabled})
    await _check_cycles(session, rule_id=rule_id, rule=rule)
    row = await save_rule(session, row=row, rule=rule, toggled=True)
    await _sync_schedule(state, row)
    return ToggleResult(
        id=row.id, name=row.name, enabled=row.enabled, toggled_at=int(row.toggled_at or time.time())
    )


@router.post(
    "/{rule_id}/secret",
    response_model=SecretRotated,
    summary="Rotate a webhook rule's signing secret",
    responses={409: {"description": "the rule is not a webhook rule"}},
)
async def rotate(rule_id: str, session: SessionDep, _: WriteAuth) -> SecretRotated:
    """Give a webhook rule a new signing secret, answered this once; deliveries signed with
    the old one are refused from now on."""
    row = await _load(session, rule_id)
    if row.trigger != Trigger.WEBHOOK.value:
        raise ApiError.conflict(
            f"rule {rule_id!r} is a {row.trigger} rule: only webhook rules sign"
        )
    secret = await rotate_secret(session, row=row)
    return SecretRotated(id=row.id, secret=secret, rotated_at=int(row.updated_at))


@router.get(
    "/{rule_id}/executions",
    response_model=ExecutionsPage,
    summary="List the executions of a rule",
)
async def executions(
    rule_id: str,
    session: SessionDep,
    _: ReadAuth,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[
        str | None, Query(max_length=64, description="Cursor: an execution id")
    ] = None,
    ticket_id: Annotated[
        str | None, Query(max_length=32, description="Only firings on this ticket")
    ] = None,
) -> ExecutionsPage:
    """Every firing of the rule, newest first, with the workflow and job ids it produced."""
    await _load(session, rule_id)
    page = await list_executions(
        session, rule_id=rule_id, limit=limit, starting_after=starting_after, ticket_id=ticket_id
    )
    if page is None:
        raise ApiError.invalid(f"no execution {starting_after!r} of this rule to page from")
    data, has_more = page
    return ExecutionsPage(has_more=has_more, data=[ExecutionPublic.model_validate(d) for d in data])


@router.post("/{rule_id}/test", response_model=DryRunResult, summary="Dry-run a rule")
async def test(
    rule_id: str,
    session: SessionDep,
    state: StateDep,
    _: ReadAuth,
    body: Annotated[DryRunRequest, Body()],
) -> DryRunResult:
    """Would the rule fire on this ticket or payload, why or why not, what would it do.

    Nothing is recorded, started or changed.
    """
    row = await _load(session, rule_id)
    ticket: dict[str, Any] | None = None
    if body.ticket_id is not None:
        ticket = await get_ticket(session, ticket_id=body.ticket_id)
        if ticket is None:
            raise ApiError.not_found(f"no ticket {body.ticket_id!r}")
    if body.ticket is not None:
        ticket = {**(ticket or {}), **body.ticket}
    if ticket is None and body.payload is None:
        raise ApiError.invalid("give ticket_id, ticket or payload to test the rule on")
    try:
        result = await dry_run(
            AutomationContext.from_state(state),
            row=row,
            ticket=ticket,
            previous=body.previous,
            payload=body.payload,
        )
    except RuleError as exc:
        raise ApiError.invalid(str(exc)) from exc
    return DryRunResult.model_validate(result)
