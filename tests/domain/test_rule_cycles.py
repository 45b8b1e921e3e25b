"""The update-loop check of rule sets: which update_field rules can re-trigger each other forever.

Rule sets here are built as a user would write them; a loop is refused naming its rules, and a
set that settles is accepted. Large sets (100 times what a user starts with) are checked under a
pytest-timeout that an exponential search could never meet.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol_lab.domain import (
    Rule,
    RuleCycleError,
    UpdateFieldAction,
    check_no_cycles,
    find_update_cycles,
    match_conditions,
)


def _rule(
    name: str,
    conditions: dict[str, Any],
    field: str,
    value: str,
    *,
    trigger: str = "on_ticket_updated",
) -> tuple[str, Rule]:
    rule = Rule.model_validate(
        {
            "name": name,
            "trigger": trigger,
            "conditions": conditions,
            "action": {"type": "update_field", "field": field, "value": value},
        }
    )
    return name, rule


def _routing(count: int, *, assignee: str | None = None) -> list[tuple[str, Rule]]:
    """``category cN -> assignee`` rules, the first thing a help desk automates."""
    return [
        _rule(f"route c{i}", {"category": f"c{i}"}, "assignee", assignee or f"agent{i}")
        for i in range(count)
    ]


def test_routing_pair_is_not_a_loop() -> None:
    rules = _routing(2)
    assert find_update_cycles(rules) == []
    check_no_cycles(rules)


def test_status_ping_pong_is_refused_naming_both_rules() -> None:
    rules = [
        _rule("A park", {"status": "in_progress"}, "status", "pending"),
        _rule("B resume", {"status": "pending"}, "status", "in_progress"),
    ]
    with pytest.raises(RuleCycleError) as caught:
        check_no_cycles(rules)
    assert caught.value.cycle == ["A park", "B resume", "A park"]
    assert "A park -> B resume -> A park" in str(caught.value)


def test_a_change_of_another_field_is_not_a_trigger() -> None:
    # Each fires when the status changes; the update it makes changes only the priority.
    rules = [
        _rule("urgent on change", {"status": {"changed": True}}, "priority", "P1"),
        _rule("calm on change", {"status": {"changed_to": "open"}}, "priority", "P3"),
    ]
    assert find_update_cycles(rules) == []


def test_a_change_of_the_written_field_is_a_trigger() -> None:
    rules = [
        _rule("up", {"priority": {"changed_to": "P3"}}, "priority", "P1"),
        _rule("down", {"priority": {"changed": True}, "status": "open"}, "priority", "P3"),
    ]
    (cycle,) = find_update_cycles(rules)
    assert set(cycle) == {"up", "down"}


def test_a_field_no_rule_writes_keeps_rules_apart() -> None:
    rules = [
        _rule("x park", {"requester": "x", "status": "open"}, "status", "pending"),
        _rule("y reopen", {"requester": "y", "status": "pending"}, "status", "open"),
    ]
    assert find_update_cycles(rules) == []


def test_disjoint_in_sets_keep_rules_apart_and_overlapping_ones_do_not() -> None:
    def pair(first: list[str], second: list[str]) -> list[tuple[str, Rule]]:
        return [
            _rule("park", {"category": {"in": first}, "status": "open"}, "status", "pending"),
            _rule("reopen", {"category": {"in": second}, "status": "pending"}, "status", "open"),
        ]

    assert find_update_cycles(pair(["net", "hw"], ["vpn", "mail"])) == []
    (cycle,) = find_update_cycles(pair(["net", "hw"], ["hw", "mail"]))
    assert set(cycle) == {"park", "reopen"}


def test_operators_the_check_cannot_decide_keep_the_loop() -> None:
    rules = [
        _rule("park", {"title": {"contains": "vpn"}, "status": "open"}, "status", "pending"),
        _rule("reopen", {"title": {"contains": "mail"}, "status": "pending"}, "status", "open"),
    ]
    (cycle,) = find_update_cycles(rules)
    assert set(cycle) == {"park", "reopen"}


def test_a_written_value_the_condition_refuses_is_not_a_trigger() -> None:
    rules = [
        _rule("park", {"status": {"in": ["open", "in_progress"]}}, "status", "pending"),
        _rule("close", {"status": {"not_in": ["open", "pending"]}}, "status", "open"),
    ]
    # park -> pending, which close refuses; close -> open, which park accepts: no way back.
    assert find_update_cycles(rules) == []


def test_a_field_written_only_outside_the_loop_keeps_its_rules_apart() -> None:
    # "tag" writes the category, so at first the category does not separate the ping-pong
    # pair; but "tag" always writes the same value, so it cannot be part of a loop, and without
    # it nothing in the loop writes the category: the pair is kept apart.
    rules = [
        _rule("net park", {"category": "net", "status": "open"}, "status", "pending"),
        _rule("hw reopen", {"category": "hw", "status": "pending"}, "status", "open"),
        _rule("tag", {}, "category", "net"),
    ]
    assert find_update_cycles(rules) == []


def test_a_loop_through_a_field_the_loop_itself_writes_is_found() -> None:
    rules = [
        _rule("net park", {"category": "net", "status": "open"}, "status", "pending"),
        _rule("to hw", {"category": "net", "status": "pending"}, "category", "hw"),
        _rule("hw reopen", {"category": "hw", "status": "pending"}, "status", "open"),
        _rule("to net", {"category": "hw", "status": "open"}, "category", "net"),
    ]
    # The category changes within the loop, so it does not keep the status rules apart.
    (cycle,) = find_update_cycles(rules)
    assert cycle[0] == cycle[-1]
    assert {"net park", "hw reopen"} <= set(cycle) <= {label for label, _ in rules}


def test_a_rule_that_cannot_change_anything_twice_is_not_a_loop_with_itself() -> None:
    rules = [_rule("resolve", {"status": {"not_in": ["resolved"]}}, "status", "resolved")]
    assert find_update_cycles(rules) == []


def test_rules_other_than_updated_triggers_are_never_in_a_loop() -> None:
    rules = [
        _rule("created", {"status": "open"}, "status", "pending", trigger="on_ticket_created"),
        _rule("reopen", {"status": "pending"}, "status", "open"),
    ]
    assert find_update_cycles(rules) == []


def test_two_separate_loops_are_both_reported() -> None:
    rules = [
        _rule("a1", {"requester": "ann", "status": "open"}, "status", "pending"),
        _rule("a2", {"requester": "ann", "status": "pending"}, "status", "open"),
        _rule("b1", {"requester": "bob", "priority": "P1"}, "priority", "P2"),
        _rule("b2", {"requester": "bob", "priority": "P2"}, "priority", "P1"),
    ]
    cycles = find_update_cycles(rules)
    assert cycles == [["a1", "a2", "a1"], ["b1", "b2", "b1"]]
    with pytest.raises(RuleCycleError, match="a1 -> a2 -> a1"):
        check_no_cycles(rules)


@pytest.mark.timeout(60)
def test_a_thousand_routing_rules_to_one_person_are_accepted() -> None:
    check_no_cycles(_routing(1000, assignee="alice"))


@pytest.mark.timeout(60)
def test_a_thousand_routing_rules_to_distinct_people_are_accepted() -> None:
    check_no_cycles(_routing(1000))


@pytest.mark.timeout(60)
def test_a_thousand_routing_rules_with_an_exception_are_accepted() -> None:
    rules = [
        _rule(
            f"route c{i}",
            {"category": f"c{i}", "assignee": {"not_in": ["boss"]}},
            "assignee",
            f"agent{i}",
        )
        for i in range(1000)
    ]
    assert find_update_cycles(rules) == []


@pytest.mark.timeout(60)
def test_a_thousand_mutually_triggering_rules_are_refused() -> None:
    rules = [_rule(f"assign {i:04d}", {}, "assignee", f"agent{i}") for i in range(1000)]
    with pytest.raises(RuleCycleError) as caught:
        check_no_cycles(rules)
    assert caught.value.cycle == ["assign 0000", "assign 0001", "assign 0000"]


@pytest.mark.timeout(60)
def test_a_thousand_agreeing_rules_that_trigger_each_other_settle() -> None:
    rules = [_rule(f"assign {i:04d}", {}, "assignee", "alice") for i in range(1000)]
    assert find_update_cycles(rules) == []


@pytest.mark.timeout(60)
def test_a_chain_of_a_thousand_is_accepted_and_closing_it_is_refused() -> None:
    chain = [
        _rule(f"step {i:04d}", {"category": f"c{i}"}, "category", f"c{i + 1}") for i in range(1000)
    ]
    assert find_update_cycles(chain) == []
    closing = _rule("back to the start", {"category": "c1000"}, "category", "c0")
    (cycle,) = find_update_cycles([*chain, closing])
    assert len(cycle) == 1002
    assert set(cycle) == {label for label, _ in [*chain, closing]}


@pytest.mark.timeout(60)
def test_a_thousand_rules_with_mixed_operators_are_checked() -> None:
    rules = []
    for i in range(1000):
        who: Any = f"u{i}" if i % 2 else {"not_in": [f"u{i}"]}
        status, value = ("open", "pending") if i % 4 < 2 else ("pending", "open")
        rules.append(_rule(f"flip {i:04d}", {"requester": who, "status": status}, "status", value))
    with pytest.raises(RuleCycleError):
        check_no_cycles(rules)


# --- against the engine's semantics -----------------------------------------------------------

DOMAIN: dict[str, list[str]] = {
    "status": ["open", "pending"],
    "priority": ["P1", "P2"],
    "category": ["net", "hw"],
    "requester": ["ann", "bob"],
}
WRITABLE = ["status", "priority", "category"]


def _condition(draw: st.DrawFn, field: str) -> Any:
    values = DOMAIN[field]
    kind = draw(st.sampled_from(["eq", "in", "not_in", "changed", "changed_to", "contains"]))
    if field not in WRITABLE and kind in ("changed", "changed_to"):
        kind = "eq"
    if kind == "eq":
        return draw(st.sampled_from(values))
    if kind in ("in", "not_in"):
        return {kind: draw(st.lists(st.sampled_from(values), min_size=1, max_size=2))}
    if kind == "changed":
        return {"changed": draw(st.booleans())}
    if kind == "contains":
        return {"contains": draw(st.sampled_from(values))[:1]}
    return {"changed_to": draw(st.sampled_from(values))}


@st.composite
def rule_sets(draw: st.DrawFn) -> list[tuple[str, Rule]]:
    rules = []
    for i in range(draw(st.integers(1, 5))):
        fields = draw(st.lists(st.sampled_from(sorted(DOMAIN)), unique=True, max_size=3))
        written = draw(st.sampled_from(WRITABLE))
        if written not in fields and draw(st.booleans()):
            fields.append(written)  # rules that react to their own field make the tight loops
        conditions = {f: _condition(draw, f) for f in fields}
        rules.append(_rule(f"r{i}", conditions, written, draw(st.sampled_from(DOMAIN[written]))))
    return rules


Event = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


def _loops(rules: list[tuple[str, Rule]]) -> bool:
    """Whether some ticket update starts a chain of rule updates that never ends, following
    each rule's update on the event it matched, as the engine does."""
    finished: set[Event] = set()

    def follow(event: Event, path: set[Event]) -> bool:
        if event in path:
            return True
        if event in finished:
            return False
        after, before = dict(event[0]), dict(event[1])
        path.add(event)
        for _, rule in rules:
            action = rule.action
            assert isinstance(action, UpdateFieldAction)
            if not match_conditions(rule.conditions, after, previous=before, now=0.0).matched:
                continue
            if after[action.field] == action.value:
                continue  # nothing changes: no event
            updated = {**after, action.field: str(action.value)}
            if follow((tuple(sorted(updated.items())), event[0]), path):
                return True
        path.discard(event)
        finished.add(event)
        return False

    names = sorted(DOMAIN)
    for combo in itertools.product(*(DOMAIN[n] for n in names)):
        ticket = dict(zip(names, combo, strict=True))
        for field in WRITABLE:
            for old in DOMAIN[field]:
                if old != ticket[field]:
                    before = {**ticket, field: old}
                    start = (tuple(sorted(ticket.items())), tuple(sorted(before.items())))
                    if follow(start, set()):
                        return True
    return False


