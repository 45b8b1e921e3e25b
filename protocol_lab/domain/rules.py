"""Automation rules: typed models and the one pure matcher used by the service and the simulator.

A rule is ``{name, trigger, conditions, action, enabled}``. Conditions map a field to either an
expected value (equality, as in the API page's examples) or an operator object::

    {"priority": "P1"}                                  equality
    {"priority": {"in": ["P1", "P2"]}}                  membership (also not_in)
    {"idle_hours": {"gte": 24}}                         comparisons gt, gte, lt, lte
    {"title": {"contains": "VPN"}}                      substring, case-insensitive
    {"status": {"changed": true}}                       the field changed in this update
    {"status": {"changed_to": "resolved"}}              it changed, and to this value

The derived fields ``idle_hours`` and ``age_hours`` are computed from the ticket's timestamps at
match time; a bare number for them is a threshold (``{"idle_hours": 24}`` means at least 24 hours),
which is what the page's stale-ticket example means. Several operators in one object must all hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from protocol_lab.domain.errors import RuleError
from protocol_lab.domain.paths import DATA_DIR
from protocol_lab.domain.queues import TaskQueue
from protocol_lab.domain.templates import TemplateError, validate_template
from protocol_lab.domain.tickets import DERIVED_FIELDS, TICKET_FIELDS, WRITABLE_FIELDS
from protocol_lab.domain.timeline import TriggerType

__all__ = [
    "OPERATORS",
    "Action",
    "ActionType",
    "ConditionCheck",
    "MatchResult",
    "Rule",
    "SendNotificationAction",
    "StartWorkflowAction",
    "Trigger",
    "UpdateFieldAction",
    "load_rules",
    "match_conditions",
    "parse_action",
    "validate_conditions",
]

OPERATORS: Final = frozenset(
    {"eq", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "changed", "changed_to"}
)
_NUMERIC_OPS: Final = frozenset({"gt", "gte", "lt", "lte"})


class Trigger(StrEnum):
    """The event that activates a rule."""

    ON_TICKET_CREATED = "on_ticket_created"
    ON_TICKET_UPDATED = "on_ticket_updated"
    SCHEDULED = "scheduled"
    WEBHOOK = "webhook"


class ActionType(StrEnum):
    """What a rule does when it fires."""

    START_WORKFLOW = "start_workflow"
    SEND_NOTIFICATION = "send_notification"
    UPDATE_FIELD = "update_field"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StartWorkflowAction(_Model):
    """Start a catalog workflow on a Temporal task queue, with the ticket id in its input."""

    type: Literal["start_workflow"] = "start_workflow"
    workflow_name: str = Field(min_length=1)
    task_queue: TaskQueue
    trigger_type: Literal["automatic", "event_based"] = "automatic"
    input: dict[str, Any] = Field(default_factory=dict)


class SendNotificationAction(_Model):
    """Put a notification job on the notification or email queue."""

    type: Literal["send_notification"] = "send_notification"
    channel: Literal["notification", "email"] = "notification"
    recipient: str = Field(min_length=1)
    message: str = Field(min_length=1, description="a template: {field} takes a ticket field")
    subject: str | None = Field(default=None, description="a template, like message")

    @field_validator("message", "subject")
    @classmethod
    def _template(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A rule saved before templates were checked still loads (``context={"stored": True}``):
        # the renderer copies what it does not substitute verbatim, so it stays harmless.
        stored = isinstance(info.context, dict) and info.context.get("stored") is True
        if value is not None and not stored:
            try:
                validate_template(value)
            except TemplateError as exc:
                raise ValueError(str(exc)) from exc
        return value


class UpdateFieldAction(_Model):
    """Set one writable field of the ticket (may fire on_ticket_updated rules)."""

    type: Literal["update_field"] = "update_field"
    field: str
    value: str | None

    @model_validator(mode="after")
    def _writable(self) -> UpdateFieldAction:
        if self.field not in WRITABLE_FIELDS:
            raise ValueError(f"field must be one of {sorted(WRITABLE_FIELDS)}")
        allowed = WRITABLE_FIELDS[self.field]
        if allowed is not None and self.value not in allowed:
            raise ValueError(f"value for {self.field} must be one of {sorted(allowed)}")
        return self


Action = Annotated[
    StartWorkflowAction | SendNotificationAction | UpdateFieldAction, Field(discriminator="type")
]


_ACTION_ADAPTER: Final[TypeAdapter[Any]] = TypeAdapter(Action)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])


def parse_action(
    raw: Mapping[str, Any],
) -> StartWorkflowAction | SendNotificationAction | UpdateFieldAction:
    """Validate an action object, raising :class:`RuleError` with the field at fault."""
    try:
        return _ACTION_ADAPTER.validate_python(dict(raw))  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise RuleError(f"action.{_first_error(exc)}") from exc


def validate_conditions(conditions: Mapping[str, Any], *, trigger: Trigger | None = None) -> None:
    """Check the shape of a conditions map; raise :class:`RuleError` naming the bad field.

    For ticket triggers the fields must be ticket fields or derived fields; webhook conditions
    may name any field of the posted payload (dotted paths allowed).
    """
    if not isinstance(conditions, Mapping):
        raise RuleError("conditions must be an object of field -> value")
    ticket_trigger = trigger in (
        Trigger.ON_TICKET_CREATED,
        Trigger.ON_TICKET_UPDATED,
        Trigger.SCHEDULED,
        None,
    )
    for name, spec in conditions.items():
        if not isinstance(name, str) or not name:
            raise RuleError("condition field names must be non-empty strings")
        if ticket_trigger and trigger is not None and name not in TICKET_FIELDS | DERIVED_FIELDS:
            raise RuleError(
                f"conditions.{name}: unknown field; ticket fields are "
                f"{sorted(TICKET_FIELDS | DERIVED_FIELDS)}"
            )
        if isinstance(spec, Mapping):
            if not spec:
                raise RuleError(f"conditions.{name}: empty operator object")
            for op, operand in spec.items():
                _validate_operator(name, op, operand, trigger=trigger)


def _validate_operator(name: str, op: Any, operand: Any, *, trigger: Trigger | None) -> None:
    where = f"conditions.{name}.{op}"
    if op not in OPERATORS:
        raise RuleError(f"{where}: unknown operator; use one of {sorted(OPERATORS)}")
    if op in ("in", "not_in") and (not isinstance(operand, Sequence) or isinstance(operand, str)):
        raise RuleError(f"{where}: needs a list of values")
    if op in _NUMERIC_OPS and (
        isinstance(operand, bool)
        or not isinstance(operand, int | float)
        or not math.isfinite(operand)
    ):
        raise RuleError(f"{where}: needs a finite number")
    if op == "contains" and not isinstance(operand, str):
        raise RuleError(f"{where}: needs a string")
    if op == "changed" and not isinstance(operand, bool):
        raise RuleError(f"{where}: needs true or false")
    if op in ("changed", "changed_to") and trigger not in (None, Trigger.ON_TICKET_UPDATED):
        raise RuleError(f"{where}: only meaningful for on_ticket_updated rules")


class Rule(_Model):
    """An automation rule as the API exposes it (without id and timestamps)."""

    name: str = Field(min_length=1, max_length=200)
    trigger: Trigger
    conditions: dict[str, Any] = Field(default_factory=dict)
    action: Action
    enabled: bool = True
    schedule_interval_s: float | None = Field(
        default=None, gt=0, description="how often a scheduled rule runs (default hourly)"
    )

    @model_validator(mode="after")
    def _check(self) -> Rule:
        try:
            validate_conditions(self.conditions, trigger=self.trigger)
        except RuleError as exc:
            raise ValueError(str(exc)) from exc
        if self.schedule_interval_s is not None and self.trigger is not Trigger.SCHEDULED:
            raise ValueError("schedule_interval_s is only for scheduled rules")
        return self

    @property
    def trigger_type(self) -> TriggerType:
        """The trigger_type a workflow started by this rule carries."""
        if self.trigger is Trigger.SCHEDULED:
            return TriggerType.SCHEDULED
        if isinstance(self.action, StartWorkflowAction):
            return TriggerType(self.action.trigger_type)
        return TriggerType.AUTOMATIC


@dataclass(frozen=True, slots=True)
class ConditionCheck:
    """The outcome of one operator on one field: what was expected, what was seen."""

    field: str
    op: str
    expected: Any
    actual: Any
    passed: bool

    def explain(self) -> str:
        """A sentence for dry runs and execution records."""
        verdict = "holds" if self.passed else "fails"
        return f"{self.field} {self.op} {self.expected!r} {verdict} (actual {self.actual!r})"


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Whether a conditions map matched, with every check that was made."""

    matched: bool
    checks: list[ConditionCheck] = field(default_factory=list)

    @property
    def failed(self) -> list[ConditionCheck]:
        """The checks that did not hold."""
        return [c for c in self.checks if not c.passed]

    def explain(self) -> str:
        """Why it matched or not, in one line."""
        if not self.checks:
            return "no conditions: always matches"
        if self.matched:
            return "all conditions hold"
        return "; ".join(c.explain() for c in self.failed)


