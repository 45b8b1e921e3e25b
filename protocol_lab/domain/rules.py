"""Automation rules: typed models and the one pure matcher used by the service and the simulator.

A rule is ``{name, trigger, conditions, action | actions, enabled}``. Conditions map a field to
either an expected value (equality, as in the API page's examples) or an operator object::

    {"priority": "P1"}                                  equality
    {"priority": {"in": ["P1", "P2"]}}                  membership (also not_in)
    {"idle_hours": {"gte": 24}}                         comparisons gt, gte, lt, lte
    {"title": {"contains": "VPN"}}                      substring, case-insensitive
    {"status": {"changed": true}}                       the field changed in this update
    {"status": {"changed_to": "resolved"}}              it changed, and to this value

Every entry of a conditions object must hold ("all"). Groups combine conditions objects:
``"all": [...]`` holds when every object of the list holds, ``"any": [...]`` when at least one
does; the objects of a group may hold groups again, at most :data:`MAX_CONDITION_DEPTH` deep and
:data:`MAX_CONDITION_TERMS` conditions in all::

    {"category": "incident", "any": [{"priority": "P1"}, {"title": {"contains": "outage"}}]}

(a field named ``all`` or ``any`` is still compared with an operator object, never a list).

The derived fields ``idle_hours`` and ``age_hours`` are computed from the ticket's timestamps at
match time; a bare number for them is a threshold (``{"idle_hours": 24}`` means at least 24 hours),
which is what the page's stale-ticket example means. Several operators in one object must all hold.

A rule does one ``action`` or several ``actions`` (at most :data:`MAX_ACTIONS`), in order;
:attr:`Rule.steps` is that sequence whichever was given, and :meth:`Rule.actions_as_sent` the
form the rule was written in, which the API echoes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
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

from protocol_lab.domain.cron import parse_cron
from protocol_lab.domain.errors import RuleError
from protocol_lab.domain.paths import DATA_DIR
from protocol_lab.domain.queues import TaskQueue
from protocol_lab.domain.templates import (
    TemplateError,
    has_placeholders,
    render_template,
    validate_template,
)
from protocol_lab.domain.tickets import DERIVED_FIELDS, TICKET_FIELDS, WRITABLE_FIELDS
from protocol_lab.domain.timeline import TriggerType

__all__ = [
    "GROUP_KEYS",
    "MAX_ACTIONS",
    "MAX_CONDITION_DEPTH",
    "MAX_CONDITION_TERMS",
    "OPERATORS",
    "WRITABLE_MAX_CHARS",
    "Action",
    "ActionType",
    "ConditionCheck",
    "MatchResult",
    "Rule",
    "SendNotificationAction",
    "StartWorkflowAction",
    "Trigger",
    "UpdateFieldAction",
    "condition_fields",
    "is_group",
    "load_rules",
    "match_conditions",
    "parse_action",
    "validate_conditions",
]

OPERATORS: Final = frozenset(
    {"eq", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "changed", "changed_to"}
)
_NUMERIC_OPS: Final = frozenset({"gt", "gte", "lt", "lte"})
GROUP_KEYS: Final = ("all", "any")
MAX_CONDITION_DEPTH: Final = 4
MAX_CONDITION_TERMS: Final = 100
MAX_ACTIONS: Final = 10
# The longest value the ticket API takes for each free-text field an update_field may set; a
# templated value is cut to it when rendered.
WRITABLE_MAX_CHARS: Final = {"title": 200, "description": 10_000, "category": 64, "assignee": 128}


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


def _stored(info: ValidationInfo) -> bool:
    """Whether a stored rule is being loaded (``context={"stored": True}``): checks added later
    than the rule was saved do not refuse it."""
    return isinstance(info.context, dict) and info.context.get("stored") is True


def _check_template(value: str | None, info: ValidationInfo) -> None:
    # A rule saved before templates were checked still loads: the renderer copies what it
    # does not substitute verbatim, so it stays harmless.
    if value is not None and not _stored(info):
        try:
            validate_template(value)
        except TemplateError as exc:
            raise ValueError(str(exc)) from exc


class _ActionModel(_Model):
    type: str

    def as_sent(self) -> dict[str, Any]:
        """The action as it was written: its type and the fields given, defaults left out."""
        return {"type": self.type, **self.model_dump(mode="json", exclude_unset=True)}


class StartWorkflowAction(_ActionModel):
    """Start a catalog workflow on a Temporal task queue, with the ticket id in its input."""

    type: Literal["start_workflow"] = "start_workflow"
    workflow_name: str = Field(min_length=1)
    task_queue: TaskQueue
    trigger_type: Literal["automatic", "event_based"] = "automatic"
    input: dict[str, Any] = Field(default_factory=dict)


class SendNotificationAction(_ActionModel):
    """Put a notification job on the notification or email queue."""

    type: Literal["send_notification"] = "send_notification"
    channel: Literal["notification", "email"] = "notification"
    recipient: str = Field(min_length=1)
    message: str = Field(
        min_length=1,
        description="a template: {{ticket.<field>}}, {{rule.name}}, {{rule.id}} or {field}",
    )
    subject: str | None = Field(default=None, description="a template, like message")

    @field_validator("message", "subject")
    @classmethod
    def _template(cls, value: str | None, info: ValidationInfo) -> str | None:
        _check_template(value, info)
        return value


class UpdateFieldAction(_ActionModel):
    """Set one writable field of the ticket (may fire on_ticket_updated rules).

    The value of a free-text field (category, assignee, title, description) may be a template
    like a notification's; status and priority take one of their values.
    """

    type: Literal["update_field"] = "update_field"
    field: str
    value: str | None

    @field_validator("value")
    @classmethod
    def _template(cls, value: str | None, info: ValidationInfo) -> str | None:
        _check_template(value, info)
        return value

    @model_validator(mode="after")
    def _writable(self, info: ValidationInfo) -> UpdateFieldAction:
        if self.field not in WRITABLE_FIELDS:
            raise ValueError(f"field must be one of {sorted(WRITABLE_FIELDS)}")
        allowed = WRITABLE_FIELDS[self.field]
        if allowed is not None and self.value not in allowed:
            raise ValueError(f"value for {self.field} must be one of {sorted(allowed)}")
        limit = self.max_chars
        constant = self.constant
        too_long = limit is not None and not self.templated and len(constant or "") > limit
        if too_long and not _stored(info):
            raise ValueError(f"value for {self.field}: at most {limit} characters")
        return self

    @property
    def max_chars(self) -> int | None:
        """The longest value the field takes (a rendered template is cut to it)."""
        return WRITABLE_MAX_CHARS.get(self.field)

    @property
    def templated(self) -> bool:
        """Whether the value is only known when the action runs (it has placeholders)."""
        return self.value is not None and has_placeholders(self.value)

    @property
    def constant(self) -> str | None:
        """The value written when it has no placeholders (``{{`` and ``}}`` read as braces)."""
        return None if self.value is None else render_template(self.value, {})


Action = Annotated[
    StartWorkflowAction | SendNotificationAction | UpdateFieldAction, Field(discriminator="type")
]


_ACTION_ADAPTER: Final[TypeAdapter[Any]] = TypeAdapter(Action)


def _first_error(exc: ValidationError, *, at: str = "") -> str:
    """The first error as ``path: message``, its field path under ``at`` (``at`` alone, or
    nothing, for an error of the whole object)."""
    err = exc.errors()[0]
    loc = ".".join([at, *(str(p) for p in err["loc"])] if at else [str(p) for p in err["loc"]])
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])


def parse_action(
    raw: Mapping[str, Any],
) -> StartWorkflowAction | SendNotificationAction | UpdateFieldAction:
    """Validate an action object, raising :class:`RuleError` with the field at fault."""
    try:
        return _ACTION_ADAPTER.validate_python(dict(raw))  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise RuleError(_first_error(exc, at="action")) from exc


def is_group(name: Any, spec: Any) -> bool:
    """Whether a conditions entry is an ``all`` / ``any`` group (a list of conditions objects)."""
    return name in GROUP_KEYS and isinstance(spec, list)


def condition_fields(conditions: Mapping[str, Any]) -> set[str]:
    """Every field a conditions object reads, inside its groups too."""
    fields: set[str] = set()
    for name, spec in conditions.items():
        if is_group(name, spec):
            for member in spec:
                if isinstance(member, Mapping):
                    fields |= condition_fields(member)
        else:
            fields.add(name)
    return fields


def validate_conditions(conditions: Mapping[str, Any], *, trigger: Trigger | None = None) -> None:
    """Check the shape of a conditions object; raise :class:`RuleError` naming the bad field.

    For ticket triggers the fields must be ticket fields or derived fields; webhook conditions
    may name any field of the posted payload (dotted paths allowed). Groups nest at most
    :data:`MAX_CONDITION_DEPTH` deep and hold at most :data:`MAX_CONDITION_TERMS` conditions.
    """
    if not isinstance(conditions, Mapping):
        raise RuleError("conditions must be an object of field -> value")
    terms = _validate_object(conditions, "conditions", depth=0, trigger=trigger)
    if terms > MAX_CONDITION_TERMS:
        raise RuleError(f"conditions: more than {MAX_CONDITION_TERMS} conditions")


def _validate_object(
    conditions: Mapping[str, Any], where: str, *, depth: int, trigger: Trigger | None
) -> int:
    """Check one conditions object; return how many conditions it holds, groups included."""
    ticket_trigger = trigger in (
        Trigger.ON_TICKET_CREATED,
        Trigger.ON_TICKET_UPDATED,
        Trigger.SCHEDULED,
    )
    terms = 0
    for name, spec in conditions.items():
        if not isinstance(name, str) or not name:
            raise RuleError(f"{where}: condition field names must be non-empty strings")
        if is_group(name, spec):
            terms += _validate_group(spec, f"{where}.{name}", depth=depth + 1, trigger=trigger)
            continue
        terms += 1
        if terms > MAX_CONDITION_TERMS:
            raise RuleError(f"conditions: more than {MAX_CONDITION_TERMS} conditions")
        if ticket_trigger and name not in TICKET_FIELDS | DERIVED_FIELDS:
            raise RuleError(
                f"{where}.{name}: unknown field; ticket fields are "
                f"{sorted(TICKET_FIELDS | DERIVED_FIELDS)}"
            )
        if isinstance(spec, Mapping):
            if not spec:
                raise RuleError(f"{where}.{name}: empty operator object")
            for op, operand in spec.items():
                _validate_operator(f"{where}.{name}", op, operand, trigger=trigger)
    return terms


def _validate_group(members: list[Any], where: str, *, depth: int, trigger: Trigger | None) -> int:
    if depth > MAX_CONDITION_DEPTH:
        raise RuleError(f"{where}: groups nest at most {MAX_CONDITION_DEPTH} deep")
    if not members:
        raise RuleError(f"{where}: needs at least one conditions object")
    if len(members) > MAX_CONDITION_TERMS:
        raise RuleError(f"{where}: more than {MAX_CONDITION_TERMS} conditions objects")
    terms = 1
    for i, member in enumerate(members):
        if not isinstance(member, Mapping):
            raise RuleError(f"{where}[{i}]: needs a conditions object")
        if not member:
            raise RuleError(f"{where}[{i}]: empty conditions object")
        terms += _validate_object(member, f"{where}[{i}]", depth=depth, trigger=trigger)
        if terms > MAX_CONDITION_TERMS:
            raise RuleError(f"conditions: more than {MAX_CONDITION_TERMS} conditions")
    return terms


def _validate_operator(field: str, op: Any, operand: Any, *, trigger: Trigger | None) -> None:
    where = f"{field}.{op}"
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
    action: Action | None = Field(default=None, description="the one action (or give actions)")
    actions: tuple[Action, ...] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ACTIONS,
        description="several actions, performed in order (or give action)",
    )
    enabled: bool = True
    schedule_interval_s: float | None = Field(
        default=None, gt=0, description="how often a scheduled rule runs (default hourly)"
    )
    schedule_cron: str | None = Field(
        default=None, description="when a scheduled rule runs: a cron expression, in UTC"
    )

    @model_validator(mode="after")
    def _check(self) -> Rule:
        if (self.action is None) == (self.actions is None):
            raise ValueError(
                "action: give one action, or a list of actions as actions, not both"
                if self.action is not None
                else "action: field required (or give actions, a list)"
            )
        try:
            validate_conditions(self.conditions, trigger=self.trigger)
        except RuleError as exc:
            raise ValueError(str(exc)) from exc
        scheduled = self.trigger is Trigger.SCHEDULED
        if self.schedule_interval_s is not None and not scheduled:
            raise ValueError("schedule_interval_s is only for scheduled rules")
        if self.schedule_cron is not None:
            if not scheduled:
                raise ValueError("schedule_cron is only for scheduled rules")
            if self.schedule_interval_s is not None:
                raise ValueError("give schedule_interval_s or schedule_cron, not both")
            try:
                parse_cron(self.schedule_cron)
            except RuleError as exc:
                raise ValueError(str(exc)) from exc
        return self

    @property
    def steps(self) -> tuple[StartWorkflowAction | SendNotificationAction | UpdateFieldAction, ...]:
        """The actions to perform, in order (one for a rule with a single ``action``)."""
        if self.actions is not None:
            return self.actions
        assert self.action is not None
        return (self.action,)

    def actions_as_sent(self) -> dict[str, Any]:
        """``{"action": {...}}`` or ``{"actions": [...]}``, as the rule was written."""
        if self.actions is not None:
            return {"actions": [a.as_sent() for a in self.actions]}
        assert self.action is not None
        return {"action": self.action.as_sent()}

    @property
    def trigger_type(self) -> TriggerType:
        """The trigger_type a workflow started by this rule's first start_workflow carries."""
        starts = [a for a in self.steps if isinstance(a, StartWorkflowAction)]
        return self.trigger_type_of(starts[0]) if starts else self.trigger_type_of(None)

    def trigger_type_of(self, action: StartWorkflowAction | None) -> TriggerType:
        """The trigger_type a workflow started by ``action`` carries."""
        if self.trigger is Trigger.SCHEDULED:
            return TriggerType.SCHEDULED
        if action is not None:
            return TriggerType(action.trigger_type)
        return TriggerType.AUTOMATIC