@settings(max_examples=300, deadline=None)
@given(rules=rule_sets())
def test_every_rule_set_that_loops_in_the_engine_is_refused(rules: list[tuple[str, Rule]]) -> None:
    if _loops(rules):
        assert find_update_cycles(rules)


# --- several actions, condition groups, templated values --------------------------------------


def _multi(name: str, conditions: dict[str, Any], *writes: tuple[str, str]) -> tuple[str, Rule]:
    actions = [{"type": "update_field", "field": f, "value": v} for f, v in writes]
    rule = Rule.model_validate(
        {"name": name, "trigger": "on_ticket_updated", "conditions": conditions, "actions": actions}
    )
    return name, rule


def test_one_rule_whose_two_updates_fight_is_a_loop_naming_its_updates() -> None:
    rules = [_multi("flip-flop", {}, ("status", "open"), ("status", "pending"))]
    [cycle] = find_update_cycles(rules)
    assert set(cycle) == {"flip-flop update 1", "flip-flop update 2"}


def test_one_rule_updating_two_fields_settles() -> None:
    rules = [_multi("tidy", {}, ("status", "open"), ("priority", "P2"))]
    assert find_update_cycles(rules) == []


def test_a_second_action_closes_a_loop_with_another_rule() -> None:
    first = _multi(
        "notify then demote", {"priority": "P1"}, ("category", "net"), ("priority", "P2")
    )
    back = _rule("raise again", {"priority": "P2"}, "priority", "P1")
    [cycle] = find_update_cycles([first, back])
    assert "raise again" in cycle
    assert "notify then demote update 2" in cycle
    assert "notify then demote update 1" not in cycle


