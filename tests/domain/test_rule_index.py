"""The rule index gives exactly the rules matching every rule in turn gives, in the same order."""

from __future__ import annotations

import random
from enum import StrEnum
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rule_factory import notify_rule

from protocol_lab.domain import Rule, Trigger, match_conditions
from protocol_lab.domain.rule_index import RuleIndex, key_condition

NOW = 1_700_000_000.0
FIELDS = ["priority", "status", "category", "assignee", "title"]
# Values that compare equal across types (1, 1.0, True), differ only in case, or look like
# numbers; None is what a missing field reads as.
SCALARS: list[Any] = [
    "P1", "p1", "P2", "open", "Open", "1", "", None, 0, 1, 1.0, True, False, 2, 2.5, -1,
]  # fmt: skip
RECORD_VALUES: list[Any] = [*SCALARS, float("nan"), ["P1"], ("P1",), {"a": 1}]


class Level(StrEnum):
    """A record value that is a ``str`` subclass."""

    P1 = "P1"
    OPEN = "open"


def _spec(rng: random.Random) -> Any:
    kind = rng.randrange(10)
    value = rng.choice(SCALARS)
    if kind <= 2:
        return value if value is not None or rng.random() < 0.5 else None
    if kind == 3:
        return {"eq": value}
    if kind == 4:
        return {"in": rng.sample(SCALARS, rng.randint(1, 3))}
    if kind == 5:
        return {"not_in": rng.sample(SCALARS, rng.randint(1, 3))}
    if kind == 6:
        return {"contains": rng.choice(["p", "P1", "open", "x"])}
    if kind == 7:
        return {"gte": rng.choice([0, 1, 1.5])}
    if kind == 8:
        return {"changed_to": value} if value is not None else {"changed": rng.random() < 0.5}
    return {"eq": value, "in": rng.sample(SCALARS, 2)}


def _conditions(rng: random.Random, *, depth: int = 0) -> dict[str, Any]:
    conditions: dict[str, Any] = {}
    for name in rng.sample(FIELDS, rng.randint(0, 3)):
        conditions[name] = _spec(rng)
    if rng.random() < 0.2:
        conditions["idle_hours"] = rng.choice([1, {"lt": 5}, {"gte": 0.5}])
    if depth < 2 and rng.random() < 0.2:
        group = rng.choice(["all", "any"])
        conditions[group] = [_conditions(rng, depth=depth + 1) or {"status": "open"}]
    return conditions


def _record(rng: random.Random) -> dict[str, Any]:
    record: dict[str, Any] = {"last_activity_at": NOW - rng.choice([0, 3600, 7200, 36_000])}
    for name in FIELDS:
        roll = rng.random()
        if roll < 0.15:
            continue  # missing
        if roll < 0.2:
            record[name] = rng.choice(list(Level))
        else:
            record[name] = rng.choice(RECORD_VALUES)
    return record


def _by_every_rule(
    rules: list[tuple[str, Rule]],
    trigger: Trigger,
    record: dict[str, Any],
    previous: dict[str, Any] | None,
) -> list[str]:
    return [
        rule_id
        for rule_id, rule in rules
        if rule.trigger is trigger
        and match_conditions(rule.conditions, record, previous=previous, now=NOW).matched
    ]


def test_the_index_agrees_with_matching_every_rule() -> None:
    rng = random.Random(20261130)
    triggers = ["on_ticket_created", "on_ticket_updated"]
    rules = []
    for i in range(600):
        trigger = rng.choice(triggers)
        conditions = _conditions(rng)
        if trigger == "on_ticket_created":
            conditions = {
                k: v
                for k, v in conditions.items()
                if not (isinstance(v, dict) and {"changed", "changed_to"} & v.keys())
                and k not in ("all", "any")
            }
        rules.append((f"rule-{i}", notify_rule(i, trigger, conditions)))
    index = RuleIndex(rules)
    assert len(index) == len(rules)
    fired = candidates_seen = 0
    for _ in range(400):
        record = _record(rng)
        previous = _record(rng) if rng.random() < 0.7 else None
        for trigger in (Trigger.ON_TICKET_CREATED, Trigger.ON_TICKET_UPDATED):
            prev = previous if trigger is Trigger.ON_TICKET_UPDATED else None
            expected = _by_every_rule(rules, trigger, record, prev)
            got = index.matches(trigger, record, previous=prev, now=NOW)
            assert [rule_id for rule_id, _, _ in got] == expected, record
            for _, rule, result in got:
                assert result == match_conditions(rule.conditions, record, previous=prev, now=NOW)
            candidates = [rule_id for rule_id, _ in index.candidates(trigger, record)]
            assert set(expected) <= set(candidates)
            fired += len(expected)
            candidates_seen += len(candidates)
    # The test means something: rules fired, and the index ruled most rules out.
    assert fired > 1000
    assert candidates_seen < 0.6 * 400 * len(rules)