@dataclass(frozen=True, slots=True)
class ConditionCheck:
    """The outcome of one operator on one field: what was expected, what was seen."""

    field: str
    op: str
    expected: Any
    actual: Any
    passed: bool
    group: str = ""  # where in the groups, e.g. "any[1]"; empty at the top level

    def explain(self) -> str:
        """A sentence for dry runs and execution records."""
        verdict = "holds" if self.passed else "fails"
        where = f"{self.group}: " if self.group else ""
        return f"{where}{self.field} {self.op} {self.expected!r} {verdict} (actual {self.actual!r})"


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
            if not self.failed:
                return "all conditions hold"
            return "conditions hold (an alternative of an any group failed: " + (
                "; ".join(c.explain() for c in self.failed) + ")"
            )
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
    """Evaluate a conditions object against a ticket (or event payload). Pure: no I/O, no clock.

    ``previous`` is the record before the update (for ``changed`` / ``changed_to``); ``now`` is
    Unix seconds, used for derived fields. Every condition is evaluated, inside groups too, so
    the result explains all failures, not only the first. Malformed conditions raise
    :class:`RuleError`. Time and size are linear in the conditions (bounded when validated).
    """
    validate_conditions(conditions)
    return _match_valid(conditions, record, previous, now)


def _match_valid(
    conditions: Mapping[str, Any],
    record: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    now: float,
) -> MatchResult:
    """:func:`match_conditions` for conditions already validated (a :class:`Rule`'s)."""
    checks: list[ConditionCheck] = []
    matched = _match_object(conditions, record, previous, now, "", checks)
    return MatchResult(matched, checks)


