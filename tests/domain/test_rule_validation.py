"""Rule validation says exactly what is wrong and where, and takes exactly what is allowed.

Each refusal is matched in full, so that a message that loses its field path or its reason
fails here; each limit is tried at the limit (accepted) and one past it (refused).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from protocol_lab.domain import Rule, RuleError, match_conditions, parse_action, validate_conditions
from protocol_lab.domain.rules import (
    MAX_CONDITION_DEPTH,
    MAX_CONDITION_TERMS,
    SendNotificationAction,
    StartWorkflowAction,
    Trigger,
    UpdateFieldAction,
    condition_fields,
    is_group,
    load_rules,
)
from protocol_lab.domain.timeline import TriggerType

NOW = 1_700_000_000.0
NOTIFY = {"type": "send_notification", "recipient": "ops", "message": "m"}


def _raw(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "r",
        "trigger": "on_ticket_created",
        "conditions": {},
        "action": NOTIFY,
    }
    raw.update(overrides)
    return raw


def _refused(conditions: Any, message: str, trigger: Trigger | None = None) -> None:
    with pytest.raises(RuleError, match=f"^{re.escape(message)}$"):
        validate_conditions(conditions, trigger=trigger)


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        (["priority"], "conditions must be an object of field -> value"),
        ({"": 1}, "conditions: condition field names must be non-empty strings"),
        ({1: 1}, "conditions: condition field names must be non-empty strings"),
        ({"priority": {}}, "conditions.priority: empty operator object"),
        (
            {"priority": {"between": 1}},
            "conditions.priority.between: unknown operator; use one of ['changed', 'changed_to',"
            " 'contains', 'eq', 'gt', 'gte', 'in', 'lt', 'lte', 'not_in']",
        ),
        ({"priority": {"in": "P1"}}, "conditions.priority.in: needs a list of values"),
        ({"priority": {"not_in": 3}}, "conditions.priority.not_in: needs a list of values"),
        ({"score": {"gt": "1"}}, "conditions.score.gt: needs a finite number"),
        ({"score": {"gte": True}}, "conditions.score.gte: needs a finite number"),
        ({"score": {"lt": float("nan")}}, "conditions.score.lt: needs a finite number"),
        ({"score": {"lte": float("inf")}}, "conditions.score.lte: needs a finite number"),
        ({"title": {"contains": 1}}, "conditions.title.contains: needs a string"),
        ({"status": {"changed": 1}}, "conditions.status.changed: needs true or false"),
        ({"any": []}, "conditions.any: needs at least one conditions object"),
        ({"all": [{}]}, "conditions.all[0]: empty conditions object"),
        ({"all": [{"x": 1}, 2]}, "conditions.all[1]: needs a conditions object"),
        ({"any": [{"all": [{"x": {}}]}]}, "conditions.any[0].all[0].x: empty operator object"),
    ],
)
def test_each_malformed_condition_is_refused_with_its_path_and_reason(
    conditions: Any, message: str
) -> None:
    _refused(conditions, message)


def test_numbers_of_every_kind_are_thresholds_but_not_booleans() -> None:
    for operand in (0, -1, 2.5, 10**6):
        for op in ("gt", "gte", "lt", "lte"):
            validate_conditions({"score": {op: operand}})
    validate_conditions({"priority": {"in": ["P1"], "not_in": ("P2",)}})
    validate_conditions({"status": {"changed": False}})
    validate_conditions({"title": {"contains": ""}})


@pytest.mark.parametrize("trigger", [Trigger.ON_TICKET_CREATED, Trigger.SCHEDULED, Trigger.WEBHOOK])
@pytest.mark.parametrize("op", ["changed", "changed_to"])
def test_changed_operators_belong_to_update_rules_only(trigger: Trigger, op: str) -> None:
    operand = True if op == "changed" else "resolved"
    _refused(
        {"status": {op: operand}},
        f"conditions.status.{op}: only meaningful for on_ticket_updated rules",
        trigger=trigger,
    )
    validate_conditions({"status": {op: operand}}, trigger=Trigger.ON_TICKET_UPDATED)
    validate_conditions({"status": {op: operand}}, trigger=None)


@pytest.mark.parametrize(
    "trigger", [Trigger.ON_TICKET_CREATED, Trigger.ON_TICKET_UPDATED, Trigger.SCHEDULED]
)
def test_ticket_triggers_take_ticket_and_derived_fields_only(trigger: Trigger) -> None:
    validate_conditions({"priority": "P1", "idle_hours": 2, "age_hours": 1}, trigger=trigger)
    with pytest.raises(RuleError, match=r"^conditions\.any\[0\]\.alert: unknown field; ticket"):
        validate_conditions({"any": [{"alert": 1}]}, trigger=trigger)
    _refused(
        {"alert": 1},
        "conditions.alert: unknown field; ticket fields are ['age_hours', 'assignee',"
        " 'category', 'created_at', 'description', 'id', 'idle_hours', 'last_activity_at',"
        " 'priority', 'requester', 'status', 'title', 'updated_at']",
        trigger=trigger,
    )
    validate_conditions({"alert.severity": 1}, trigger=Trigger.WEBHOOK)
    validate_conditions({"alert.severity": 1}, trigger=None)


def _nested(depth: int) -> dict[str, Any]:
    conditions: dict[str, Any] = {"x": 1}
    for _ in range(depth):
        conditions = {"all": [conditions]}
    return conditions


def test_groups_nest_to_the_limit_and_not_one_deeper() -> None:
    validate_conditions(_nested(MAX_CONDITION_DEPTH))
    path = ".".join(["conditions", *["all[0]"] * MAX_CONDITION_DEPTH, "all"])
    _refused(_nested(MAX_CONDITION_DEPTH + 1), f"{path}: groups nest at most 4 deep")


def test_conditions_count_to_the_limit_and_not_one_more() -> None:
    flat = {f"f{i}": i for i in range(MAX_CONDITION_TERMS)}
    validate_conditions(flat)
    _refused({**flat, "one_more": 0}, "conditions: more than 100 conditions")
    # a group counts as one condition, beside its members
    grouped = {"any": [{f"f{i}": i for i in range(MAX_CONDITION_TERMS - 1)}]}
    validate_conditions(grouped)
    _refused({**grouped, "x": 0}, "conditions: more than 100 conditions")
    members = [{"x": i} for i in range(MAX_CONDITION_TERMS - 1)]
    validate_conditions({"any": members})
    _refused({"any": [*members, {"x": 0}]}, "conditions: more than 100 conditions")
    _refused(
        {"any": [{"x": i} for i in range(MAX_CONDITION_TERMS + 1)]},
        "conditions.any: more than 100 conditions objects",
    )
    # members of several groups add up
    _refused(
        {"all": [{"x": 1}] * 50, "any": [{"x": 2}] * 49},
        "conditions: more than 100 conditions",
    )
    validate_conditions({"all": [{"x": 1}] * 49, "any": [{"x": 2}] * 49})


def test_condition_fields_and_groups() -> None:
    conditions = {
        "priority": "P1",
        "any": [{"status": "open"}, {"all": [{"title": {"contains": "x"}}]}, "ignored"],
        "all": {"eq": 1},  # a field named all, compared with an operator object
    }
    assert condition_fields(conditions) == {"priority", "status", "title", "all"}
    assert is_group("any", [])
    assert is_group("all", [{}])
    assert not is_group("any", {})
    assert not is_group("other", [])


# --- the rule model -----------------------------------------------------------------------------


def _model_error(raw: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        Rule.model_validate(raw)
    return str(caught.value.errors()[0]["msg"])


def test_a_rule_needs_one_action_or_a_list_of_them() -> None:
    assert _model_error(_raw(action=None)) == (
        "Value error, action: field required (or give actions, a list)"
    )
    assert _model_error(_raw(actions=[NOTIFY])) == (
        "Value error, action: give one action, or a list of actions as actions, not both"
    )
    rule = Rule.model_validate(_raw(action=None, actions=[NOTIFY] * 10))
    assert len(rule.steps) == 10


def test_schedules_belong_to_scheduled_rules() -> None:
    assert _model_error(_raw(schedule_interval_s=60)) == (
        "Value error, schedule_interval_s is only for scheduled rules"
    )
    assert _model_error(_raw(schedule_cron="@daily")) == (
        "Value error, schedule_cron is only for scheduled rules"
    )
    scheduled = _raw(trigger="scheduled")
    assert _model_error({**scheduled, "schedule_cron": "@daily", "schedule_interval_s": 1}) == (
        "Value error, give schedule_interval_s or schedule_cron, not both"
    )
    assert Rule.model_validate({**scheduled, "schedule_interval_s": 0.5}).schedule_interval_s
    assert "greater than 0" in _model_error({**scheduled, "schedule_interval_s": 0})
    assert Rule.model_validate({**scheduled, "schedule_cron": "*/5 * * * *"}).schedule_cron


def test_conditions_are_checked_for_the_rules_trigger() -> None:
    assert _model_error(_raw(conditions={"status": {"changed": True}})) == (
        "Value error, conditions.status.changed: only meaningful for on_ticket_updated rules"
    )
    assert Rule.model_validate(_raw(trigger="webhook", conditions={"a.b": 1})).conditions


def test_the_trigger_type_a_started_workflow_carries() -> None:
    start = {"type": "start_workflow", "workflow_name": "W", "task_queue": "itsm-workflows"}
    assert Rule.model_validate(_raw(action=start)).trigger_type is TriggerType.AUTOMATIC
    assert Rule.model_validate(_raw(action=NOTIFY)).trigger_type is TriggerType.AUTOMATIC
    event = {**start, "trigger_type": "event_based"}
    assert Rule.model_validate(_raw(action=event)).trigger_type is TriggerType.EVENT_BASED
    scheduled = Rule.model_validate(_raw(trigger="scheduled", action=event))
    assert scheduled.trigger_type is TriggerType.SCHEDULED


# --- actions ------------------------------------------------------------------------------------


def test_actions_are_parsed_into_their_own_models_with_their_defaults() -> None:
    start = parse_action(
        {"type": "start_workflow", "workflow_name": "W", "task_queue": "itsm-fleet"}
    )
    assert isinstance(start, StartWorkflowAction)
    assert (start.trigger_type, start.input) == ("automatic", {})
    notify = parse_action({"type": "send_notification", "recipient": "a", "message": "m"})
    assert isinstance(notify, SendNotificationAction)
    assert (notify.channel, notify.subject) == ("notification", None)
    update = parse_action({"type": "update_field", "field": "status", "value": "resolved"})
    assert isinstance(update, UpdateFieldAction)
    assert update.as_sent() == {"type": "update_field", "field": "status", "value": "resolved"}
    # as sent means as JSON: the task queue is its plain string, not the enum member
    sent = start.as_sent()
    assert sent == {"type": "start_workflow", "workflow_name": "W", "task_queue": "itsm-fleet"}
    assert type(sent["task_queue"]) is str


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            {"type": "update_field", "field": "id", "value": "x"},
            "action.update_field: Value error,",
        ),
        (
            {"type": "start_workflow", "task_queue": "itsm-fleet"},
            "action.start_workflow.workflow_name: Field required",
        ),
        (
            {"type": "send_notification", "recipient": "", "message": "m"},
            "action.send_notification.recipient: String should have at least 1 character",
        ),
        ({"type": "nope"}, "action"),
    ],
)
def test_an_action_error_names_the_field_at_fault(action: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=f"^{re.escape(message)}"):
        parse_action(action)
    if action["type"] == "nope":
        # an error of the whole object names the object, then the message
        with pytest.raises(RuleError, match=r"^action: Input tag 'nope' found using 'type'"):
            parse_action(action)


def test_update_field_values_are_checked_per_field() -> None:
    def error(field: str, value: str | None) -> str:
        with pytest.raises(RuleError) as caught:
            parse_action({"type": "update_field", "field": field, "value": value})
        return str(caught.value)

    assert error("id", "x") == (
        "action.update_field: Value error, field must be one of ['assignee', 'category',"
        " 'description', 'priority', 'status', 'title']"
    )
    assert error("priority", "P9").startswith(
        "action.update_field: Value error, value for priority must be one of ['P1',"
    )
    assert error("category", "x" * 65) == (
        "action.update_field: Value error, value for category: at most 64 characters"
    )
    assert parse_action({"type": "update_field", "field": "category", "value": "x" * 64})
    assert parse_action({"type": "update_field", "field": "assignee", "value": None})


def test_a_free_text_value_is_measured_as_it_will_be_written() -> None:
    # "}}" outside a placeholder is written as one brace: 65 characters written as 64
    braces = "x" * 63 + "}}"
    action = parse_action({"type": "update_field", "field": "category", "value": braces})
    assert isinstance(action, UpdateFieldAction)
    assert (action.constant, action.templated, action.max_chars) == ("x" * 63 + "}", False, 64)
    with pytest.raises(RuleError, match="at most 64 characters"):
        parse_action({"type": "update_field", "field": "category", "value": "x" + braces})
    templated = parse_action(
        {"type": "update_field", "field": "category", "value": "{{ticket.title}}" * 10}
    )
    assert isinstance(templated, UpdateFieldAction)
    assert templated.templated
    status = parse_action({"type": "update_field", "field": "status", "value": "resolved"})
    assert isinstance(status, UpdateFieldAction)
    assert (status.max_chars, status.templated, status.constant) == (None, False, "resolved")
    empty = UpdateFieldAction(field="assignee", value=None)
    assert (empty.templated, empty.constant) == (False, None)


def test_a_bad_template_is_refused_unless_the_rule_was_stored_before_the_check() -> None:
    bad = {**NOTIFY, "message": "{{ticket.nope}}"}
    with pytest.raises(
        RuleError,
        match=r"^action\.send_notification\.message: Value error, unknown placeholder "
        r"'\{\{ticket\.nope\}\}'",
    ):
        parse_action(bad)
    with pytest.raises(ValidationError, match="subject"):
        Rule.model_validate(_raw(action={**NOTIFY, "subject": "{{rule.nope}}"}))
    stored = Rule.model_validate(_raw(action=bad), context={"stored": True})
    assert stored.steps[0].type == "send_notification"
    with pytest.raises(ValidationError):
        Rule.model_validate(_raw(action=bad), context={"stored": "yes"})


# --- loading rules ------------------------------------------------------------------------------


OK_RULE = (
    "- {name: ok, trigger: webhook, action: {type: send_notification, recipient: a, message: m}}\n"
)


def test_load_rules_names_the_file_and_the_rule_at_fault(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(f"{OK_RULE}- {{name: bad, trigger: nope}}\n")
    with pytest.raises(RuleError, match=rf"^{re.escape(str(path))}: rule 'bad': trigger: "):
        load_rules(path)
    path.write_text(f"{OK_RULE}- {{trigger: webhook}}\n")
    with pytest.raises(RuleError, match=rf"^{re.escape(str(path))}: rule '#1': "):
        load_rules(path)
    path.write_text("- [not, a, rule]\n")
    with pytest.raises(RuleError, match=rf"^{re.escape(str(path))}: rule '#0': "):
        load_rules(path)
    path.write_text("name: not a list\n")
    with pytest.raises(RuleError, match=rf"^{re.escape(str(path))}: expected a list of rules$"):
        load_rules(path)
    path.write_text("")
    assert load_rules(path) == []
    path.write_text(OK_RULE)
    assert [r.name for r in load_rules(str(path))] == ["ok"]
    with pytest.raises(RuleError, match=re.escape(str(tmp_path / "missing.yaml"))):
        load_rules(tmp_path / "missing.yaml")
    path.write_text("- {unclosed\n")
    with pytest.raises(RuleError, match=rf"^{re.escape(str(path))}: "):
        load_rules(path)


def test_match_conditions_refuses_what_validation_refuses() -> None:
    with pytest.raises(RuleError, match=r"^conditions\.x\.between: unknown operator"):
        match_conditions({"x": {"between": 1}}, {}, now=NOW)
