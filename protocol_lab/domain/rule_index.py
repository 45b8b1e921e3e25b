"""Rules compiled into an index: the rules an event can fire, found without matching them all.

:class:`RuleIndex` groups rules by trigger. Within a trigger, each rule that has one is filed
under one *key*:

- a top-level equality (``{"priority": "P1"}``, ``{"priority": {"eq": "P1"}}``) or membership
  (``{"priority": {"in": ["P1", "P2"]}}``) on a plain field, whose expected values are all plain
  scalars (strings, integers, finite floats, booleans, ``None``). A record can only satisfy it
  if the field's value is one of those values, so the rule is a *candidate* for a record only
  when the record's value finds its bucket. Of a rule's equalities and memberships, the one
  whose buckets the fewest rules of the set could share is chosen (``{"priority": "P3",
  "category": {"in": [three services]}}`` goes under its services, not under P3);
- failing one, a top-level ``contains`` on a plain field whose needle has at least
  :data:`GRAM` characters once lower-cased: the rule is filed under one run of :data:`GRAM`
  characters of the lower-cased needle, and is a candidate for a record whose lower-cased text
  holds that run (a list value is searched element by element: every rule so filed is then a
  candidate; any other value contains nothing).

Rules without a key are candidates for every record of their trigger.

This is exact, not a heuristic: for the scalar types above, Python's ``==`` implies equal hashes,
so a dictionary lookup finds exactly the expected values the matcher's ``==`` / ``in`` would
accept (``1``, ``1.0`` and ``True`` share a bucket, as they compare equal). A record value of any
other type (a list, a ``StrEnum`` member, a ``Decimal``) is looked up the slow way: every rule
keyed on that field is a candidate. A string can only hold the needle if it holds each of its
runs.

Each rule is compiled once, when the index is built, into checks that decide exactly what
:func:`~protocol_lab.domain.rules.match_conditions` decides, with what does not depend on the
record (validation, groups, operators, how a field is read, the lower-cased needle) settled:
candidates are decided by them (a rule found in its bucket without its key condition, which the
lookup has settled), string fields are lower-cased once per event, and only the rules that
match are matched again by the matcher for their explanation. Rules come out in the order they
were given, so what fires, and in which order, is what matching every rule in turn gives.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Final, Generic, TypeVar

from protocol_lab.domain.errors import RuleError
from protocol_lab.domain.rules import (  # the matcher's own lookups, so the checks agree
    _MISSING,
    MatchResult,
    Rule,
    Trigger,
    _derived,
    _lookup,
    _match_valid,
    is_group,
    match_conditions,
    validate_conditions,
)
from protocol_lab.domain.tickets import DERIVED_FIELDS

__all__ = [
    "IndexStats",
    "Predicate",
    "RuleIndex",
    "compile_conditions",
    "key_condition",
    "surely_misses",
]

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
    key = _key_operator(rule.conditions)
    return None if key is None else (key[0], key[2])


def _key_operator(conditions: Mapping[str, Any]) -> _Key | None:
    """:func:`key_condition`, with the operator (``eq`` or ``in``) the key stands for."""
    exact = _exact_options(conditions)
    return min(exact, key=lambda option: len(option[2])) if exact else None


# A key a rule can be filed under: (field, "eq" | "in" | "contains", the keys).
_Key = tuple[str, str, frozenset[Any]]
GRAM: Final = 3  # a contains condition is filed under one run of this many characters


def _exact_options(conditions: Mapping[str, Any]) -> list[_Key]:
    """Every top-level equality or membership of plain scalars on a plain field, in order."""
    options: list[_Key] = []
    for name, spec in conditions.items():
        if name in DERIVED_FIELDS or is_group(name, spec):
            continue
        values: list[Any] | None = None
        op = "eq"
        if not isinstance(spec, Mapping):
            values = [spec]
        elif "eq" in spec:
            values = [spec["eq"]]
        elif "in" in spec and isinstance(spec["in"], list | tuple) and spec["in"]:
            values, op = list(spec["in"]), "in"
        if values is not None and all(_exact_scalar(v) for v in values):
            options.append((name, op, frozenset(values)))
    return options


def _grams(text: str) -> set[str]:
    """Every run of :data:`GRAM` characters of ``text``."""
    return {text[i : i + GRAM] for i in range(len(text) - GRAM + 1)}


def _contains_options(conditions: Mapping[str, Any]) -> list[_Key]:
    """Every top-level ``contains`` of a string of at least :data:`GRAM` characters (once
    lower-cased) on a plain field, with the runs of the lower-cased needle.

    A string field can only contain the needle (ignoring case) if its lower-cased value holds
    every run of the lower-cased needle, so a rule filed under one run is a candidate only for
    records whose field holds that run; a list field is compared element by element instead,
    and any other value never contains anything.
    """
    options: list[_Key] = []
    for name, spec in conditions.items():
        if name in DERIVED_FIELDS or is_group(name, spec) or not isinstance(spec, Mapping):
            continue
        needle = spec.get("contains")
        if isinstance(needle, str) and len(needle.lower()) >= GRAM:
            options.append((name, "contains", frozenset(_grams(needle.lower()))))
    return options


_Options = tuple[list[_Key], list[_Key]]  # a rule's equalities / memberships, its contains


def _options(conditions: Mapping[str, Any]) -> _Options:
    """The keys a rule could be filed under."""
    return _exact_options(conditions), _contains_options(conditions)


def _choose_key(options: _Options, demand: Mapping[tuple[Any, ...], int]) -> _Key | None:
    """The key a rule is filed under in a rule set: the equality or membership whose buckets
    hold the fewest rules (``demand``: how many rules could be filed under each), or failing
    one, the run of a ``contains`` needle that the fewest rules could be filed under."""
    exact, contains = options
    if exact:
        return min(exact, key=lambda o: sum(demand[(o[0], v)] for v in o[2]))
    runs = [(name, op, run) for name, op, runs in contains for run in runs]
    if not runs:
        return None
    name, op, run = min(runs, key=lambda o: (demand[(o[0], o[1], o[2])], o[2]))
    return (name, op, frozenset({run}))


def _demand(rules: Iterable[_Options]) -> dict[tuple[Any, ...], int]:
    """How many rules could be filed under each key (field and value, or field and run)."""
    demand: dict[tuple[Any, ...], int] = {}
    for exact, contains in rules:
        for name, _, values in exact:
            for value in values:
                demand[(name, value)] = demand.get((name, value), 0) + 1
        for name, op, runs in contains:
            for run in runs:
                demand[(name, op, run)] = demand.get((name, op, run), 0) + 1
    return demand


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


class _Event:
    """One record being matched: the record, the one before it, the time, and what the checks
    of every rule share (string fields lower-cased once per event, not once per rule)."""

    __slots__ = ("lowered", "now", "previous", "record")

    def __init__(
        self, record: Mapping[str, Any], previous: Mapping[str, Any] | None, now: float
    ) -> None:
        self.record = record
        self.previous = previous
        self.now = now
        self.lowered: dict[str, str] = {}


_Check = Callable[[_Event], Any]  # truthy when the condition holds
Predicate = Callable[[Mapping[str, Any], Mapping[str, Any] | None, float], bool]

_ORDERING: Final = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def _value_of(name: str) -> _Check:
    """How a condition reads its field: derived, a dotted path, or a plain field."""
    if name in DERIVED_FIELDS:
        return lambda ev: _derived(name, ev.record, ev.now)
    if "." in name:
        return lambda ev: _lookup(ev.record, name)
    return lambda ev: ev.record.get(name)


def _before_of(name: str) -> Callable[[_Event], Any]:
    """The field's value in the previous record (``_MISSING`` without one)."""
    return lambda ev: _MISSING if ev.previous is None else _lookup(ev.previous, name)