def _match_object(
    conditions: Mapping[str, Any],
    record: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    now: float,
    group: str,
    checks: list[ConditionCheck],
) -> bool:
    """Whether every entry of one conditions object holds; appends each check made."""
    holds = True
    for name, spec in conditions.items():
        if name in GROUP_KEYS and isinstance(spec, list):  # is_group, inlined: this is hot
            prefix = f"{group}.{name}" if group else name
            outcomes = [
                _match_object(member, record, previous, now, f"{prefix}[{i}]", checks)
                for i, member in enumerate(spec)
            ]
            holds &= all(outcomes) if name == "all" else any(outcomes)
            continue
        derived = name in DERIVED_FIELDS
        if derived:
            actual: Any = _derived(name, record, now)
        elif name in record:
            actual = record[name]
        else:
            actual = _lookup(record, name)
        if type(spec) is dict or isinstance(spec, Mapping):
            ops: Iterable[tuple[str, Any]] = spec.items()
        elif derived and isinstance(spec, int | float) and not isinstance(spec, bool):
            ops = (("gte", spec),)
        else:
            # the commonest condition, an equality, without the operator dispatch
            passed = bool(actual == spec)
            checks.append(ConditionCheck(name, "eq", spec, actual, passed, group))
            holds &= passed
            continue
        before = _MISSING if previous is None else _lookup(previous, name)
        for op, expected in ops:
            passed = _compare(op, actual, expected, before=before)
            checks.append(ConditionCheck(name, op, expected, actual, passed, group))
            holds &= passed
    return holds


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
