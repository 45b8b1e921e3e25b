"""Rules: models validated per trigger and action; the matcher, with property-based tests."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from protocol_lab.domain import (
    Rule,
    RuleCycleError,
    RuleError,
    StartWorkflowAction,
    TriggerType,
    check_no_cycles,
    find_update_cycles,
    load_rules,
    match_conditions,
    parse_action,
    validate_conditions,
)

NOW = 1_700_000_000.0
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["P1", "P2", "open", "x"])
)
numbers = st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False))
fields = st.sampled_from(["priority", "status", "category", "assignee", "title"])


def _rule(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "r",
        "trigger": "on_ticket_created",
        "conditions": {"priority": "P1", "category": "incident"},
        "action": {
            "type": "start_workflow",
            "workflow_name": "P1 Incident Response",
            "task_queue": "itsm-high-priority",
        },
    }
    raw.update(overrides)
    return raw


# --- models ---------------------------------------------------------------------------------


def test_spec_example_rules_validate() -> None:
    rule = Rule.model_validate(_rule())
    assert rule.enabled is True
    assert isinstance(rule.action, StartWorkflowAction)
    stale = Rule.model_validate(
        _rule(
            trigger="scheduled",
            conditions={"status": "open", "idle_hours": 24},
            action={
                "type": "start_workflow",
                "workflow_name": "SLA Escalation",
                "task_queue": "itsm-high-priority",
            },
        )
    )
    assert stale.trigger_type is TriggerType.SCHEDULED


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"type": "start_workflow", "workflow_name": "X", "task_queue": "nope"}, "task_queue"),
        ({"type": "start_workflow", "task_queue": "itsm-fleet"}, "workflow_name"),
        ({"type": "send_notification", "message": "hi"}, "recipient"),
        ({"type": "update_field", "field": "id", "value": "x"}, "field must be one of"),
        ({"type": "update_field", "field": "priority", "value": "P9"}, "must be one of"),
        ({"type": "launch_rocket"}, "type"),
    ],
)
def test_actions_are_validated_for_their_own_fields(action: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_action(action)
    with pytest.raises(ValidationError):
        Rule.model_validate(_rule(action=action))


def test_ticket_rules_refuse_unknown_fields_but_webhook_rules_take_payload_paths() -> None:
    with pytest.raises(ValidationError, match="unknown field"):
        Rule.model_validate(_rule(conditions={"priorty": "P1"}))
    rule = Rule.model_validate(_rule(trigger="webhook", conditions={"alert.severity": "critical"}))
    assert match_conditions(rule.conditions, {"alert": {"severity": "critical"}}, now=NOW).matched


@pytest.mark.parametrize(
    "conditions",
    [
        {"priority": {"in": "P1"}},
        {"priority": {"between": [1, 2]}},
        {"idle_hours": {"gt": "soon"}},
        {"idle_hours": {"gt": True}},
        {"title": {"contains": 3}},
        {"status": {"changed": "yes"}},
        {"status": {}},
        ["priority"],
    ],
)
def test_malformed_conditions_raise_rule_error(conditions: Any) -> None:
    with pytest.raises(RuleError):
        validate_conditions(conditions)
    with pytest.raises(RuleError):
        match_conditions(conditions, {}, now=NOW)


def test_changed_operators_only_for_update_rules() -> None:
    with pytest.raises(ValidationError, match="on_ticket_updated"):
        Rule.model_validate(_rule(conditions={"status": {"changed": True}}))


def test_shipped_rules_load_without_cycles() -> None:
    rules = load_rules()
    assert len(rules) >= 6
    assert find_update_cycles([(r.name, r) for r in rules]) == []


# --- the matcher ----------------------------------------------------------------------------


def test_explanations_name_every_failed_condition() -> None:
    result = match_conditions(
        {"priority": "P1", "category": "incident"},
        {"priority": "P3", "category": "request"},
        now=NOW,
    )
    assert not result.matched
    assert [c.field for c in result.failed] == ["priority", "category"]
    assert "priority eq 'P1' fails (actual 'P3')" in result.explain()


def test_idle_hours_is_a_threshold_from_last_activity() -> None:
    ticket = {"status": "open", "last_activity_at": NOW - 25 * 3600, "created_at": NOW - 99 * 3600}
    assert match_conditions({"status": "open", "idle_hours": 24}, ticket, now=NOW).matched
    assert not match_conditions({"idle_hours": 26}, ticket, now=NOW).matched
    assert match_conditions({"age_hours": {"gt": 98}}, ticket, now=NOW).matched
    assert not match_conditions({"idle_hours": 1}, {"status": "open"}, now=NOW).matched


@given(field=fields, expected=scalars, actual=scalars)
def test_equality_matches_exactly_when_equal(field: str, expected: Any, actual: Any) -> None:
    result = match_conditions({field: expected}, {field: actual}, now=NOW)
    assert result.matched == (actual == expected)


@given(field=fields, options=st.lists(scalars, max_size=4), actual=scalars)
def test_in_and_not_in_are_complements(field: str, options: list[Any], actual: Any) -> None:
    record = {field: actual}
    inside = match_conditions({field: {"in": options}}, record, now=NOW).matched
    outside = match_conditions({field: {"not_in": options}}, record, now=NOW).matched
    assert inside != outside


@given(threshold=numbers, actual=numbers)
def test_numeric_comparisons_partition_the_line(threshold: float, actual: float) -> None:
    record = {"priority_score": actual}

    def holds(op: str) -> bool:
        return match_conditions({"priority_score": {op: threshold}}, record, now=NOW).matched

    assert holds("gt") != holds("lte")
    assert holds("gte") != holds("lt")
    assert holds("gte") == (holds("gt") or actual == threshold)


@given(
    left=st.dictionaries(st.sampled_from(["priority", "status"]), scalars, max_size=2),
    right=st.dictionaries(st.sampled_from(["category", "assignee"]), scalars, max_size=2),
    record=st.dictionaries(fields, scalars),
)
def test_conditions_are_a_conjunction(
    left: dict[str, Any], right: dict[str, Any], record: dict[str, Any]
) -> None:
    both = match_conditions({**left, **right}, record, now=NOW).matched
    assert both == (
        match_conditions(left, record, now=NOW).matched
        and match_conditions(right, record, now=NOW).matched
    )
    if not match_conditions(left, record, now=NOW).matched:
        assert not both  # adding conditions never turns a miss into a match


@given(field=fields, before=scalars, after=scalars, target=scalars)
def test_changed_to_implies_changed(field: str, before: Any, after: Any, target: Any) -> None:
    record, previous = {field: after}, {field: before}
    changed = match_conditions({field: {"changed": True}}, record, previous=previous, now=NOW)
    changed_to = match_conditions(
        {field: {"changed_to": target}}, record, previous=previous, now=NOW
    )
    assert changed.matched == (before != after)
    if changed_to.matched:
        assert changed.matched
        assert after == target


@given(text=st.text(max_size=20), needle=st.text(min_size=1, max_size=3))
def test_contains_is_case_insensitive_substring(text: str, needle: str) -> None:
    result = match_conditions({"title": {"contains": needle}}, {"title": text}, now=NOW)
    assert result.matched == (needle.lower() in text.lower())


# --- cycles ---------------------------------------------------------------------------------


def _updater(name: str, conditions: dict[str, Any], field: str, value: str) -> tuple[str, Rule]:
    rule = Rule.model_validate(
        {
            "name": name,
            "trigger": "on_ticket_updated",
            "conditions": conditions,
            "action": {"type": "update_field", "field": field, "value": value},
        }
    )
    return name, rule


def test_ping_pong_update_rules_form_a_named_cycle() -> None:
    rules = [
        _updater("to pending", {"status": "open"}, "status", "pending"),
        _updater("back to open", {"status": "pending"}, "status", "open"),
    ]
    cycles = find_update_cycles(rules)
    assert cycles == [["back to open", "to pending", "back to open"]]
    with pytest.raises(RuleCycleError, match="back to open -> to pending -> back to open"):
        check_no_cycles(rules)


def test_agreeing_updates_settle_and_are_not_a_cycle() -> None:
    rules = [
        _updater("assign", {}, "assignee", "alice"),
        _updater("categorise", {}, "category", "network"),
    ]
    assert find_update_cycles(rules) == []


def test_disabled_rules_do_not_count() -> None:
    name, rule = _updater("back to open", {"status": "pending"}, "status", "open")
    rules = [
        _updater("to pending", {"status": "open"}, "status", "pending"),
        (name, rule.model_copy(update={"enabled": False})),
    ]
    assert find_update_cycles(rules) == []


def test_three_rule_cycle_through_priorities() -> None:
    rules = [
        _updater("a", {"priority": "P1"}, "priority", "P2"),
        _updater("b", {"priority": "P2"}, "priority", "P3"),
        _updater("c", {"priority": "P3"}, "priority", "P1"),
    ]
    (cycle,) = find_update_cycles(rules)
    assert set(cycle) == {"a", "b", "c"}
    assert cycle[0] == cycle[-1]