def _is_plain(name: str) -> bool:
    """True for a field read straight from the record (not derived, not a dotted path)."""
    return name not in DERIVED_FIELDS and "." not in name


def _plain_check(name: str, op: str, expected: Any) -> _Check | None:
    """``eq`` / ``in`` / ``not_in`` / ``contains`` on a plain field, read in place (the common
    checks)."""
    if not _is_plain(name):
        return None
    if op == "eq":
        return lambda ev: ev.record.get(name) == expected
    if op == "in":
        return lambda ev: ev.record.get(name) in expected
    if op == "not_in":
        return lambda ev: ev.record.get(name) not in expected
    if op == "contains":
        return _contains_check(name, None, expected)
    return None


def _contains_check(name: str, value: _Check | None, expected: str) -> _Check:
    """``contains`` on a field (``value`` reads it; None: a plain field, read in place)."""
    needle = expected.lower()

    def check(ev: _Event) -> bool:
        actual = ev.record.get(name) if value is None else value(ev)
        if isinstance(actual, str):
            lowered = ev.lowered.get(name)
            if lowered is None:
                lowered = ev.lowered[name] = actual.lower()
            return needle in lowered
        if isinstance(actual, list | tuple):
            return expected in actual
        return False

    return check


def _op_check(name: str, op: str, expected: Any) -> _Check:
    """One operator on one field, as ``_compare`` decides it."""
    plain = _plain_check(name, op, expected)
    if plain is not None:
        return plain
    value = _value_of(name)
    if op == "eq":
        return lambda ev: value(ev) == expected
    if op == "in":
        return lambda ev: value(ev) in expected
    if op == "not_in":
        return lambda ev: value(ev) not in expected
    if op in _ORDERING:
        order = _ORDERING[op]

        def ordered(ev: _Event) -> bool:
            actual = value(ev)
            if isinstance(actual, bool) or not isinstance(actual, int | float):
                return False
            return bool(order(actual, expected))

        return ordered
    if op == "contains":
        return _contains_check(name, value, expected)
    before = _before_of(name)
    if op == "changed":

        def changed(ev: _Event) -> bool:
            prior = before(ev)
            differs = prior is not _MISSING and prior != value(ev)
            return differs is expected

        return changed
    if op == "changed_to":

        def changed_to(ev: _Event) -> bool:
            prior = before(ev)
            actual = value(ev)
            return bool(prior is not _MISSING and prior != actual and actual == expected)

        return changed_to
    raise RuleError(f"unknown operator {op!r}")


