"""The automation rule endpoints: list, create, read, update, delete, toggle, secret rotation,
executions and dry runs.

Handlers take the request apart and call :mod:`service.rules.service`; the schemas are
:mod:`service.rules.models`. GETs and dry runs need the read scope, writes the write scope,
deletion admin. ``Idempotency-Key`` is honoured on create.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, status

from protocol_lab.domain import Trigger
from protocol_lab.domain.rules import ActionType
from service.api.deps import (
    AdminAuth,
    ReadAuth,
    SessionDep,
    StateDep,
    WriteAuth,
    idempotency_scope,
)
from service.rules.models import (
    Deleted,
    DryRunRequest,
    DryRunResult,
    ExecutionsPage,
    RuleCreate,
    RulePublic,
    RulesPage,
    RuleUpdate,
    SecretRotated,
    ToggleResult,
)
from service.rules.service import (
    create_rule,
    delete_rule,
    dry_run_rule,
    get_rule,
    list_rule_executions,
    list_rules,
    rotate_rule_secret,
    toggle_rule,
    update_rule,
)

__all__ = ["router"]

router = APIRouter(prefix="/automation/rules", tags=["rules"])

# The routes that answer rules leave out the fields that do not apply (None); values inside
# conditions and actions are dictionaries, which this leaves as they are.
WITHOUT_NULLS: dict[str, Any] = {"response_model_exclude_none": True}


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
    return await list_rules(
        session,
        trigger=trigger,
        enabled=enabled,
        action_type=action_type,
        workflow_name=workflow_name,
        limit=limit,
        starting_after=starting_after,
        ending_before=ending_before,
    )


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
    return await create_rule(
        state,
        session=session,
        request=body,
        idempotency_key=idempotency_key,
        key_scope=idempotency_scope(principal, "rules"),
    )


@router.get(
    "/{rule_id}",
    response_model=RulePublic,
    summary="Retrieve an automation rule",
    **WITHOUT_NULLS,
)
async def retrieve(rule_id: str, session: SessionDep, _: ReadAuth) -> RulePublic:
    """One rule (a webhook rule's secret is never shown again)."""
    return await get_rule(session, rule_id)


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
    return await update_rule(state, session=session, rule_id=rule_id, request=body)


@router.delete("/{rule_id}", response_model=Deleted, summary="Delete an automation rule")
async def remove(rule_id: str, session: SessionDep, state: StateDep, _: AdminAuth) -> Deleted:
    """Delete a rule and its schedule; its executions stay for the record."""
    return await delete_rule(state, session=session, rule_id=rule_id)


@router.post(
    "/{rule_id}/toggle",
    response_model=ToggleResult,
    summary="Toggle an automation rule",
    responses={409: {"description": "enabling would close an update_field cycle"}},
)
async def toggle(rule_id: str, session: SessionDep, state: StateDep, _: WriteAuth) -> ToggleResult:
    """Enable a disabled rule or disable an enabled one."""
    return await toggle_rule(state, session=session, rule_id=rule_id)


@router.post(
    "/{rule_id}/secret",
    response_model=SecretRotated,
    summary="Rotate a webhook rule's signing secret",
    responses={409: {"description": "the rule is not a webhook rule"}},
)
async def rotate(rule_id: str, session: SessionDep, _: WriteAuth) -> SecretRotated:
    """Give a webhook rule a new signing secret, answered this once; deliveries signed with
    the old one are refused from now on."""
    return await rotate_rule_secret(session, rule_id)


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
    return await list_rule_executions(
        session, rule_id, limit=limit, starting_after=starting_after, ticket_id=ticket_id
    )


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
    return await dry_run_rule(state, session=session, rule_id=rule_id, request=body)