scalars = st.sampled_from(SCALARS)
specs = st.one_of(
    scalars,
    st.builds(lambda v: {"eq": v}, scalars),
    st.builds(lambda vs: {"in": vs}, st.lists(scalars, min_size=1, max_size=3)),
    st.builds(lambda vs: {"not_in": vs}, st.lists(scalars, min_size=1, max_size=3)),
    st.builds(lambda s: {"contains": s}, st.sampled_from(["p", "1", "open"])),
    # thresholds that the record's values (integers -3 to 3, 1.0, 2.5, True) often equal
    st.builds(
        lambda op, v: {op: v},
        st.sampled_from(["gt", "gte", "lt", "lte"]),
        st.sampled_from([-1, 0, 1, 1.0, 2, 2.5]),
    ),
)
conditions_strategy = st.dictionaries(st.sampled_from(FIELDS), specs, max_size=3)
record_values = st.one_of(
    st.sampled_from(RECORD_VALUES),
    st.sampled_from(list(Level)),
    st.integers(-3, 3),
    st.floats(allow_nan=True),
    st.text(max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    many=st.lists(conditions_strategy, min_size=1, max_size=12),
    record=st.dictionaries(st.sampled_from([*FIELDS, "description"]), record_values),
)
def test_the_index_agrees_on_any_rules_and_record(
    many: list[dict[str, Any]], record: dict[str, Any]
) -> None:
    rules = [(i, notify_rule(i, "on_ticket_created", c)) for i, c in enumerate(many)]
    index = RuleIndex(rules)
    expected = [
        i for i, rule in rules if match_conditions(rule.conditions, record, now=NOW).matched
    ]
    got = [i for i, _, _ in index.matches(Trigger.ON_TICKET_CREATED, record, now=NOW)]
    assert got == expected


def test_key_conditions_are_equalities_and_memberships_of_plain_fields() -> None:
    def key(conditions: dict[str, Any]) -> tuple[str, frozenset[Any]] | None:
        return key_condition(notify_rule(0, "on_ticket_updated", conditions))

    assert key({"priority": {"in": ["P1", "P2"]}, "category": "incident"}) == (
        "category",
        frozenset({"incident"}),
    )
    assert key({"priority": {"in": ["P1", "P2"]}}) == ("priority", frozenset({"P1", "P2"}))
    assert key({"status": {"eq": "open", "changed": True}}) == ("status", frozenset({"open"}))
    assert key({"assignee": None}) == ("assignee", frozenset({None}))
    # Not exact, or not an equality: every record is a candidate.
    assert key({"idle_hours": 24}) is None
    assert key({"title": {"contains": "VPN"}}) is None
    assert key({"priority": {"not_in": ["P4"]}}) is None
    assert key({"status": {"changed_to": "resolved"}}) is None
    assert key({"any": [{"priority": "P1"}, {"priority": "P2"}]}) is None
    assert key({"category": ["a", "b"]}) is None  # equality with a list
    assert key({"priority": {"in": ["P1", ["P2"]]}}) is None
    assert key({"priority": float("nan")}) is None


def test_candidates_keep_the_rule_order_and_the_unkeyed_rules() -> None:
    rules = [
        ("a", notify_rule(0, "on_ticket_created", {"priority": "P1"})),
        ("b", notify_rule(1, "on_ticket_created", {"title": {"contains": "vpn"}})),
        ("c", notify_rule(2, "on_ticket_created", {"category": {"in": ["net", "hw"]}})),
        ("d", notify_rule(3, "on_ticket_created", {"priority": "P2"})),
        ("e", notify_rule(4, "on_ticket_updated", {"priority": "P1"})),
        ("f", notify_rule(5, "on_ticket_created", {})),
    ]
    index = RuleIndex(rules)
    record = {"priority": "P1", "category": "hw", "title": "VPN down"}
    assert [i for i, _ in index.candidates(Trigger.ON_TICKET_CREATED, record)] == [
        "a",
        "b",
        "c",
        "f",
    ]
    assert [i for i, _, _ in index.matches(Trigger.ON_TICKET_CREATED, record, now=NOW)] == [
        "a",
        "b",
        "c",
        "f",
    ]
    assert index.candidates(Trigger.WEBHOOK, record) == []
    # A value of another type than the plain scalars is looked up the slow way; a record
    # without a title cannot contain "vpn".
    record = {"priority": Level.P1, "category": "x"}
    assert [i for i, _ in index.candidates(Trigger.ON_TICKET_CREATED, record)] == [
        "a",
        "d",
        "f",
    ]
    stats = index.stats(Trigger.ON_TICKET_CREATED)
    assert (stats.rules, stats.always, stats.by_field, stats.by_contains) == (
        5,
        1,
        {"priority": 2, "category": 1},
        {"title": 1},
    )