def _ops(name: str, spec: Any) -> list[tuple[str, Any]]:
    """The operators of one condition, as the matcher reads them."""
    if isinstance(spec, Mapping):
        return list(spec.items())
    if name in DERIVED_FIELDS and isinstance(spec, int | float) and not isinstance(spec, bool):
        return [("gte", spec)]
    return [("eq", spec)]


def _all_of(checks: list[_Check]) -> _Check:
    if not checks:
        return lambda ev: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda ev: first(ev) and second(ev)
    if len(checks) == 3:
        first, second, third = checks
        return lambda ev: first(ev) and second(ev) and third(ev)
    every = tuple(checks)

    # a loop, not all() over a generator: this runs for every candidate of every event
    def each(ev: _Event) -> bool:
        for check in every:  # noqa: SIM110 (the loop is faster)
            if not check(ev):
                return False
        return True

    return each


def _any_of(checks: list[_Check]) -> _Check:
    some = tuple(checks)

    def one(ev: _Event) -> bool:
        for check in some:  # noqa: SIM110 (the loop is faster)
            if check(ev):
                return True
        return False

    return one


def _object_checks(
    conditions: Mapping[str, Any], *, skip: tuple[str, str] | None = None
) -> list[_Check]:
    """One check per operator of a conditions object (groups as one check each), leaving out
    the operator ``skip`` (field, op) names; cheap equalities first."""
    cheap: list[_Check] = []
    rest: list[_Check] = []
    for name, spec in conditions.items():
        if is_group(name, spec):
            members = [_all_of(_object_checks(member)) for member in spec]
            rest.append(_all_of(members) if name == "all" else _any_of(members))
            continue
        for op, expected in _ops(name, spec):
            if (name, op) == skip:
                continue
            plain = op in ("eq", "in", "not_in") and _is_plain(name)
            (cheap if plain else rest).append(_op_check(name, op, expected))
    return cheap + rest


def _compile(conditions: Mapping[str, Any]) -> tuple[_Check, bool]:
    """A check that holds exactly when :func:`match_conditions` says the conditions match, and
    whether they are well formed.

    Malformed conditions give a check that calls the matcher, which raises as it always did.
    """
    try:
        validate_conditions(conditions)
    except RuleError:

        def malformed(ev: _Event) -> bool:
            return match_conditions(conditions, ev.record, previous=ev.previous, now=ev.now).matched

        return malformed, False
    return _all_of(_object_checks(conditions)), True