def test_disjoint_any_groups_keep_rules_apart() -> None:
    a = _rule("a", {"any": [{"category": "net"}, {"category": "hw"}]}, "status", "open")
    b = _rule("b", {"any": [{"category": "sw"}, {"category": "db"}]}, "status", "pending")
    assert find_update_cycles([a, b]) == []
    c = _rule("c", {"any": [{"category": "hw"}, {"category": "db"}]}, "status", "pending")
    assert find_update_cycles([a, c])


def test_an_all_group_is_the_same_as_its_conditions_side_by_side() -> None:
    grouped = _rule("grouped", {"all": [{"category": "net"}]}, "status", "open")
    flat = _rule("flat", {"category": "hw"}, "status", "pending")
    assert find_update_cycles([grouped, flat]) == []


def test_an_any_group_with_one_open_alternative_is_not_a_constraint() -> None:
    a = _rule("a", {"any": [{"category": "net"}, {"priority": "P1"}]}, "status", "open")
    b = _rule("b", {"category": "hw"}, "status", "pending")
    assert find_update_cycles([a, b])


def test_a_templated_value_may_be_new_at_every_write() -> None:
    # Each update changes updated_at, so the title changes every time: a real loop.
    echo = _rule("echo", {}, "title", "{{ticket.updated_at}}")
    [cycle] = find_update_cycles([echo])
    assert set(cycle) == {"echo"}
    # A rule that cannot fire on its own write is no loop.
    once = _rule("once", {"title": {"changed": False}}, "title", "{{ticket.requester}}")
    assert find_update_cycles([once]) == []


