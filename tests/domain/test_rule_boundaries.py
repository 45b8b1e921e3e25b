"""The rule matcher at its boundaries: each operator at, just above and just below its operand.

The property tests in ``test_rules.py`` check that the operators agree with each other; these
pin what each one means on its own, so that ``>=`` made ``>`` (or ``<`` made ``<=``) fails here,
and the compiled index (:mod:`protocol_lab.domain.rule_index`) is held to the same answers.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol_lab.domain import Rule, Trigger, match_conditions
from protocol_lab.domain.rule_index import RuleIndex, key_condition, surely_misses
from protocol_lab.domain.rules import ConditionCheck, MatchResult

NOW = 1_700_000_000.0
H = 3600.0
THRESHOLD = 24
BELOW = math.nextafter(THRESHOLD, -math.inf)
ABOVE = math.nextafter(THRESHOLD, math.inf)


def _holds(op: str, actual: Any, expected: Any = THRESHOLD) -> bool:
    return match_conditions({"score": {op: expected}}, {"score": actual}, now=NOW).matched


def _rule(conditions: dict[str, Any], trigger: str = "on_ticket_created") -> Rule:
    return Rule.model_validate(
        {
            "name": "r",
            "trigger": trigger,
            "conditions": conditions,
            "action": {"type": "send_notification", "recipient": "ops", "message": "m"},
        }
    )


def _index_fires(conditions: dict[str, Any], record: dict[str, Any]) -> bool:
    index = RuleIndex([("r", _rule(conditions, trigger="webhook"))])
    return bool(index.matches(Trigger.WEBHOOK, record, now=NOW))


# --- numeric comparisons ------------------------------------------------------------------------

# (operator, below, equal, above): whether it holds just below, at and just above the threshold
COMPARISONS = [
    ("gte", False, True, True),
    ("gt", False, False, True),
    ("lte", True, True, False),
    ("lt", True, False, False),
]


@pytest.mark.parametrize(("op", "below", "equal", "above"), COMPARISONS)
@pytest.mark.parametrize("equal_value", [THRESHOLD, float(THRESHOLD)])
def test_each_comparison_at_just_below_and_just_above_its_threshold(
    op: str, below: bool, equal: bool, above: bool, equal_value: float
) -> None:
    assert _holds(op, BELOW) is below
    assert _holds(op, equal_value) is equal
    assert _holds(op, ABOVE) is above
    # a whole unit away too, in integers
    assert _holds(op, THRESHOLD - 1) is below
    assert _holds(op, THRESHOLD + 1) is above


@pytest.mark.parametrize(("op", "below", "equal", "above"), COMPARISONS)
def test_the_index_agrees_with_the_matcher_at_the_threshold(
    op: str, below: bool, equal: bool, above: bool
) -> None:
    # keyed on the equality, then matched in full: the threshold is the matcher's to decide
    conditions = {"kind": "alert", "score": {op: THRESHOLD}}
    for actual, expected in ((BELOW, below), (THRESHOLD, equal), (ABOVE, above)):
        assert _index_fires(conditions, {"kind": "alert", "score": actual}) is expected
        assert not _index_fires(conditions, {"kind": "other", "score": actual})


@pytest.mark.parametrize("op", ["gt", "gte", "lt", "lte"])
@pytest.mark.parametrize("actual", [None, "24", True, False, [24], "missing"])
def test_a_comparison_never_holds_for_what_is_not_a_number(op: str, actual: Any) -> None:
    # True == 1 and False == 0 in Python: a boolean must not pass as a number
    record: dict[str, Any] = {} if actual == "missing" else {"score": actual}
    for expected in (0, 1, THRESHOLD, -1):
        assert not match_conditions({"score": {op: expected}}, record, now=NOW).matched


def test_negative_and_fractional_thresholds() -> None:
    assert _holds("gte", -0.5, -0.5)
    assert not _holds("gt", -0.5, -0.5)
    assert _holds("lt", -0.6, -0.5)
    assert not _holds("lt", -0.4, -0.5)
    assert _holds("lte", 0, 0)
    assert not _holds("gte", -1e-9, 0)


# --- equality, membership, substring ------------------------------------------------------------


def test_equality_in_both_forms_and_across_numeric_types() -> None:
    for conditions in ({"priority": "P1"}, {"priority": {"eq": "P1"}}):
        assert match_conditions(conditions, {"priority": "P1"}, now=NOW).matched
        assert not match_conditions(conditions, {"priority": "p1"}, now=NOW).matched
        assert not match_conditions(conditions, {"priority": "P1 "}, now=NOW).matched
        assert not match_conditions(conditions, {}, now=NOW).matched
    assert match_conditions({"level": {"eq": 1}}, {"level": 1.0}, now=NOW).matched
    assert not match_conditions({"level": {"eq": 1}}, {"level": 1.5}, now=NOW).matched
    # a missing field reads as None, so an equality with None holds for it
    assert match_conditions({"assignee": None}, {}, now=NOW).matched
    assert not match_conditions({"assignee": None}, {"assignee": "ann"}, now=NOW).matched


def test_membership_holds_for_a_listed_value_only() -> None:
    listed = {"priority": {"in": ["P1", "P2"]}}
    unlisted = {"priority": {"not_in": ["P1", "P2"]}}
    for value, inside in (("P1", True), ("P2", True), ("P3", False), ("p1", False), (None, False)):
        record = {"priority": value}
        assert match_conditions(listed, record, now=NOW).matched is inside
        assert match_conditions(unlisted, record, now=NOW).matched is not inside
        assert _index_fires(listed, record) is inside
        assert _index_fires(unlisted, record) is not inside
    assert not match_conditions({"priority": {"in": []}}, {"priority": "P1"}, now=NOW).matched
    assert match_conditions({"priority": {"not_in": []}}, {"priority": "P1"}, now=NOW).matched


def test_contains_is_a_case_insensitive_substring_of_text_and_an_element_of_a_list() -> None:
    def holds(needle: str, actual: Any) -> bool:
        return match_conditions({"title": {"contains": needle}}, {"title": actual}, now=NOW).matched

    assert holds("vpn", "VPN down")
    assert holds("VPN", "my vpn")
    assert holds("VPN down", "VPN down")  # the whole text
    assert not holds("VPN down!", "VPN down")  # one character more
    assert not holds("wifi", "VPN down")
    assert holds("vpn", ["vpn", "wifi"])  # an element, compared exactly
    assert not holds("VPN", ["vpn"])
    assert not holds("vp", ["vpn"])  # not a substring of an element
    assert holds("b", ("a", "b"))
    assert not holds("1", 1)  # neither text nor a list
    assert not holds("x", None)


# --- changed / changed_to -----------------------------------------------------------------------


def test_changed_compares_with_the_record_before_the_update() -> None:
    def holds(spec: Any, before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
        conditions = {"status": spec}
        return match_conditions(conditions, after, previous=before, now=NOW).matched

    opened, resolved = {"status": "open"}, {"status": "resolved"}
    assert holds({"changed": True}, opened, resolved)
    assert not holds({"changed": True}, resolved, resolved)
    assert holds({"changed": False}, resolved, resolved)
    assert not holds({"changed": False}, opened, resolved)
    # without a previous record nothing has changed
    assert not holds({"changed": True}, None, resolved)
    assert holds({"changed": False}, None, resolved)
    assert holds({"changed_to": "resolved"}, opened, resolved)
    assert not holds({"changed_to": "resolved"}, resolved, resolved)
    assert not holds({"changed_to": "closed"}, opened, resolved)
    assert not holds({"changed_to": "resolved"}, None, resolved)
    # a field that appears counts as changed (it was missing, that is None)
    assert holds({"changed_to": "resolved"}, {}, resolved)


# --- derived fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("idle_s", "holds"),
    [(THRESHOLD * H - 1, False), (THRESHOLD * H, True), (THRESHOLD * H + 1, True)],
)
def test_a_bare_number_for_a_derived_field_is_an_at_least_threshold(
    idle_s: float, holds: bool
) -> None:
    idle = {"last_activity_at": NOW - idle_s}
    assert match_conditions({"idle_hours": THRESHOLD}, idle, now=NOW).matched is holds
    aged = {"created_at": NOW - idle_s}
    assert match_conditions({"age_hours": THRESHOLD}, aged, now=NOW).matched is holds
    assert match_conditions({"age_hours": float(THRESHOLD)}, aged, now=NOW).matched is holds
    assert _index_fires({"idle_hours": THRESHOLD}, idle) is holds


def test_a_bare_number_is_an_equality_on_a_plain_field() -> None:
    assert match_conditions({"score": 24}, {"score": 24}, now=NOW).matched
    assert not match_conditions({"score": 24}, {"score": 25}, now=NOW).matched
    # and a boolean for a derived field is an equality, not a threshold
    two_hours = match_conditions({"idle_hours": True}, {"last_activity_at": NOW - 2 * H}, now=NOW)
    assert not two_hours.matched  # as a threshold of 1 it would hold
    assert two_hours.checks[0].op == "eq"


def test_derived_hours_read_the_right_timestamps() -> None:
    def hours(name: str, record: dict[str, Any]) -> Any:
        result = match_conditions({name: {"gte": 0}}, record, now=NOW)
        return result.checks[0].actual

    every = {"last_activity_at": NOW - 1 * H, "updated_at": NOW - 2 * H, "created_at": NOW - 3 * H}
    assert hours("idle_hours", every) == pytest.approx(1.0)
    assert hours("age_hours", every) == pytest.approx(3.0)
    # idle time falls back to the last update, then to creation; age has no fallback
    assert hours("idle_hours", {"updated_at": NOW - 2 * H, "created_at": NOW - 3 * H}) == 2.0
    assert hours("idle_hours", {"created_at": NOW - 3 * H}) == pytest.approx(3.0)
    assert hours("age_hours", {"last_activity_at": NOW - H, "updated_at": NOW - H}) is None
    assert hours("idle_hours", {}) is None
    assert hours("idle_hours", {"last_activity_at": "yesterday"}) is None
    assert hours("age_hours", {"created_at": True}) is None
    assert hours("idle_hours", {"last_activity_at": int(NOW) - 7200}) == pytest.approx(2.0)


# --- field lookup -------------------------------------------------------------------------------


def test_dotted_paths_read_nested_payloads_and_missing_parts_read_as_none() -> None:
    payload = {"alert": {"severity": "critical", "tags": ["db"]}, "a.b": "flat"}
    assert match_conditions({"alert.severity": "critical"}, payload, now=NOW).matched
    assert match_conditions({"a.b": "flat"}, payload, now=NOW).matched  # a key with a dot first
    for path in ("alert.missing", "alert.tags.x", "nothing.here", "alert.severity.x"):
        result = match_conditions({path: None}, payload, now=NOW)
        assert result.matched, path
        assert result.checks[0].actual is None


# --- explanations -------------------------------------------------------------------------------


def test_every_check_records_what_was_expected_and_seen() -> None:
    result = match_conditions(
        {"priority": {"in": ["P1"], "not_in": ["P2"]}, "score": {"gt": 3}},
        {"priority": "P1", "score": 3},
        now=NOW,
    )
    assert result.checks == [
        ConditionCheck("priority", "in", ["P1"], "P1", passed=True),
        ConditionCheck("priority", "not_in", ["P2"], "P1", passed=True),
        ConditionCheck("score", "gt", 3, 3, passed=False),
    ]
    assert not result.matched
    assert result.failed == [result.checks[2]]
    assert result.explain() == "score gt 3 fails (actual 3)"
    assert result.checks[0].explain() == "priority in ['P1'] holds (actual 'P1')"


def test_explanations_of_a_match_and_of_no_conditions() -> None:
    assert match_conditions({}, {"x": 1}, now=NOW) == MatchResult(matched=True, checks=[])
    assert match_conditions({}, {}, now=NOW).explain() == "no conditions: always matches"
    assert match_conditions({"x": 1}, {"x": 1}, now=NOW).explain() == "all conditions hold"
    either = match_conditions({"any": [{"x": 2}, {"x": 1}]}, {"x": 1}, now=NOW)
    assert either.matched
    assert either.explain() == (
        "conditions hold (an alternative of an any group failed: any[0]: x eq 2 fails (actual 1))"
    )
    two = match_conditions({"any": [{"x": 2}, {"x": 3}, {"x": 1}]}, {"x": 1}, now=NOW)
    assert two.explain() == (
        "conditions hold (an alternative of an any group failed: any[0]: x eq 2 fails"
        " (actual 1); any[1]: x eq 3 fails (actual 1))"
    )
    both = match_conditions({"x": 2, "y": 3}, {"x": 1}, now=NOW)
    assert both.explain() == "x eq 2 fails (actual 1); y eq 3 fails (actual None)"
    nested = match_conditions({"all": [{"any": [{"x": 2}]}]}, {"x": 1}, now=NOW)
    assert not nested.matched
    assert nested.explain() == "all[0].any[0]: x eq 2 fails (actual 1)"


def test_a_group_holds_for_all_or_any_of_its_members() -> None:
    record = {"x": 1, "y": 2}
    assert match_conditions({"all": [{"x": 1}, {"y": 2}]}, record, now=NOW).matched
    assert not match_conditions({"all": [{"x": 1}, {"y": 3}]}, record, now=NOW).matched
    assert match_conditions({"any": [{"x": 0}, {"y": 2}]}, record, now=NOW).matched
    assert not match_conditions({"any": [{"x": 0}, {"y": 0}]}, record, now=NOW).matched
    # a failing group fails the object even when the entries after it hold
    assert not match_conditions({"any": [{"x": 0}], "y": 2}, record, now=NOW).matched
    assert not match_conditions({"x": 0, "all": [{"y": 2}]}, record, now=NOW).matched


# --- the index's own parts ----------------------------------------------------------------------


def test_key_condition_prefers_equality_then_the_fewest_values_then_the_first() -> None:
    def key(conditions: dict[str, Any]) -> tuple[str, frozenset[Any]] | None:
        return key_condition(_rule(conditions, trigger="webhook"))

    two = {"in": ["a", "b"]}
    three = {"in": ["a", "b", "c"]}
    assert key({"x": three, "y": two}) == ("y", frozenset({"a", "b"}))
    assert key({"x": two, "y": three}) == ("x", frozenset({"a", "b"}))
    assert key({"x": two, "y": {"in": ["c", "d"]}}) == ("x", frozenset({"a", "b"}))
    assert key({"x": two, "y": "c", "z": "d"}) == ("y", frozenset({"c"}))
    assert key({"x": {"in": ["a", "a"]}, "y": two}) == ("x", frozenset({"a"}))
    assert key({"x": {"in": []}}) is None
    assert key({"x": {"eq": True}}) == ("x", frozenset({True}))
    assert key({"x": {"eq": 2.5}}) == ("x", frozenset({2.5}))
    assert key({"x": {"gte": 1}}) is None
    # conditions that cannot key a rule are passed over, not the end of the search
    assert key({"idle_hours": 24, "x": "a"}) == ("x", frozenset({"a"}))
    assert key({"any": [{"x": "b"}], "x": "a"}) == ("x", frozenset({"a"}))
    assert key({"x": {"contains": "v"}, "y": "a"}) == ("y", frozenset({"a"}))
    assert key({"x": ["a"], "y": {"in": ["a", "b"]}}) == ("y", frozenset({"a", "b"}))


def test_surely_misses_only_a_plain_equality_on_a_field_the_record_has() -> None:
    def misses(conditions: dict[str, Any], record: dict[str, Any]) -> bool:
        return surely_misses(_rule(conditions, trigger="webhook"), record)

    assert misses({"x": 1}, {"x": 2})
    assert not misses({"x": 1}, {"x": 1})
    assert not misses({"x": 1}, {"x": 1.0})
    assert not misses({"x": None}, {})  # missing reads as None: the matcher decides
    assert not misses({"x": {"eq": 1}}, {"x": 2})  # operator objects are left to the matcher
    assert not misses({"idle_hours": 1}, {"idle_hours": 0})  # derived, not read from the record
    assert not misses({"any": [{"x": 1}]}, {"any": 2})
    assert misses({"y": 1, "x": 1}, {"y": 1, "x": 2})  # any differing entry, not only the first


def test_the_index_files_and_counts_rules_per_trigger() -> None:
    rules = [
        ("a", _rule({"x": 1}, trigger="webhook")),
        ("b", _rule({"x": {"in": [1, 2]}}, trigger="webhook")),
        ("c", _rule({"score": {"gte": 1}}, trigger="webhook")),
        ("d", _rule({"priority": "P1"})),
    ]
    index = RuleIndex(rules)
    assert len(index) == 4
    hook = Trigger.WEBHOOK
    assert [i for i, _ in index.rules(hook)] == ["a", "b", "c"]
    assert index.rules(Trigger.SCHEDULED) == []
    stats = index.stats(hook)
    assert (stats.rules, stats.always, stats.by_field) == (3, 1, {"x": 2})
    empty = index.stats(Trigger.SCHEDULED)
    assert (empty.rules, empty.always, empty.by_field) == (0, 0, {})
    assert [i for i, _ in index.candidates(hook, {"x": 2, "score": 0})] == ["b", "c"]
    assert [i for i, _ in index.candidates(hook, {"x": 1})] == ["a", "b", "c"]
    assert [i for i, _ in index.candidates(hook, {"x": [1]})] == ["a", "b", "c"]
    assert index.candidates(Trigger.SCHEDULED, {"x": 1}) == []
    fired = index.matches(hook, {"x": 1, "score": 1}, now=NOW)
    assert [(i, r.matched) for i, _, r in fired] == [("a", True), ("b", True), ("c", True)]
    assert [i for i, _, _ in index.matches(hook, {"x": 2, "score": 1}, now=NOW)] == ["b", "c"]
    assert index.matches(Trigger.SCHEDULED, {"x": 1}, now=NOW) == []


def test_the_index_passes_the_previous_record_to_the_matcher() -> None:
    rule = _rule({"status": {"changed_to": "resolved"}}, trigger="on_ticket_updated")
    index = RuleIndex([("r", rule)])
    updated = Trigger.ON_TICKET_UPDATED
    after = {"status": "resolved"}
    assert index.matches(updated, after, previous={"status": "open"}, now=NOW)
    assert not index.matches(updated, after, previous=after, now=NOW)
    assert not index.matches(updated, after, now=NOW)


# --- properties that draw the boundary on purpose ----------------------------------------------

thresholds = st.one_of(
    st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
)
offsets = st.one_of(
    st.just(0.0),  # exactly the threshold, most often
    st.just(0.0),
    st.sampled_from([-1.0, 1.0, -0.5, 0.5]),
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


@given(threshold=thresholds, offset=offsets, next_float=st.sampled_from([None, "down", "up"]))
def test_comparisons_mean_what_their_names_say_at_and_around_the_threshold(
    threshold: float, offset: float, next_float: str | None
) -> None:
    actual: float = threshold + offset
    if next_float is not None:
        actual = math.nextafter(actual, -math.inf if next_float == "down" else math.inf)
    expected = {
        "gt": actual > threshold,
        "gte": actual >= threshold,
        "lt": actual < threshold,
        "lte": actual <= threshold,
    }
    for op, holds in expected.items():
        assert _holds(op, actual, threshold) is holds, (op, actual, threshold)
        conditions = {"kind": "k", "score": {op: threshold}}
        assert _index_fires(conditions, {"kind": "k", "score": actual}) is holds


@given(threshold=st.integers(0, 200), offset_s=st.sampled_from([-1, 0, 1, -3600, 3600]))
def test_derived_thresholds_hold_from_the_exact_hour_on(threshold: int, offset_s: int) -> None:
    idle_s = threshold * H + offset_s
    record = {"last_activity_at": NOW - idle_s}
    assert match_conditions({"idle_hours": threshold}, record, now=NOW).matched is (offset_s >= 0)
    assert match_conditions({"idle_hours": {"gt": threshold}}, record, now=NOW).matched is (
        offset_s > 0
    )
    assert match_conditions({"idle_hours": {"lt": threshold}}, record, now=NOW).matched is (
        offset_s < 0
    )


def test_groups_pass_the_previous_record_and_the_clock_to_their_members() -> None:
    conditions = {"any": [{"status": {"changed_to": "resolved"}}, {"idle_hours": 24}]}
    after = {"status": "resolved", "last_activity_at": NOW - H}
    assert match_conditions(conditions, after, previous={"status": "open"}, now=NOW).matched
    assert not match_conditions(conditions, after, previous=after, now=NOW).matched
    idle = {"status": "open", "last_activity_at": NOW - 24 * H}
    assert match_conditions(conditions, idle, previous=idle, now=NOW).matched
    # and the entries after a group that holds are still checked
    assert not match_conditions({"any": [{"x": 1}], "y": 3}, {"x": 1, "y": 2}, now=NOW).matched
