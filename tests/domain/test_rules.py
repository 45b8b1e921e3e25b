"""Rules: models validated per trigger and action; the matcher, with property-based tests."""

from __future__ import annotations

import math
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


# the value compared is drawn relative to the threshold: equal to it (often), a step or a float's
# width to either side, or anywhere; a strict operator made inclusive is caught on equality
relative_values = st.one_of(
    st.just("equal"),
    st.just("equal as float"),
    st.sampled_from(["next up", "next down", "plus one", "minus one"]),
    numbers,
)


def _relative(threshold: float, drawn: str | float) -> float:
    if not isinstance(drawn, str):
        return drawn
    return {
        "equal": threshold,
        "equal as float": float(threshold),
        "next up": math.nextafter(threshold, math.inf),
        "next down": math.nextafter(threshold, -math.inf),
        "plus one": threshold + 1,
        "minus one": threshold - 1,
    }[drawn]


@given(threshold=numbers, drawn=relative_values)
def test_numeric_comparisons_partition_the_line(threshold: float, drawn: str | float) -> None:
    actual = _relative(threshold, drawn)
    record = {"priority_score": actual}

    def holds(op: str) -> bool:
        return match_conditions({"priority_score": {op: threshold}}, record, now=NOW).matched

    assert holds("gt") != holds("lte")
    assert holds("gte") != holds("lt")
    assert holds("gte") == (holds("gt") or actual == threshold)
    assert holds("gt") is (actual > threshold)
    assert holds("lt") is (actual < threshold)


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


# --- condition groups -------------------------------------------------------------------------

records = st.fixed_dictionaries(
    {"priority": st.sampled_from(["P1", "P2"]), "status": st.sampled_from(["open", "x"])}
)
leaves = st.builds(
    lambda field, value: {field: value},
    st.sampled_from(["priority", "status"]),
    st.sampled_from(["P1", "P2", "open", "x"]),
)


def _objects(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    if depth == 0:
        return leaves
    inner = st.lists(_objects(depth - 1), min_size=1, max_size=3)
    return st.one_of(
        leaves,
        st.builds(lambda members: {"all": members}, inner),
        st.builds(lambda members: {"any": members}, inner),
        st.builds(lambda a, b: {**a, "any": [b]}, leaves, _objects(depth - 1)),
    )


def _holds(conditions: dict[str, Any], record: dict[str, Any]) -> bool:
    """What the groups mean, written out: every entry holds; all / any over the members."""
    for name, spec in conditions.items():
        if name == "all" and isinstance(spec, list):
            if not all(_holds(m, record) for m in spec):
                return False
        elif name == "any" and isinstance(spec, list):
            if not any(_holds(m, record) for m in spec):
                return False
        elif record.get(name) != spec:
            return False
    return True


@given(conditions=_objects(3), record=records)
def test_groups_mean_every_entry_and_all_or_any_of_their_members(
    conditions: dict[str, Any], record: dict[str, Any]
) -> None:
    result = match_conditions(conditions, record, now=NOW)
    assert result.matched is _holds(conditions, record)
    # Every condition is evaluated, so a miss is explained in full.
    assert not result.matched or all(c.passed for c in result.checks if not c.group)


def test_the_flat_form_keeps_meaning_all() -> None:
    flat = {"priority": "P1", "category": "incident"}
    grouped = {"all": [{"priority": "P1"}, {"category": "incident"}]}
    for record in ({"priority": "P1", "category": "incident"}, {"priority": "P1"}):
        assert (
            match_conditions(flat, record, now=NOW).matched
            is match_conditions(grouped, record, now=NOW).matched
        )


def test_checks_in_groups_name_where_they_are() -> None:
    conditions = {
        "category": "incident",
        "any": [{"priority": "P1"}, {"all": [{"status": "open"}]}],
    }
    result = match_conditions(conditions, {"category": "incident", "priority": "P3"}, now=NOW)
    assert not result.matched
    assert [c.group for c in result.checks] == ["", "any[0]", "any[1].all[0]"]
    assert "any[1].all[0]: status eq 'open' fails" in result.explain()


def _nested(depth: int) -> dict[str, Any]:
    conditions: dict[str, Any] = {"priority": "P1"}
    for _ in range(depth):
        conditions = {"any": [conditions]}
    return conditions


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        (_nested(5), "nest at most 4"),
        ({"any": [{"priority": "P1"}] * 101}, "more than 100"),
        ({"all": [{"priority": "P1"}] * 60, "any": [{"priority": "P2"}] * 60}, "more than 100"),
        ({"any": []}, "at least one"),
        ({"any": [{}]}, "empty conditions object"),
        ({"any": ["P1"]}, "needs a conditions object"),
        ({"any": [{"priority": {"between": 1}}]}, "conditions.any[0].priority.between"),
    ],
)
def test_groups_are_bounded_and_checked_where_they_are(
    conditions: dict[str, Any], message: str
) -> None:
    with pytest.raises(RuleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate_conditions(conditions, trigger=None)
    validate_conditions(_nested(4))


def test_a_field_named_any_is_compared_with_an_operator_object() -> None:
    validate_conditions({"any": {"eq": [1, 2]}}, trigger=None)
    assert match_conditions({"any": {"eq": [1, 2]}}, {"any": [1, 2]}, now=NOW).matched


@pytest.mark.timeout(30)
def test_matching_a_hundred_times_the_largest_rule_stays_linear() -> None:
    # 100 conditions in groups 4 deep, against 10 000 tickets: linear work, far inside the bound.
    members = [{"any": [{"all": [{"any": [{"priority": f"P{i}"}]}]}]} for i in range(24)]
    conditions = {"any": [*members, {"status": "open"}]}
    validate_conditions(conditions, trigger=None)
    tickets = [
        {"priority": f"P{i % 30}", "status": "open" if i % 2 else "x"} for i in range(10_000)
    ]
    matched = sum(match_conditions(conditions, t, now=NOW).matched for t in tickets)
    assert matched == sum(int(t["priority"][1:]) < 24 or t["status"] == "open" for t in tickets)


# --- several actions --------------------------------------------------------------------------

NOTIFY = {"type": "send_notification", "recipient": "ops", "message": "{{ticket.title}}"}
START = {
    "type": "start_workflow",
    "workflow_name": "P1 Incident Response",
    "task_queue": "itsm-high-priority",
}


def test_a_rule_takes_one_action_or_several_and_keeps_the_form_it_was_written_in() -> None:
    one = Rule.model_validate(_rule())
    assert one.actions_as_sent() == {"action": START}
    assert one.steps == (one.action,)
    several = Rule.model_validate(_rule(action=None, actions=[START, NOTIFY]))
    assert several.actions_as_sent() == {"actions": [START, NOTIFY]}
    assert [a.type for a in several.steps] == ["start_workflow", "send_notification"]
    # Defaults are not added to what was written, and what was written is kept.
    explicit = {**START, "trigger_type": "automatic", "input": {}}
    assert Rule.model_validate(_rule(action=explicit)).actions_as_sent() == {"action": explicit}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"actions": [NOTIFY]}, "not both"),
        ({"action": None}, "field required"),
        ({"action": None, "actions": []}, "at least 1"),
        ({"action": None, "actions": [NOTIFY] * 11}, "at most 10"),
        ({"action": None, "actions": [NOTIFY, {"type": "explode"}]}, "actions.1"),
    ],
)
def test_action_and_actions_are_checked(overrides: dict[str, Any], message: str) -> None:
    raw = {k: v for k, v in _rule(**overrides).items() if v is not None}
    with pytest.raises(ValidationError, match=message):
        Rule.model_validate(raw)


