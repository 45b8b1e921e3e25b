"""The API's endpoints as pure request descriptions, shared by both client twins.

Each function turns typed arguments into a :class:`Call` (method, path, query, JSON body) or,
for lists, a :class:`Listing` (path and filters, paged by the client). No I/O happens here, so
``Client`` and ``AsyncClient`` differ only in how they send a ``Call``.

Bodies leave out arguments that were not given (``None`` for creations; :data:`NOT_GIVEN` for
partial updates, where ``None`` is sent as JSON null to clear a field). Query values are
rendered as the API reads them (booleans as ``true`` / ``false``, enums by value).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

__all__ = [
    "NOT_GIVEN",
    "Call",
    "Listing",
    "NotGiven",
    "body",
    "cancel_workflow",
    "create_rule",
    "create_ticket",
    "create_workflow",
    "create_workflow_definition",
    "delete_rule",
    "dry_run_rule",
    "get_job_queues",
    "get_rule",
    "get_ticket",
    "get_workflow",
    "get_workflow_definition",
    "get_workflow_status",
    "pause_workflow",
    "query",
    "resource_path",
    "resume_workflow",
    "rotate_rule_secret",
    "rule_executions",
    "rules",
    "signal_workflow",
    "start_workflow",
    "tickets",
    "toggle_rule",
    "unix_seconds",
    "update_rule",
    "update_ticket",
    "update_workflow_definition",
    "workflow_definitions",
    "workflows",
]

JSONObject = dict[str, Any]


class NotGiven:
    """Type of :data:`NOT_GIVEN`, the default that tells "not passed" from ``None``."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        """Return the one instance."""
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        """``NOT_GIVEN`` is falsy."""
        return False

    def __repr__(self) -> str:
        """``NOT_GIVEN``."""
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()

WORKFLOWS: Final = "/v1/workflows"
RULES: Final = "/v1/automation/rules"
TICKETS: Final = "/v1/tickets"
JOB_QUEUES: Final = "/v1/jobs/queues"
DEFINITIONS: Final = "/v1/workflow-definitions"


@dataclass(frozen=True)
class Call:
    """One request to the API: method, path under the base URL, query and JSON body.

    A POST carries ``idempotency_key``, or a generated key unless ``auto_idempotency_key`` is
    false: for the few POSTs the API does not deduplicate, where a replay could repeat the
    effect, so they must not be retried once they may have reached the server.
    """

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: JSONObject | None = None
    idempotency_key: str | None = None
    auto_idempotency_key: bool = True


@dataclass(frozen=True)
class Listing:
    """A paginated list endpoint: its path and the filters to apply to every page."""

    path: str
    params: dict[str, Any] = field(default_factory=dict)


def resource_path(collection: str, resource_id: str, *suffix: str) -> str:
    """``collection/<quoted id>[/suffix...]``; ValueError for an empty id."""
    if not isinstance(resource_id, str) or not resource_id:
        raise ValueError(f"an id must be a non-empty string, got {resource_id!r}")
    return "/".join([collection, quote(resource_id, safe=""), *suffix])


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return value.value
    return value


def query(**params: Any) -> dict[str, Any]:
    """Query parameters without the ``None`` ones, rendered as the API reads them."""
    return {k: _query_value(v) for k, v in params.items() if v is not None}


def _json_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    return value


def body(extra: Mapping[str, Any] | None = None, /, **fields: Any) -> JSONObject:
    """A JSON body of ``fields`` without ``None`` / ``NOT_GIVEN`` ones, then ``extra`` merged."""
    out = {k: _json_value(v) for k, v in fields.items() if v is not None and v is not NOT_GIVEN}
    if extra:
        out.update({k: _json_value(v) for k, v in extra.items()})
    return out


def _patch(extra: Mapping[str, Any] | None, /, **fields: Any) -> JSONObject:
    """A partial-update body: every field that was given, ``None`` included (JSON null)."""
    out = {k: _json_value(v) for k, v in fields.items() if v is not NOT_GIVEN}
    if extra:
        out.update({k: _json_value(v) for k, v in extra.items()})
    return out


def unix_seconds(value: datetime | float | None) -> int | float | None:
    """Unix seconds from a timezone-aware datetime or a number (whole seconds as int)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a datetime for the API must be timezone-aware")
        value = value.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected Unix seconds or a datetime, got {type(value).__name__}")
    return int(value) if float(value).is_integer() else value


# -- workflows ---------------------------------------------------------------------------