_MISSING: Final = object()


def _lookup(record: Mapping[str, Any], name: str) -> Any:
    if name in record:
        return record[name]
    node: Any = record
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _derived(name: str, record: Mapping[str, Any], now: float) -> float | None:
    source = "last_activity_at" if name == "idle_hours" else "created_at"
    stamp = record.get(source)
    if stamp is None and name == "idle_hours":
        stamp = record.get("updated_at") or record.get("created_at")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        return None
    return (now - float(stamp)) / 3600.0


def _compare(op: str, actual: Any, expected: Any, *, before: Any) -> bool:
    if op == "eq":
        return bool(actual == expected)
    if op == "in":
        return bool(actual in expected)
    if op == "not_in":
        return bool(actual not in expected)
    if op in _NUMERIC_OPS:
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        return {
            "gt": bool(actual > expected),
            "gte": bool(actual >= expected),
            "lt": bool(actual < expected),
            "lte": bool(actual <= expected),
        }[op]
    if op == "contains":
        if isinstance(actual, str):
            return expected.lower() in actual.lower()
        if isinstance(actual, list | tuple):
            return expected in actual
        return False
    if op == "changed":
        differs = before is not _MISSING and before != actual
        return differs is expected
    if op == "changed_to":
        return before is not _MISSING and before != actual and actual == expected
    raise RuleError(f"unknown operator {op!r}")