def test_the_trigger_type_of_each_started_workflow_is_its_own() -> None:
    event = {**START, "trigger_type": "event_based"}
    rule = Rule.model_validate(_rule(action=None, actions=[NOTIFY, event, START]))
    starts = [a for a in rule.steps if isinstance(a, StartWorkflowAction)]
    assert [rule.trigger_type_of(a) for a in starts] == [
        TriggerType.EVENT_BASED,
        TriggerType.AUTOMATIC,
    ]
    assert rule.trigger_type is TriggerType.EVENT_BASED


# --- cron schedules ---------------------------------------------------------------------------


def test_a_scheduled_rule_takes_a_cron_expression_or_an_interval_not_both() -> None:
    scheduled = _rule(trigger="scheduled", conditions={"idle_hours": 24})
    assert Rule.model_validate({**scheduled, "schedule_cron": "0 9 * * 1-5"}).schedule_cron
    with pytest.raises(ValidationError, match="not both"):
        Rule.model_validate({**scheduled, "schedule_cron": "@daily", "schedule_interval_s": 60})
    with pytest.raises(ValidationError, match="only for scheduled"):
        Rule.model_validate({**_rule(), "schedule_cron": "@daily"})
    with pytest.raises(ValidationError, match="seconds field"):
        Rule.model_validate({**scheduled, "schedule_cron": "* * * * * *"})


def test_cron_fields_follow_cron_including_either_day_field() -> None:
    from datetime import UTC, datetime

    from protocol_lab.domain.cron import next_fire, parse_cron

    fields = parse_cron("*/20 9-10 1,15 * sun")
    assert fields.minute == (0, 20, 40)
    assert fields.hour == (9, 10)
    assert fields.days_either
    assert parse_cron("0 0 * * 7").day_of_week == (0,)  # 7 is Sunday too
    assert not parse_cron("@weekly").days_either
    # Sunday 2026-11-08, then the 15th (a Sunday too), then Sunday the 22nd.
    start = datetime(2026, 11, 2, tzinfo=UTC)
    times = [start]
    for _ in range(7):
        times.append(next_fire("0 9 1,15 * sun", times[-1]))
    assert [t.day for t in times[1:]] == [8, 15, 22, 29, 1, 6, 13]


def test_a_value_longer_than_its_field_is_refused_but_a_stored_one_still_loads() -> None:
    raw = _rule(action={"type": "update_field", "field": "title", "value": "x" * 201})
    with pytest.raises(ValidationError, match="at most 200 characters"):
        Rule.model_validate(raw)
    assert Rule.model_validate(raw, context={"stored": True}).steps[0].type == "update_field"
    templated = _rule(action={"type": "update_field", "field": "title", "value": "{title}" * 50})
    assert Rule.model_validate(templated).steps[0].type == "update_field"  # cut when rendered