def _timestamps(precise_timestamps: bool) -> str | None:
    """The ``timestamps`` query value: ``float`` for sub-second timestamps, else the default."""
    return "float" if precise_timestamps else None


def workflows(
    *,
    status: str | None = None,
    task_queue: str | None = None,
    ticket_id: str | None = None,
    name: str | None = None,
    trigger_type: str | None = None,
    created_after: datetime | float | None = None,
    created_before: datetime | float | None = None,
    precise_timestamps: bool = False,
) -> Listing:
    """GET /v1/workflows, filtered by status, task queue, ticket (``TKT-<n>``), definition
    name, trigger type and creation time (Unix seconds or aware datetimes).

    ``precise_timestamps`` asks for float Unix seconds with the sub-second part.
    """
    params = query(
        status=status,
        task_queue=task_queue,
        ticket_id=ticket_id,
        name=name,
        trigger_type=trigger_type,
        created_after=unix_seconds(created_after),
        created_before=unix_seconds(created_before),
        timestamps=_timestamps(precise_timestamps),
    )
    return Listing(WORKFLOWS, params)


def create_workflow(
    *,
    name: str,
    task_queue: str,
    trigger_type: str | None = None,
    input: Mapping[str, Any] | None = None,
    start_at: datetime | float | None = None,
    schedule: Mapping[str, Any] | None = None,
    time_scale: float | None = None,
    idempotency_key: str | None = None,
) -> Call:
    """POST /v1/workflows (``schedule``: ``{"cron": ...}`` or ``{"interval_s": ...}``)."""
    payload = body(
        name=name,
        task_queue=task_queue,
        trigger_type=trigger_type,
        input=dict(input) if input is not None else None,
        start_at=unix_seconds(start_at),
        schedule=dict(schedule) if schedule is not None else None,
        time_scale=time_scale,
    )
    return Call("POST", WORKFLOWS, json=payload, idempotency_key=idempotency_key)


def start_workflow(workflow_id: str) -> Call:
    """POST /v1/workflows/{id}/start: start a draft.

    Sent without an idempotency key (the API does not deduplicate it), so it is retried only
    when it cannot have reached the server.
    """
    path = resource_path(WORKFLOWS, workflow_id, "start")
    return Call("POST", path, auto_idempotency_key=False)


def get_workflow(workflow_id: str, *, precise_timestamps: bool = False) -> Call:
    """GET /v1/workflows/{id} (``precise_timestamps``: float, sub-second timestamps)."""
    params = query(timestamps=_timestamps(precise_timestamps))
    return Call("GET", resource_path(WORKFLOWS, workflow_id), params=params)


def get_workflow_status(workflow_id: str, *, precise_timestamps: bool = False) -> Call:
    """GET /v1/workflows/{id}/status (``precise_timestamps``: a float, sub-second
    ``started_at``)."""
    params = query(timestamps=_timestamps(precise_timestamps))
    return Call("GET", resource_path(WORKFLOWS, workflow_id, "status"), params=params)