def match_conditions(
    conditions: Mapping[str, Any],
    record: Mapping[str, Any],
    *,
    previous: Mapping[str, Any] | None = None,
    now: float,
) -> MatchResult:
    """Evaluate a conditions map against a ticket (or event payload). Pure: no I/O, no clock.

    ``previous`` is the record before the update (for ``changed`` / ``changed_to``); ``now`` is
    Unix seconds, used for derived fields. Every condition is evaluated, so the result explains
    all failures, not only the first. Malformed conditions raise :class:`RuleError`.
    """
    validate_conditions(conditions)
    checks: list[ConditionCheck] = []
    for name, spec in conditions.items():
        if name in DERIVED_FIELDS:
            actual: Any = _derived(name, record, now)
        else:
            actual = _lookup(record, name)
        before = _MISSING if previous is None else _lookup(previous, name)
        if isinstance(spec, Mapping):
            ops = list(spec.items())
        elif (
            name in DERIVED_FIELDS and isinstance(spec, int | float) and not isinstance(spec, bool)
        ):
            ops = [("gte", spec)]
        else:
            ops = [("eq", spec)]
        for op, expected in ops:
            passed = _compare(op, actual, expected, before=before)
            checks.append(ConditionCheck(name, op, expected, actual, passed))
    return MatchResult(all(c.passed for c in checks), checks)


def load_rules(path: Path | str | None = None) -> list[Rule]:
    """Read a YAML list of rules (default ``data/rules/default.yaml``); errors name the rule."""
    file = Path(path) if path is not None else DATA_DIR / "rules" / "default.yaml"
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or []
    except (OSError, yaml.YAMLError) as exc:
        raise RuleError(f"{file}: {exc}") from exc
    if not isinstance(raw, list):
        raise RuleError(f"{file}: expected a list of rules")
    rules = []
    for i, item in enumerate(raw):
        try:
            rules.append(Rule.model_validate(item))
        except ValidationError as exc:
            name = item.get("name", f"#{i}") if isinstance(item, dict) else f"#{i}"
            raise RuleError(f"{file}: rule {name!r}: {_first_error(exc)}") from exc
    return rules