def compile_conditions(conditions: Mapping[str, Any]) -> Predicate:
    """``predicate(record, previous, now)``: whether the conditions match, as
    ``match_conditions(conditions, record, previous=previous, now=now).matched`` says, decided
    by checks built once (no validation, explanation or operator lookup per call)."""
    check, _ = _compile(conditions)
    return lambda record, previous, now: bool(check(_Event(record, previous, now)))


class _Compiled:
    """A rule's compiled checks: all its conditions, and all but one key condition (made when
    first asked for)."""

    __slots__ = ("full", "rests", "rule", "valid")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.full, self.valid = _compile(rule.conditions)
        self.rests: dict[tuple[str, str], _Check] = {}

    def without(self, name: str, op: str) -> _Check:
        """The conditions' check without the operator ``op`` of field ``name``."""
        found = self.rests.get((name, op))
        if found is None:
            found = self.rests[(name, op)] = _all_of(
                _object_checks(self.rule.conditions, skip=(name, op))
            )
        return found


@dataclass(slots=True)
class _TriggerRules(Generic[IdT]):
    """The rules of one trigger: in order, compiled, and filed by their keys.

    Each rule has two compiled checks: ``full`` (every condition) and ``rest`` (all but its key
    condition, which a record found in the rule's bucket is known to satisfy; a ``contains``
    key only narrows, so its rules are decided in full).
    """

    entries: list[tuple[IdT, Rule]] = field(default_factory=list)
    full: list[_Check] = field(default_factory=list)
    rest: list[_Check] = field(default_factory=list)
    always: list[int] = field(default_factory=list)  # positions of rules without a key
    buckets: dict[str, dict[Any, list[int]]] = field(default_factory=dict)
    keyed: dict[str, list[int]] = field(default_factory=dict)  # field -> positions, in order
    runs: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # contains keys
    # the same lists by the run's characters: a text's runs are then zip()ped in C
    run_chars: dict[str, dict[tuple[str, ...], list[int]]] = field(default_factory=dict)
    contains: dict[str, list[int]] = field(default_factory=dict)  # field -> positions

    def add(self, rule_id: IdT, rule: Rule, key: _Key | None, compiled: _Compiled) -> None:
        position = len(self.entries)
        self.entries.append((rule_id, rule))
        full = compiled.full
        self.full.append(full)
        # (malformed conditions are left to the matcher, which raises when it meets them)
        if key is None or not compiled.valid:
            self.rest.append(full)
            self.always.append(position)
            return
        name, op, values = key
        if op == "contains":
            self.rest.append(full)
            (run,) = values
            positions = self.runs.setdefault(name, {}).setdefault(run, [])
            positions.append(position)
            self.run_chars.setdefault(name, {})[tuple(run)] = positions
            self.contains.setdefault(name, []).append(position)
            return
        self.rest.append(compiled.without(name, op))
        by_value = self.buckets.setdefault(name, {})
        for value in values:
            by_value.setdefault(value, []).append(position)
        self.keyed.setdefault(name, []).append(position)

    def sources(self, event: _Event) -> tuple[list[list[int]], list[list[int]]]:
        """The candidates' positions, as lists each in order, no position in two: those a
        record's bucket or run found, or that have no key; and those of fields whose value is
        looked up the slow way (their rules are decided with all their conditions)."""
        record = event.record
        found: list[list[int]] = [self.always] if self.always else []
        slow: list[list[int]] = []
        for name, by_value in self.buckets.items():
            actual = _lookup(record, name)
            if type(actual) in _EXACT_TYPES:
                hit = by_value.get(actual)
                if hit:
                    found.append(hit)
            else:
                slow.append(self.keyed[name])
        for name, by_run in self.runs.items():
            actual = _lookup(record, name)
            if isinstance(actual, str):
                lowered = event.lowered.get(name)
                if lowered is None:
                    lowered = event.lowered[name] = actual.lower()
                if 2 * len(by_run) < len(lowered):
                    found.extend([hit for run, hit in by_run.items() if run in lowered])
                else:
                    by_chars = self.run_chars[name]
                    shifted = (lowered[i:] for i in range(GRAM))  # shorter and shorter: not strict
                    runs = by_chars.keys() & set(zip(*shifted, strict=False))
                    found.extend([by_chars[run] for run in runs])
            elif isinstance(actual, list | tuple):
                found.append(self.contains[name])
        return found, slow

    def positions(self, event: _Event) -> list[int]:
        """Positions of the candidates, in order."""
        found, slow = self.sources(event)
        found.extend(slow)
        if len(found) == 1:
            return found[0]
        return sorted(chain.from_iterable(found))

    def decide(self, event: _Event) -> list[int]:
        """Positions of the rules that match, in order.

        A rule is decided by ``rest`` (its key condition settled by the lookup; for a rule
        filed under a run or without a key, all its conditions), or by ``full`` where its
        field was looked up the slow way. A rule is filed under one key, and a record finds one
        bucket of a field's values (or one of each run of its text), so no position comes
        twice.
        """
        found, slow = self.sources(event)
        rest = self.rest
        if not slow:
            if len(found) == 1:
                return [p for p in found[0] if rest[p](event)]
            return [p for p in sorted(chain.from_iterable(found)) if rest[p](event)]
        full = self.full
        slowly = set(chain.from_iterable(slow))
        every = sorted(chain.from_iterable(found + slow))
        return [p for p in every if (full[p] if p in slowly else rest[p])(event)]