@pytest.mark.timeout(60)
def test_a_thousand_rules_of_two_actions_with_groups_are_checked() -> None:
    settle = [
        _multi(
            f"route {i:04d}",
            {"any": [{"category": f"c{i}"}, {"category": f"d{i}"}]},
            ("assignee", "alice"),
            ("status", "open"),
        )
        for i in range(1000)
    ]
    check_no_cycles(settle)
    fight = [
        _multi(
            f"fight {i:04d}",
            {"all": [{"category": "net"}]},
            ("assignee", f"a{i}"),
            ("status", "open"),
        )
        for i in range(1000)
    ]
    with pytest.raises(RuleCycleError):
        check_no_cycles(fight)


def _conditions_object(draw: st.DrawFn, depth: int) -> dict[str, Any]:
    fields = draw(st.lists(st.sampled_from(sorted(DOMAIN)), unique=True, min_size=1, max_size=2))
    obj: dict[str, Any] = {f: _condition(draw, f) for f in fields}
    if depth < 2 and draw(st.booleans()):
        group = draw(st.sampled_from(["all", "any"]))
        count = draw(st.integers(1, 2))
        obj[group] = [_conditions_object(draw, depth + 1) for _ in range(count)]
    return obj


@st.composite
def grouped_rule_sets(draw: st.DrawFn) -> list[tuple[str, Rule]]:
    rules = []
    for i in range(draw(st.integers(1, 4))):
        conditions = _conditions_object(draw, 0) if draw(st.booleans()) else {}
        writes = draw(st.lists(st.sampled_from(WRITABLE), min_size=1, max_size=2))
        pairs = [(f, draw(st.sampled_from(DOMAIN[f]))) for f in writes]
        rules.append(_multi(f"r{i}", conditions, *pairs))
    return rules


def _loops_in_order(rules: list[tuple[str, Rule]]) -> bool:
    """Whether some ticket update starts a never-ending chain, each rule performing its
    update_field actions in order, each write an event of its own, as the engine does."""
    finished: set[Event] = set()

    def follow(event: Event, path: set[Event]) -> bool:
        if event in path:
            return True
        if event in finished:
            return False
        after, before = dict(event[0]), dict(event[1])
        path.add(event)
        for _, rule in rules:
            if not match_conditions(rule.conditions, after, previous=before, now=0.0).matched:
                continue
            state = after
            for action in rule.steps:
                assert isinstance(action, UpdateFieldAction)
                if state[action.field] == action.value:
                    continue  # nothing changes: no event
                updated = {**state, action.field: str(action.value)}
                if follow((tuple(sorted(updated.items())), tuple(sorted(state.items()))), path):
                    return True
                state = updated
        path.discard(event)
        finished.add(event)
        return False

    names = sorted(DOMAIN)
    for combo in itertools.product(*(DOMAIN[n] for n in names)):
        ticket = dict(zip(names, combo, strict=True))
        for field in WRITABLE:
            for old in DOMAIN[field]:
                if old != ticket[field]:
                    before = {**ticket, field: old}
                    start = (tuple(sorted(ticket.items())), tuple(sorted(before.items())))
                    if follow(start, set()):
                        return True
    return False


@settings(max_examples=300, deadline=None)
@given(rules=grouped_rule_sets())
def test_every_grouped_several_action_rule_set_that_loops_in_the_engine_is_refused(
    rules: list[tuple[str, Rule]],
) -> None:
    if _loops_in_order(rules):
        assert find_update_cycles(rules)
