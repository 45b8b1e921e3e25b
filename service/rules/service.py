"""The rule service: what the API's rule endpoints call to list, write, toggle, test rules.

Each function validates against the domain, reads and writes the store in the caller's session,
keeps a scheduled rule's Temporal Schedule in step, and raises the kinds of
:mod:`service.errors`; the router only maps the request onto these calls.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from protocol_lab.domain import Rule, RuleCycleError, RuleError, StartWorkflowAction, Trigger
from protocol_lab.domain.rules import ActionType
from service.automation.context import AutomationContext
from service.automation.cycles import check_rule_set
from service.automation.engine import dry_run
from service.automation.schedules import delete_rule_schedule, sync_rule_schedule
from service.errors import ConflictError, InvalidRequestError, NotFoundError
from service.executions.definitions import defined_names, workflow_defined
from service.rules.models import (
    Deleted,
    DryRunRequest,
    DryRunResult,
    ExecutionPublic,
    ExecutionsPage,
    RuleCreate,
    RulePublic,
    RulesPage,
    RuleUpdate,
    SecretRotated,
    ToggleResult,
)
from service.state import Resources
from service.store import rules as store
from service.store.executions import list_executions
from service.store.idempotency import claim_idempotency_key
from service.store.ids import new_id
from service.store.rules import RuleRow, rule_dict, rule_model
from service.store.tickets import get_ticket

__all__ = [
    "create_rule",
    "delete_rule",
    "dry_run_rule",
    "get_rule",
    "list_rule_executions",
    "list_rules",
    "rotate_rule_secret",
    "toggle_rule",
    "update_rule",
]

log = logging.getLogger("service.api")


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
        raise InvalidRequestError(f"{loc}: {msg}" if loc else msg) from exc
    except RuleError as exc:
        raise InvalidRequestError(str(exc)) from exc


async def _check_workflow(state: Resources, rule: Rule) -> None:
    for action in rule.steps:
        if isinstance(action, StartWorkflowAction) and not await workflow_defined(
            state, action.workflow_name
        ):
            known = ", ".join(await defined_names(state))
            raise InvalidRequestError(
                f"action.workflow_name: no workflow named {action.workflow_name!r}; known: {known}"
            )


async def _check_cycles(session: AsyncSession, *, rule_id: str, rule: Rule) -> None:
    try:
        await check_rule_set(session, rule_id=rule_id, rule=rule)
    except RuleCycleError as exc:
        raise ConflictError(str(exc)) from exc


async def _sync_schedule(state: Resources, row: RuleRow) -> None:
    # The background reconciler repairs the schedule if Temporal is unreachable right now.
    try:
        await sync_rule_schedule(state.temporal, row=row, settings=state.settings)
    except Exception as exc:
        log.warning("schedule of rule %s not synced yet: %s", row.id, exc)


async def _load(session: AsyncSession, rule_id: str) -> RuleRow:
    row = await store.get_rule(session, rule_id=rule_id)
    if row is None:
        raise NotFoundError(f"no automation rule {rule_id!r}")
    return row


async def list_rules(
    session: AsyncSession,
    *,
    trigger: Trigger | None = None,
    enabled: bool | None = None,
    action_type: ActionType | None = None,
    workflow_name: str | None = None,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> RulesPage:
    """Rules, newest first, filtered by trigger, enabled state, action type and the workflow
    they start (any of their actions counts), paged by a rule id either way."""
    if starting_after and ending_before:
        raise InvalidRequestError("give starting_after or ending_before, not both")
    filters: dict[str, Any] = {}
    if trigger is not None:
        filters["trigger"] = trigger.value
    if enabled is not None:
        filters["enabled"] = enabled
    if action_type is not None:
        filters["action_type"] = action_type.value
    if workflow_name is not None:
        filters["workflow_name"] = workflow_name
    page = await store.list_rules(
        session,
        filters=filters,
        limit=limit,
        starting_after=starting_after,
        ending_before=ending_before,
    )
    if page is None:
        raise InvalidRequestError(f"no rule {starting_after or ending_before!r} to page from")
    rows, has_more = page
    return RulesPage(has_more=has_more, data=[_public(r) for r in rows])


async def create_rule(
    state: Resources,
    *,
    session: AsyncSession,
    request: RuleCreate,
    idempotency_key: str | None = None,
    key_scope: str = "rules",
) -> RulePublic:
    """Create a rule, validated per trigger and action type, honouring the Idempotency-Key (in
    ``key_scope``): a repeated request answers the rule the first one created."""
    rule = _domain_rule(request.model_dump(exclude_none=True))
    await _check_workflow(state, rule)
    rule_id = new_id("rule")
    await _check_cycles(session, rule_id=rule_id, rule=rule)
    if idempotency_key is not None:
        claim = await claim_idempotency_key(
            session,
            scope=key_scope,
            key=idempotency_key,
            request=request.model_dump(mode="json"),
            resource_id=rule_id,
            ttl_s=state.settings.idempotency_ttl_s,
        )
        if not claim.first:
            existing = await store.get_rule(session, rule_id=claim.resource_id)
            if existing is None:
                raise ConflictError("the rule created with this Idempotency-Key is gone")
            return _public(existing, with_secret=True)
    # The key's claim commits with the rule: a failed insert leaves the key free for a retry.
    row = await store.insert_rule(session, row=store.new_rule_row(rule, rule_id=rule_id))
    if rule.trigger is Trigger.SCHEDULED:
        await _sync_schedule(state, row)
    return _public(row, with_secret=True)


async def get_rule(session: AsyncSession, rule_id: str) -> RulePublic:
    """One rule as answered (a webhook rule's secret is never shown again)."""
    return _public(await _load(session, rule_id))


def _merged(row: RuleRow, changes: dict[str, Any]) -> dict[str, Any]:
    """The stored rule with ``changes`` applied, as the domain model takes it."""
    for name in ("name", "trigger", "action", "actions", "enabled", "conditions"):
        if name in changes and changes[name] is None:
            raise InvalidRequestError(f"{name}: may not be null")
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
    return raw


async def update_rule(
    state: Resources, *, session: AsyncSession, rule_id: str, request: RuleUpdate
) -> RulePublic:
    """Change some fields of a rule; the whole rule is validated again.

    A rule that becomes a webhook rule answers with its new secret, this once.
    """
    row = await _load(session, rule_id)
    rule = _domain_rule(_merged(row, request.model_dump(exclude_unset=True, mode="json")))
    await _check_workflow(state, rule)
    await _check_cycles(session, rule_id=rule_id, rule=rule)
    was_enabled = row.enabled
    had_secret = row.secret is not None
    row = await store.save_rule(session, row=row, rule=rule, toggled=was_enabled != rule.enabled)
    await _sync_schedule(state, row)
    return _public(row, with_secret=not had_secret)


async def delete_rule(state: Resources, *, session: AsyncSession, rule_id: str) -> Deleted:
    """Delete a rule and its schedule; its executions stay for the record."""
    row = await _load(session, rule_id)
    scheduled = row.trigger == Trigger.SCHEDULED.value
    await store.delete_rule(session, rule_id=rule_id)
    if scheduled:
        try:
            await delete_rule_schedule(state.temporal, rule_id=rule_id)
        except Exception as exc:
            log.warning("schedule of deleted rule %s not removed yet: %s", rule_id, exc)
    return Deleted(id=rule_id)


async def toggle_rule(state: Resources, *, session: AsyncSession, rule_id: str) -> ToggleResult:
    """Enable a disabled rule or disable an enabled one."""
    row = await _load(session, rule_id)
    # Only the state changes: the stored rule is not validated again by checks added since.
    rule = rule_model(row).model_copy(update={"enabled": not row.enabled})
    await _check_cycles(session, rule_id=rule_id, rule=rule)
    row = await store.save_rule(session, row=row, rule=rule, toggled=True)
    await _sync_schedule(state, row)
    return ToggleResult(
        id=row.id, name=row.name, enabled=row.enabled, toggled_at=int(row.toggled_at or time.time())
    )


async def rotate_rule_secret(session: AsyncSession, rule_id: str) -> SecretRotated:
    """Give a webhook rule a new signing secret; a rule of another trigger is a conflict."""
    row = await _load(session, rule_id)
    if row.trigger != Trigger.WEBHOOK.value:
        raise ConflictError(f"rule {rule_id!r} is a {row.trigger} rule: only webhook rules sign")
    secret = await store.rotate_secret(session, row=row)
    return SecretRotated(id=row.id, secret=secret, rotated_at=int(row.updated_at))


async def list_rule_executions(
    session: AsyncSession,
    rule_id: str,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ticket_id: str | None = None,
) -> ExecutionsPage:
    """Every firing of the rule, newest first, with the workflow and job ids it produced."""
    await _load(session, rule_id)
    page = await list_executions(
        session, rule_id=rule_id, limit=limit, starting_after=starting_after, ticket_id=ticket_id
    )
    if page is None:
        raise InvalidRequestError(f"no execution {starting_after!r} of this rule to page from")
    data, has_more = page
    return ExecutionsPage(has_more=has_more, data=[ExecutionPublic.model_validate(d) for d in data])


async def dry_run_rule(
    state: Resources, *, session: AsyncSession, rule_id: str, request: DryRunRequest
) -> DryRunResult:
    """Would the rule fire on this ticket or payload, why or why not, what would it do.

    Nothing is recorded, started or changed.
    """
    row = await _load(session, rule_id)
    ticket: dict[str, Any] | None = None
    if request.ticket_id is not None:
        ticket = await get_ticket(session, ticket_id=request.ticket_id)
        if ticket is None:
            raise NotFoundError(f"no ticket {request.ticket_id!r}")
    if request.ticket is not None:
        ticket = {**(ticket or {}), **request.ticket}
    if ticket is None and request.payload is None:
        raise InvalidRequestError("give ticket_id, ticket or payload to test the rule on")
    try:
        result = await dry_run(
            AutomationContext.of(state),
            row=row,
            ticket=ticket,
            previous=request.previous,
            payload=request.payload,
        )
    except RuleError as exc:
        raise InvalidRequestError(str(exc)) from exc
    return DryRunResult.model_validate(result)