def signal_workflow(
    workflow_id: str,
    *,
    signal_name: str,
    payload: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Call:
    """POST /v1/workflows/{id}/signal."""
    data = body(signal_name=signal_name, payload=dict(payload) if payload is not None else None)
    path = resource_path(WORKFLOWS, workflow_id, "signal")
    return Call("POST", path, json=data, idempotency_key=idempotency_key)


def cancel_workflow(
    workflow_id: str, *, reason: str | None = None, idempotency_key: str | None = None
) -> Call:
    """POST /v1/workflows/{id}/cancel."""
    path = resource_path(WORKFLOWS, workflow_id, "cancel")
    return Call("POST", path, json=body(reason=reason), idempotency_key=idempotency_key)


def pause_workflow(
    workflow_id: str, *, reason: str | None = None, idempotency_key: str | None = None
) -> Call:
    """POST /v1/workflows/{id}/pause."""
    path = resource_path(WORKFLOWS, workflow_id, "pause")
    return Call("POST", path, json=body(reason=reason), idempotency_key=idempotency_key)


def resume_workflow(
    workflow_id: str, *, reason: str | None = None, idempotency_key: str | None = None
) -> Call:
    """POST /v1/workflows/{id}/resume."""
    path = resource_path(WORKFLOWS, workflow_id, "resume")
    return Call("POST", path, json=body(reason=reason), idempotency_key=idempotency_key)


# -- automation rules --------------------------------------------------------------------


def rules(
    *,
    trigger: str | None = None,
    enabled: bool | None = None,
    action_type: str | None = None,
    workflow_name: str | None = None,
) -> Listing:
    """GET /v1/automation/rules, filtered by trigger, enabled state, the type of one of its
    actions and the workflow one of its actions starts."""
    params = query(
        trigger=trigger, enabled=enabled, action_type=action_type, workflow_name=workflow_name
    )
    return Listing(RULES, params)


def _actions(actions: Sequence[Mapping[str, Any]] | None) -> list[JSONObject] | None:
    return [dict(a) for a in actions] if actions is not None else None


def create_rule(
    *,
    name: str,
    trigger: str,
    action: Mapping[str, Any] | None = None,
    actions: Sequence[Mapping[str, Any]] | None = None,
    conditions: Mapping[str, Any] | None = None,
    enabled: bool | None = None,
    schedule_interval_s: float | None = None,
    schedule_cron: str | None = None,
    extra: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Call:
    """POST /v1/automation/rules with ``action`` or ``actions`` (several, run in order); a
    scheduled rule runs every ``schedule_interval_s`` or on ``schedule_cron`` (UTC)."""
    payload = body(
        extra,
        name=name,
        trigger=trigger,
        conditions=dict(conditions) if conditions is not None else None,
        action=dict(action) if action is not None else None,
        actions=_actions(actions),
        enabled=enabled,
        schedule_interval_s=schedule_interval_s,
        schedule_cron=schedule_cron,
    )
    return Call("POST", RULES, json=payload, idempotency_key=idempotency_key)


def get_rule(rule_id: str) -> Call:
    """GET /v1/automation/rules/{id}."""
    return Call("GET", resource_path(RULES, rule_id))


def update_rule(
    rule_id: str,
    *,
    name: str | NotGiven = NOT_GIVEN,
    trigger: str | NotGiven = NOT_GIVEN,
    conditions: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
    action: Mapping[str, Any] | NotGiven = NOT_GIVEN,
    actions: Sequence[Mapping[str, Any]] | NotGiven = NOT_GIVEN,
    enabled: bool | NotGiven = NOT_GIVEN,
    schedule_interval_s: float | NotGiven | None = NOT_GIVEN,
    schedule_cron: str | NotGiven | None = NOT_GIVEN,
    extra: Mapping[str, Any] | None = None,
) -> Call:
    """PATCH /v1/automation/rules/{id} with the fields given."""
    payload = _patch(
        extra,
        name=name,
        trigger=trigger,
        conditions=dict(conditions) if isinstance(conditions, Mapping) else conditions,
        action=dict(action) if isinstance(action, Mapping) else action,
        actions=actions if isinstance(actions, NotGiven) else _actions(actions),
        enabled=enabled,
        schedule_interval_s=schedule_interval_s,
        schedule_cron=schedule_cron,
    )
    return Call("PATCH", resource_path(RULES, rule_id), json=payload)


def delete_rule(rule_id: str) -> Call:
    """DELETE /v1/automation/rules/{id}."""
    return Call("DELETE", resource_path(RULES, rule_id))


def toggle_rule(rule_id: str) -> Call:
    """POST /v1/automation/rules/{id}/toggle.

    Sent without an idempotency key: the API does not deduplicate toggles and a replayed
    toggle undoes the first, so it is retried only when it cannot have reached the server.
    """
    path = resource_path(RULES, rule_id, "toggle")
    return Call("POST", path, json={}, auto_idempotency_key=False)


def rotate_rule_secret(rule_id: str) -> Call:
    """POST /v1/automation/rules/{id}/secret: a new signing secret for a webhook rule.

    Sent without an idempotency key: the API does not deduplicate it, and a replay would
    rotate again, so it is retried only when it cannot have reached the server.
    """
    path = resource_path(RULES, rule_id, "secret")
    return Call("POST", path, auto_idempotency_key=False)


def rule_executions(rule_id: str, *, ticket_id: str | None = None) -> Listing:
    """GET /v1/automation/rules/{id}/executions, optionally only those on one ticket.

    This list pages forwards only (``starting_after``).
    """
    return Listing(resource_path(RULES, rule_id, "executions"), query(ticket_id=ticket_id))


def dry_run_rule(
    rule_id: str,
    *,
    ticket_id: str | None = None,
    ticket: Mapping[str, Any] | None = None,
    previous: Mapping[str, Any] | None = None,
    payload: Mapping[str, Any] | None = None,
) -> Call:
    """POST /v1/automation/rules/{id}/test: a dry run, nothing done (so safe to retry).

    The event to test on is a stored ticket (``ticket_id``, its fields overridden by
    ``ticket``), or a ``ticket`` given inline; ``previous`` is the ticket before the change for
    on_ticket_updated rules and ``payload`` the body for webhook rules.
    """
    data = body(
        ticket_id=ticket_id,
        ticket=dict(ticket) if ticket is not None else None,
        previous=dict(previous) if previous is not None else None,
        payload=dict(payload) if payload is not None else None,
    )
    path = resource_path(RULES, rule_id, "test")
    return Call("POST", path, json=data)


# -- workflow definitions ----------------------------------------------------------------


def workflow_definitions() -> Call:
    """GET /v1/workflow-definitions: the newest version of every defined workflow."""
    return Call("GET", DEFINITIONS)


def get_workflow_definition(name: str, *, version: int | None = None) -> Call:
    """GET /v1/workflow-definitions/{name} (its newest version, or ``version``)."""
    return Call("GET", resource_path(DEFINITIONS, name), params=query(version=version))


def _definition(
    task_queue: str,
    steps: Sequence[Mapping[str, Any]],
    description: str | None,
    category: str | None,
    name: str | None = None,
) -> JSONObject:
    return body(
        name=name,
        task_queue=task_queue,
        description=description,
        category=category,
        steps=[dict(step) for step in steps],
    )


def create_workflow_definition(
    *,
    name: str,
    task_queue: str,
    steps: Sequence[Mapping[str, Any]],
    description: str | None = None,
    category: str | None = None,
) -> Call:
    """POST /v1/workflow-definitions: a new definition (version 1).

    Sent without an idempotency key (the API answers a second create of the name with 409),
    so it is retried only when it cannot have reached the server.
    """
    payload = _definition(task_queue, steps, description, category, name=name)
    return Call("POST", DEFINITIONS, json=payload, auto_idempotency_key=False)


def update_workflow_definition(
    name: str,
    *,
    task_queue: str,
    steps: Sequence[Mapping[str, Any]],
    description: str | None = None,
    category: str | None = None,
) -> Call:
    """PUT /v1/workflow-definitions/{name}: the next version (a body equal to the newest
    version stores nothing, so a replay is harmless)."""
    payload = _definition(task_queue, steps, description, category)
    return Call("PUT", resource_path(DEFINITIONS, name), json=payload)


# -- tickets -----------------------------------------------------------------------------


def tickets(
    *,
    status: str | None = None,
    priority: str | None = None,
    category: str | None = None,
    assignee: str | None = None,
    requester: str | None = None,
) -> Listing:
    """GET /v1/tickets, filtered by status, priority, category, assignee and requester."""
    filters = query(
        status=status,
        priority=priority,
        category=category,
        assignee=assignee,
        requester=requester,
    )
    return Listing(TICKETS, filters)


def create_ticket(
    *,
    title: str,
    description: str | None = None,
    category: str | None = None,
    priority: str | None = None,
    status: str | None = None,
    assignee: str | None = None,
    requester: str | None = None,
    extra: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Call:
    """POST /v1/tickets."""
    payload = body(
        extra,
        title=title,
        description=description,
        category=category,
        priority=priority,
        status=status,
        assignee=assignee,
        requester=requester,
    )
    return Call("POST", TICKETS, json=payload, idempotency_key=idempotency_key)


def get_ticket(ticket_id: str) -> Call:
    """GET /v1/tickets/{id}."""
    return Call("GET", resource_path(TICKETS, ticket_id))


def update_ticket(
    ticket_id: str,
    *,
    title: str | NotGiven = NOT_GIVEN,
    description: str | NotGiven | None = NOT_GIVEN,
    category: str | NotGiven | None = NOT_GIVEN,
    priority: str | NotGiven = NOT_GIVEN,
    status: str | NotGiven = NOT_GIVEN,
    assignee: str | NotGiven | None = NOT_GIVEN,
    requester: str | NotGiven | None = NOT_GIVEN,
    extra: Mapping[str, Any] | None = None,
) -> Call:
    """PATCH /v1/tickets/{id} with the fields given (``None`` clears a field)."""
    payload = _patch(
        extra,
        title=title,
        description=description,
        category=category,
        priority=priority,
        status=status,
        assignee=assignee,
        requester=requester,
    )
    return Call("PATCH", resource_path(TICKETS, ticket_id), json=payload)


# -- jobs --------------------------------------------------------------------------------


def get_job_queues() -> Call:
    """GET /v1/jobs/queues: job counts per state for each background queue."""
    return Call("GET", JOB_QUEUES)
