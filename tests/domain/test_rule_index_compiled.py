"""The index's compiled checks and its keys decide what the matcher decides.

Rules are compiled once into checks; a rule is filed under the equality or membership whose
buckets hold the fewest rules, or under a run of characters of a ``contains`` needle. Whatever
the rules and the record, the rules that match are those that matching every rule in turn
gives, in the same order.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rule_factory import notify_rule

from protocol_lab.domain import RuleError, Trigger, match_conditions
from protocol_lab.domain.rule_index import RuleIndex, compile_conditions

NOW = 1_700_000_000.0
FIELDS = ["title", "category", "priority", "status", "requester.team"]
# Needles and texts that differ in case, in characters whose lower case is longer ("İ"), that
# lower-case to plain letters ("K", the Kelvin sign), and that share runs of characters.
WORDS = ["vpn", "VPN down", "İstanbul", "istanbul", "Kelvin", "kelvin", "ß", "pass", "password"]
SCALARS: list[Any] = ["P1", "p1", "open", "", None, 0, 1, 1.0, True, 2.5]


scalars = st.sampled_from(SCALARS)
needles = st.one_of(st.sampled_from(WORDS), st.text(alphabet="abİıKkß ", max_size=5))
operators = st.one_of(
    scalars,
    st.builds(lambda v: {"eq": v}, scalars),
    st.builds(lambda vs: {"in": vs}, st.lists(scalars, min_size=1, max_size=3)),
    st.builds(lambda vs: {"not_in": vs}, st.lists(scalars, min_size=1, max_size=3)),
    st.builds(lambda s: {"contains": s}, needles),
    st.builds(lambda s, v: {"contains": s, "eq": v}, needles, scalars),
    st.builds(
        lambda op, v: {op: v},
        st.sampled_from(["gt", "gte", "lt", "lte"]),
        st.sampled_from([-1, 0, 1, 2.5]),
    ),
    st.builds(lambda b: {"changed": b}, st.booleans()),
    st.builds(lambda v: {"changed_to": v}, scalars),
)
derived = st.dictionaries(
    st.sampled_from(["idle_hours", "age_hours"]),
    st.one_of(st.sampled_from([0, 1, 2.5, True, None]), st.builds(lambda v: {"lt": v}, st.just(1))),
    max_size=1,
)


def _with_groups(flat: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    members = st.lists(flat.filter(bool), min_size=1, max_size=3)
    return st.builds(
        lambda base, more, group, name: {**base, **more, **({name: group} if group else {})},
        flat,
        derived,
        st.one_of(st.none(), members),
        st.sampled_from(["all", "any"]),
    )


flat_conditions = st.dictionaries(st.sampled_from(FIELDS), operators, max_size=3)
conditions_strategy = _with_groups(flat_conditions)
values = st.one_of(
    scalars,
    st.sampled_from(WORDS),
    st.text(alphabet="abİıKkßvpnPV ", max_size=12),
    st.lists(st.sampled_from(WORDS), max_size=2),
    st.integers(-2, 3),
)
records = st.dictionaries(
    st.sampled_from(["title", "category", "priority", "status", "requester.team"]), values
).map(lambda r: {**r, "last_activity_at": NOW - 3600.0, "created_at": NOW - 7200.0})


@settings(max_examples=400, deadline=None)
@given(conditions=conditions_strategy, record=records, previous=st.one_of(st.none(), records))
def test_compiled_conditions_decide_as_the_matcher(
    conditions: dict[str, Any], record: dict[str, Any], previous: dict[str, Any] | None
) -> None:
    expected = match_conditions(conditions, record, previous=previous, now=NOW).matched
    assert compile_conditions(conditions)(record, previous, NOW) is expected


def _fit(conditions: dict[str, Any], trigger: Trigger) -> dict[str, Any]:
    """The conditions as a rule of ``trigger`` may have them: ticket rules name ticket fields,
    only on_ticket_updated rules ask what changed."""
    fitted: dict[str, Any] = {}
    for name, spec in conditions.items():
        if name in ("all", "any") and isinstance(spec, list):
            fitted[name] = [_fit(member, trigger) for member in spec]
        elif trigger is Trigger.WEBHOOK and isinstance(spec, dict):
            kept = {op: v for op, v in spec.items() if op not in ("changed", "changed_to")}
            fitted[name] = kept or {"eq": None}
        else:
            fitted["requester" if trigger is not Trigger.WEBHOOK and "." in name else name] = spec
    return fitted


@settings(max_examples=300, deadline=None)
@given(
    many=st.lists(conditions_strategy, min_size=1, max_size=15),
    record=records,
    previous=st.one_of(st.none(), records),
    trigger=st.sampled_from([Trigger.ON_TICKET_UPDATED, Trigger.WEBHOOK]),
)
def test_the_index_with_contains_keys_agrees_with_every_rule(
    many: list[dict[str, Any]],
    record: dict[str, Any],
    previous: dict[str, Any] | None,
    trigger: Trigger,
) -> None:
    rules = [(i, notify_rule(i, trigger.value, _fit(c, trigger))) for i, c in enumerate(many)]
    index = RuleIndex(rules)
    expected = [
        (i, match_conditions(rule.conditions, record, previous=previous, now=NOW))
        for i, rule in rules
    ]
    expected = [(i, result) for i, result in expected if result.matched]
    got = index.matches(trigger, record, previous=previous, now=NOW)
    assert [(i, result) for i, _, result in got] == expected
    decided = index.matching(trigger, record, previous=previous, now=NOW)
    assert [i for i, _ in decided] == [i for i, _ in expected]


def test_a_contains_needle_keys_its_rule_by_a_run_of_its_characters() -> None:
    rules = [
        ("vpn", notify_rule(0, "on_ticket_created", {"title": {"contains": "VPN"}})),
        ("laptop", notify_rule(1, "on_ticket_created", {"title": {"contains": "laptop"}})),
        ("short", notify_rule(2, "on_ticket_created", {"title": {"contains": "ab"}})),
        ("city", notify_rule(3, "on_ticket_created", {"title": {"contains": "İstanbul"}})),
    ]
    index = RuleIndex(rules)
    stats = index.stats(Trigger.ON_TICKET_CREATED)
    assert (stats.always, stats.by_contains) == (1, {"title": 3})

    def candidates(title: Any) -> list[str]:
        return [i for i, _ in index.candidates(Trigger.ON_TICKET_CREATED, {"title": title})]

    def matching(title: Any) -> list[str]:
        record = {"title": title}
        return [i for i, _ in index.matching(Trigger.ON_TICKET_CREATED, record, now=NOW)]

    assert candidates("the vpn is down") == ["vpn", "short"]
    assert matching("the vpn is down") == ["vpn"]
    assert matching("New LAPTOP, no VPN") == ["vpn", "laptop"]
    assert matching("flight to istanbul") == []  # "İ" lower-cases to "i̇", not "i"
    assert matching("FLIGHT TO İSTANBUL") == ["city"]
    # A list is searched element by element, case-sensitively; anything else holds nothing.
    assert candidates(["VPN"]) == ["vpn", "laptop", "short", "city"]
    assert matching(["VPN"]) == ["vpn"]
    assert candidates(None) == candidates(3) == ["short"]


def test_a_rule_is_filed_under_its_least_shared_key() -> None:
    # Every rule names priority P3 and three categories of its own: the categories' buckets hold
    # fewer rules, so a P3 ticket meets only the rules of its category.
    rules = [
        (
            i,
            notify_rule(
                i,
                "on_ticket_created",
                {"priority": "P3", "category": {"in": [f"c{i}", f"d{i}", f"e{i}"]}},
            ),
        )
        for i in range(50)
    ]
    index = RuleIndex(rules)
    assert index.stats(Trigger.ON_TICKET_CREATED).by_field == {"category": 50}
    record = {"priority": "P3", "category": "d7"}
    assert [i for i, _ in index.candidates(Trigger.ON_TICKET_CREATED, record)] == [7]
    assert [i for i, _, _ in index.matches(Trigger.ON_TICKET_CREATED, record, now=NOW)] == [7]
    assert index.matches(Trigger.ON_TICKET_CREATED, {**record, "priority": "P2"}, now=NOW) == []


def test_malformed_conditions_still_raise_when_matched() -> None:
    # A rule built without validation: the index files it, and matching it raises as the
    # matcher does.
    valid = notify_rule(0, "on_ticket_created", {"priority": "P1"})
    broken = valid.model_copy(update={"conditions": {"priority": {"bogus": 1}}})
    index = RuleIndex([("broken", broken)])
    with pytest.raises(RuleError, match="unknown operator"):
        index.matches(Trigger.ON_TICKET_CREATED, {"priority": "P1"}, now=NOW)
    with pytest.raises(RuleError, match="unknown operator"):
        compile_conditions(broken.conditions)({"priority": "P1"}, None, NOW)


def test_an_index_built_again_reuses_the_checks_of_the_same_rules() -> None:
    rules = [
        (
            "a",
            notify_rule(0, "on_ticket_created", {"priority": "P1", "title": {"contains": "vpn"}}),
        ),
        ("b", notify_rule(1, "on_ticket_created", {"category": {"in": ["net", "hw"]}})),
        ("c", notify_rule(2, "on_ticket_created", {"title": {"contains": "laptop"}})),
    ]
    first = RuleIndex(rules)
    changed = ("b", notify_rule(1, "on_ticket_created", {"category": "hw"}))
    again = RuleIndex([rules[0], changed, rules[2]], reuse=first)
    assert again._compiled[id(rules[0][1])] is first._compiled[id(rules[0][1])]
    assert again._compiled[id(changed[1])] is not first._compiled.get(id(rules[1][1]))
    for record in (
        {"priority": "P1", "title": "VPN down", "category": "hw"},
        {"priority": "P2", "title": "new laptop", "category": "net"},
    ):
        expected = [
            rule_id
            for rule_id, rule in [rules[0], changed, rules[2]]
            if match_conditions(rule.conditions, record, now=NOW).matched
        ]
        got = again.matching(Trigger.ON_TICKET_CREATED, record, now=NOW)
        assert [rule_id for rule_id, _ in got] == expected
