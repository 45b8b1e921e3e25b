"""Rules compiled into an index: the rules an event can fire, found without matching them all.

:class:`RuleIndex` groups rules by trigger. Within a trigger, each rule that has one is filed
under one *key condition*: a top-level equality (``{"priority": "P1"}``, ``{"priority": {"eq":
"P1"}}``) or membership (``{"priority": {"in": ["P1", "P2"]}}``) on a plain field, whose expected
values are all plain scalars (strings, integers, finite floats, booleans, ``None``). A record can
only satisfy such a condition if the field's value is one of those values, so the rule is a
*candidate* for a record only when the record's value finds its bucket. Rules without a key
condition are candidates for every record of their trigger.

This is exact, not a heuristic: for the scalar types above, Python's ``==`` implies equal hashes,
so a dictionary lookup finds exactly the expected values the matcher's ``==`` / ``in`` would
accept (``1``, ``1.0`` and ``True`` share a bucket, as they compare equal). A record value of any
other type (a list, a ``StrEnum`` member, a ``Decimal``) is looked up the slow way: every rule
keyed on that field is a candidate. Candidates are then matched in full with
:func:`~protocol_lab.domain.rules.match_conditions`, and returned in the order the rules were
given, so what fires, and in which order, is what matching every rule in turn gives.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from protocol_lab.domain.rules import (
    MatchResult,
    Rule,
    Trigger,
    _lookup,  # the matcher's own field lookup: missing fields, dotted paths
    is_group,
    match_conditions,
)
from protocol_lab.domain.tickets import DERIVED_FIELDS

__all__ = ["IndexStats", "RuleIndex", "key_condition", "surely_misses"]

IdT = TypeVar("IdT", bound=Hashable)

# Types whose equality agrees with their hash (and with other members of the tuple): a lookup by
# a value of one of these types finds exactly the keys it compares equal to.
_EXACT_TYPES: Final = (str, int, float, bool, type(None))


def _exact_scalar(value: Any) -> bool:
    """Whether ``value`` can key a bucket (a plain scalar that equals itself)."""
    if type(value) not in _EXACT_TYPES:
        return False
    return not (type(value) is float and math.isnan(value))


def key_condition(rule: Rule) -> tuple[str, frozenset[Any]] | None:
    """The condition a rule is filed under: (field, the values it accepts), or None.

    Only top-level conditions on plain (not derived) fields qualify: an equality, or an
    operator object with ``eq`` or a non-empty ``in`` whose values are all plain scalars. An
    equality beats a membership (one bucket instead of several); fewer values win among
    memberships; the first such condition in the rule's order wins a tie.
    """
    best: tuple[str, frozenset[Any]] | None = None
    for name, spec in rule.conditions.items():
        if name in DERIVED_FIELDS or is_group(name, spec):
            continue
        values: list[Any] | None = None
        if not isinstance(spec, Mapping):
            values = [spec]
        elif "eq" in spec:
            values = [spec["eq"]]
        elif "in" in spec and isinstance(spec["in"], list | tuple) and spec["in"]:
            values = list(spec["in"])
        if values is None or not all(_exact_scalar(v) for v in values):
            continue
        keys = frozenset(values)
        if best is None or len(keys) < len(best[1]):
            best = (name, keys)
            if len(keys) == 1:
                break
    return best


def surely_misses(rule: Rule, record: Mapping[str, Any]) -> bool:
    """A cheap pre-check: a plain equality condition on a field the record has, that differs.

    Exactly what :func:`~protocol_lab.domain.rules.match_conditions` would conclude for that
    condition, without building the explanation.
    """
    for name, spec in rule.conditions.items():
        if (
            name not in DERIVED_FIELDS
            and not is_group(name, spec)
            and name in record
            and not isinstance(spec, Mapping)
            and record[name] != spec
        ):
            return True
    return False


@dataclass(slots=True)
class _TriggerRules(Generic[IdT]):
    """The rules of one trigger: in order, and filed by their key conditions."""

    entries: list[tuple[IdT, Rule]] = field(default_factory=list)
    always: list[int] = field(default_factory=list)  # positions of rules without a key
    buckets: dict[str, dict[Any, list[int]]] = field(default_factory=dict)
    keyed: dict[str, list[int]] = field(default_factory=dict)  # field -> positions, in order

    def add(self, rule_id: IdT, rule: Rule) -> None:
        position = len(self.entries)
        self.entries.append((rule_id, rule))
        key = key_condition(rule)
        if key is None:
            self.always.append(position)
            return
        name, values = key
        by_value = self.buckets.setdefault(name, {})
        for value in values:
            by_value.setdefault(value, []).append(position)
        self.keyed.setdefault(name, []).append(position)

    def candidates(self, record: Mapping[str, Any]) -> list[int]:
        positions: list[int] = list(self.always)
        for name, by_value in self.buckets.items():
            actual = _lookup(record, name)
            if type(actual) in _EXACT_TYPES:
                positions.extend(by_value.get(actual, ()))
            else:
                positions.extend(self.keyed[name])
        # A rule is in one field's buckets only; a set is needed only where one rule sits in
        # several buckets of a field looked up the slow way.
        return sorted(set(positions))


@dataclass(frozen=True, slots=True)
class IndexStats:
    """How a trigger's rules are filed: by key field, and how many are checked always."""

    rules: int
    always: int
    by_field: dict[str, int]