@dataclass(frozen=True, slots=True)
class IndexStats:
    """How a trigger's rules are filed: by key field, and how many are checked always."""

    rules: int
    always: int
    by_field: dict[str, int]
    by_contains: dict[str, int] = field(default_factory=dict)  # filed under a run of a needle


class RuleIndex(Generic[IdT]):
    """Rules keyed by trigger and by their equality / membership conditions; immutable.

    Built from ``(id, rule)`` pairs in firing order; :meth:`matches` gives exactly the rules
    (of a trigger) that :func:`~protocol_lab.domain.rules.match_conditions` accepts, in that
    order, matching in full only the :meth:`candidates`.
    """

    def __init__(
        self, rules: Iterable[tuple[IdT, Rule]], *, reuse: RuleIndex[Any] | None = None
    ) -> None:
        """Index ``rules`` (id and rule), keeping their order within each trigger.

        The checks of rules that ``reuse`` (an earlier index) holds, the same objects, are
        taken from it rather than compiled again.
        """
        grouped: dict[Trigger, list[tuple[IdT, Rule]]] = {}
        for rule_id, rule in rules:
            grouped.setdefault(rule.trigger, []).append((rule_id, rule))
        earlier = reuse._compiled if reuse is not None else {}
        # by id(rule); each entry holds its rule, so no id is reused while the index lives
        self._compiled: dict[int, _Compiled] = {}
        self._triggers: dict[Trigger, _TriggerRules[IdT]] = {}
        for trigger, group in grouped.items():
            options = [_options(rule.conditions) for _, rule in group]
            demand = _demand(options)
            filed = self._triggers[trigger] = _TriggerRules()
            for (rule_id, rule), option in zip(group, options, strict=True):
                compiled = earlier.get(id(rule))
                if compiled is None or compiled.rule is not rule:
                    compiled = _Compiled(rule)
                self._compiled[id(rule)] = compiled
                filed.add(rule_id, rule, _choose_key(option, demand), compiled)

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
        return [entries[p] for p in found.positions(_Event(record, None, 0.0))]

    def matching(
        self,
        trigger: Trigger,
        record: Mapping[str, Any],
        *,
        previous: Mapping[str, Any] | None = None,
        now: float,
    ) -> list[tuple[IdT, Rule]]:
        """The rules of ``trigger`` whose conditions hold for the record, in order: the rules of
        :meth:`matches`, decided by their compiled checks alone, without the explanations."""
        found = self._triggers.get(trigger)
        if found is None:
            return []
        event = _Event(record, previous, now)
        entries = found.entries
        return [entries[position] for position in found.decide(event)]

    def matches(
        self,
        trigger: Trigger,
        record: Mapping[str, Any],
        *,
        previous: Mapping[str, Any] | None = None,
        now: float,
    ) -> list[tuple[IdT, Rule, MatchResult]]:
        """The rules of ``trigger`` whose conditions hold for the record, in order, each with
        its :class:`~protocol_lab.domain.rules.MatchResult` (the checks, for the record).

        Candidates are decided by their compiled checks; only the rules that match are matched
        again by the matcher, for the explanation.
        """
        out: list[tuple[IdT, Rule, MatchResult]] = []
        for rule_id, rule in self.matching(trigger, record, previous=previous, now=now):
            result = _match_valid(rule.conditions, record, previous, now)
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
            by_contains={name: len(positions) for name, positions in found.contains.items()},
        )