class RuleIndex(Generic[IdT]):
    """Rules keyed by trigger and by their equality / membership conditions; immutable.

    Built from ``(id, rule)`` pairs in firing order; :meth:`matches` gives exactly the rules
    (of a trigger) that :func:`~protocol_lab.domain.rules.match_conditions` accepts, in that
    order, matching in full only the :meth:`candidates`.
    """

    def __init__(self, rules: Iterable[tuple[IdT, Rule]]) -> None:
        """Index ``rules`` (id and rule), keeping their order within each trigger."""
        self._triggers: dict[Trigger, _TriggerRules[IdT]] = {}
        for rule_id, rule in rules:
            self._triggers.setdefault(rule.trigger, _TriggerRules()).add(rule_id, rule)

    def __len__(self) -> int:
        """How many rules the index holds."""
        return sum(len(t.entries) for t in self._triggers.values())

    def rules(self, trigger: Trigger) -> list[tuple[IdT, Rule]]:
        """Every rule of ``trigger``, in order."""
        found = self._triggers.get(trigger)
        return list(found.entries) if found is not None else []

    def candidates(self, trigger: Trigger, record: Mapping[str, Any]) -> list[tuple[IdT, Rule]]:
        """The rules of ``trigger`` whose key condition the record can satisfy, in order.

        Every rule that matches the record is among them; most that do not, are not.
        """
        found = self._triggers.get(trigger)
        if found is None:
            return []
        entries = found.entries
        return [entries[p] for p in found.candidates(record)]

    def matches(
        self,
        trigger: Trigger,
        record: Mapping[str, Any],
        *,
        previous: Mapping[str, Any] | None = None,
        now: float,
    ) -> list[tuple[IdT, Rule, MatchResult]]:
        """The rules of ``trigger`` whose conditions hold for the record, in order, each with
        its :class:`~protocol_lab.domain.rules.MatchResult` (the checks, for the record)."""
        out: list[tuple[IdT, Rule, MatchResult]] = []
        for rule_id, rule in self.candidates(trigger, record):
            if surely_misses(rule, record):
                continue
            result = match_conditions(rule.conditions, record, previous=previous, now=now)
            if result.matched:
                out.append((rule_id, rule, result))
        return out

    def stats(self, trigger: Trigger) -> IndexStats:
        """How the rules of ``trigger`` are filed (for benchmarks and diagnostics)."""
        found = self._triggers.get(trigger)
        if found is None:
            return IndexStats(rules=0, always=0, by_field={})
        return IndexStats(
            rules=len(found.entries),
            always=len(found.always),
            by_field={name: len(positions) for name, positions in found.keyed.items()},
        )
