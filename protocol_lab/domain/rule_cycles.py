"""Update loops: sets of update_field rules that can keep changing a ticket forever.

Only the ``update_field`` actions of enabled ``on_ticket_updated`` rules can take part: each
fires on a ticket update and makes another one. A rule with several update_field actions makes
one update per action, so each of its update_field actions is a member of the check of its own
(named by the rule's label and the action's position), with the rule's conditions, and each
leads to the next update of its rule, which follows it in the same firing. Member A
*triggers* member B when the update A makes can satisfy B's conditions:

- B's condition on the field A writes accepts A's value as a change (equality, ``in``,
  ``changed_to``, ``not_in``, ... as the matcher evaluates them; ``changed: false`` refuses);
- B requires no change of another field (A's update changes only its own field);
- on each field no rule of the loop writes, A's and B's conditions can hold together (equal
  constants, intersecting ``in`` sets; operators this check cannot decide count as compatible).

Conditions in groups are read as a weaker conjunction, so that no loop is missed: an ``all``
group adds its conditions to the rule's; an ``any`` group keeps only what every one of its
alternatives asks of a field they all name (the union of their sets of values, a change if all
require one) and is otherwise ignored. A value written from a template (``{{ticket.title}}``)
is only known at run time: it counts as a value that may differ at every write, which any
condition on the field may accept.

A loop is then a strongly connected set of members, refined to a fixpoint:

- a rule whose field every rule of the set writes to the same value settles: after the first
  write, writing it again changes nothing and fires nothing, so it cannot keep a loop going
  (this is also why a single rule is never a loop with itself);
- fields no rule of the set writes stay constant while it runs, so edges whose rules disagree
  on them are dropped and the strongly connected components are computed again.

The check follows one chain of updates at a time, each seen by the next rule as it was made. A
rule outside a loop that fires beside it and rewrites a field between two of its steps is not
modelled; at run time the engine's bound on chain depth stops such a chain.

Every step is polynomial: the graph is held as one bit set of successors and one of predecessors
per rule, components come from an iterative Kosaraju pass, and each refinement round only
shrinks the sets, so there are at most as many rounds as rules.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from protocol_lab.domain.errors import RuleCycleError

# The matcher's own operator, so that the check and the engine agree on every value.
from protocol_lab.domain.rules import Rule, Trigger, UpdateFieldAction, _compare, is_group
from protocol_lab.domain.tickets import DERIVED_FIELDS

__all__ = ["check_no_cycles", "find_update_cycles"]

# Every update moves these, to values unknown when rules are written: never used to keep
# rules apart, and never required to change or stay.
_VOLATILE_FIELDS: Final = DERIVED_FIELDS | {"updated_at", "last_activity_at"}


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class _Constraint:
    """What one rule's conditions ask of one field.

    ``values`` is the finite set of values allowed (from equality, ``in``, ``changed_to``;
    already filtered by the other operators), or None when any value may pass ``tests``, the
    operators kept for the matcher to evaluate.
    """

    field: str
    values: frozenset[Hashable] | None
    tests: tuple[tuple[str, Any], ...]
    needs_change: bool
    forbids_change: bool

    @property
    def satisfiable(self) -> bool:
        """Whether some update or value can meet it at all."""
        if self.needs_change and self.forbids_change:
            return False
        return self.values is None or bool(self.values)

    def admits(self, value: Any) -> bool:
        """Whether ``value`` passes every value operator (change aside)."""
        if self.values is not None:
            return _hashable(value) and value in self.values
        return _passes(self.tests, value)

    @property
    def excluded(self) -> frozenset[Hashable] | None:
        """The values refused, when refusing a few values (``not_in``) is all it does."""
        if self.values is not None or not self.tests:
            return None
        refused: set[Hashable] = set()
        for op, operand in self.tests:
            if op != "not_in" or not all(_hashable(v) for v in operand):
                return None
            refused.update(operand)
        return frozenset(refused)

    @property
    def key(self) -> tuple[str, frozenset[Hashable] | None, str]:
        """A hashable identity of the value operators, for caching."""
        return self.field, self.values, repr(self.tests)


def _passes(tests: tuple[tuple[str, Any], ...], value: Any) -> bool:
    # Value operators only: the previous value is never consulted.
    return all(_compare(op, value, operand, before=None) for op, operand in tests)


class _Written:
    """A value written from a template: unknown until run time, possibly new at every write."""

    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        self.label = label

    def __repr__(self) -> str:
        return f"<value of {self.label}>"


Ops = list[tuple[str, Any]]


def _ops(spec: Any) -> Ops:
    return list(spec.items()) if isinstance(spec, Mapping) else [("eq", spec)]


def _conjunction(conditions: Mapping[str, Any]) -> dict[str, Ops]:
    """The operators that every ticket matching ``conditions`` meets, field by field (groups
    weakened as the module says)."""
    ops: dict[str, Ops] = {}
    for name, spec in conditions.items():
        if not is_group(name, spec):
            ops.setdefault(name, []).extend(_ops(spec))
            continue
        members = [_conjunction(m) for m in spec if isinstance(m, Mapping)]
        if name == "all":
            for member in members:
                for field, more in member.items():
                    ops.setdefault(field, []).extend(more)
            continue
        shared = set(members[0]).intersection(*members[1:]) if members else set()
        for field in shared:
            alternatives = [_constraint(field, member[field]) for member in members]
            if all(c.values is not None for c in alternatives):
                union: set[Hashable] = set()
                for c in alternatives:
                    union |= c.values or set()
                ops.setdefault(field, []).append(("in", list(union)))
            if all(c.needs_change for c in alternatives):
                ops.setdefault(field, []).append(("changed", True))
    return ops


def _constraint(field: str, ops: Ops) -> _Constraint:
    values: set[Hashable] | None = None
    tests: list[tuple[str, Any]] = []
    needs_change = forbids_change = False
    for op, operand in ops:
        if op == "changed":
            needs_change |= operand is True
            forbids_change |= operand is False
            continue
        if op == "changed_to":
            needs_change = True
            op = "eq"
        if op == "eq" and _hashable(operand):
            allowed = {operand}
        elif op == "in" and all(_hashable(v) for v in operand):
            allowed = set(operand)
        else:
            tests.append((op, operand))
            continue
        values = allowed if values is None else values & allowed
    frozen_tests = tuple(tests)
    finite = None if values is None else frozenset(v for v in values if _passes(frozen_tests, v))
    return _Constraint(field, finite, frozen_tests, needs_change, forbids_change)


@dataclass(frozen=True, slots=True)
class _Updater:
    """An enabled on_ticket_updated update_field rule, compiled for the loop check."""

    label: str
    field: str
    value: str | _Written | None
    constraints: Mapping[str, _Constraint]
    change_fields: frozenset[str]
    rule: str  # the label of the rule it belongs to
    position: int  # its place among the rule's update_field actions

    def fires_on_writes_to(self, field: str) -> bool:
        """Whether some update of ``field`` alone may fire it (its value aside)."""
        constraint = self.constraints.get(field)
        return self.change_fields <= {field} and not (
            constraint is not None and constraint.forbids_change
        )


def _updaters(rules: Sequence[tuple[str, Rule]]) -> list[_Updater]:
    found: list[_Updater] = []
    for label, rule in rules:
        if not (rule.enabled and rule.trigger is Trigger.ON_TICKET_UPDATED):
            continue
        writes = [a for a in rule.steps if isinstance(a, UpdateFieldAction)]
        if not writes:
            continue
        constraints = {
            name: _constraint(name, ops)
            for name, ops in _conjunction(rule.conditions).items()
            if name not in _VOLATILE_FIELDS
        }
        if not all(c.satisfiable for c in constraints.values()):
            continue
        changing = frozenset(name for name, c in constraints.items() if c.needs_change)
        for k, action in enumerate(writes):
            member = label if len(writes) == 1 else f"{label} update {k + 1}"
            if action.templated:
                # Two writers of unknown, different values: never settles on its own.
                values: list[Any] = [_Written(member), _Written(member)]
            else:
                values = [action.constant]
            found.extend(
                _Updater(member, action.field, value, constraints, changing, label, k)
                for value in values
            )
    return sorted(found, key=lambda u: u.label)


def _union(masks: Iterable[int]) -> int:
    total = 0
    for mask in masks:
        total |= mask
    return total


def _bits(mask: int) -> Iterator[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


class _OpenConditions:
    """The conditions on one field without a finite set of values: those that only refuse a
    few values, indexed by the values they refuse, and the others, tested value by value."""

    __slots__ = ("others", "refused_by", "refusing_few")

    def __init__(self, field: str, rules: list[_Updater], members: list[int]) -> None:
        self.refusing_few = 0
        self.refused_by: dict[Hashable, int] = {}
        self.others: list[tuple[int, _Constraint]] = []
        for j in members:
            constraint = rules[j].constraints[field]
            refused = constraint.excluded
            if refused is None:
                self.others.append((j, constraint))
                continue
            self.refusing_few |= 1 << j
            for v in refused:
                self.refused_by[v] = self.refused_by.get(v, 0) | 1 << j

    def admitting(self, value: Hashable) -> int:
        """The conditions that ``value`` meets."""
        mask = self.refusing_few & ~self.refused_by.get(value, 0)
        for j, constraint in self.others:
            if constraint.admits(value):
                mask |= 1 << j
        return mask


class _TriggerGraph:
    """Who can trigger whom among the updaters, as bit sets indexed by rule position."""

    def __init__(self, updaters: list[_Updater]) -> None:
        self.rules = updaters
        self.all = (1 << len(updaters)) - 1
        # field -> written value -> writers
        self._writers: dict[str, dict[Any, int]] = {}
        # field -> rules with a condition on it
        self._constrained: dict[str, int] = {}
        # field -> value -> rules whose finite set of values on that field holds it
        self._by_value: dict[str, dict[Hashable, int]] = {}
        # field -> rules with a condition on it but no finite set of values
        self._open: dict[str, list[int]] = {}
        # rules that require no field to change
        self._unchanging = 0
        for i, rule in enumerate(updaters):
            bit = 1 << i
            by_value = self._writers.setdefault(rule.field, {})
            by_value[rule.value] = by_value.get(rule.value, 0) | bit
            if not rule.change_fields:
                self._unchanging |= bit
            for name, c in rule.constraints.items():
                self._constrained[name] = self._constrained.get(name, 0) | bit
                if c.values is None:
                    self._open.setdefault(name, []).append(i)
                    continue
                index = self._by_value.setdefault(name, {})
                for v in c.values:
                    index[v] = index.get(v, 0) | bit
        self._written_by = {f: _union(values.values()) for f, values in self._writers.items()}
        self._acceptors: dict[tuple[str, Any], int] = {}
        self._compat: dict[tuple[str, frozenset[Hashable] | None, str], int] = {}
        self._open_by_field: dict[str, _OpenConditions] = {}
        self._admitting: dict[tuple[str, Hashable], int] = {}
        self._fireable: dict[str, int] = {}
        self._finite: dict[str, int] = {}
        self._open_masks: dict[str, int] = {}
        self._triggered_by = [self._sources_of(rule) for rule in updaters]
        # A rule's next update follows its previous one in the same firing, whatever the
        # previous one's write fires.
        members: dict[tuple[str, int], int] = {}
        for i, rule in enumerate(updaters):
            members[rule.rule, rule.position] = members.get((rule.rule, rule.position), 0) | 1 << i
        self._next_in_rule = [members.get((u.rule, u.position + 1), 0) for u in updaters]
        self._previous_in_rule = [members.get((u.rule, u.position - 1), 0) for u in updaters]

    def written(self, scope: int) -> set[str]:
        """Fields some rule of ``scope`` writes."""
        return {f for f, writers in self._written_by.items() if writers & scope}

    def settled(self, scope: int) -> int:
        """``scope`` without the rules whose field all its writers set to one value, repeatedly."""
        while True:
            drop = 0
            for values in self._writers.values():
                present = [m & scope for m in values.values() if m & scope]
                if len(present) == 1:
                    drop |= present[0]
            if not drop:
                return scope
            scope &= ~drop

    def edges(self, scope: int) -> tuple[dict[int, int], dict[int, int]]:
        """Successor and predecessor bit sets within ``scope``, with the fields it does not
        write keeping rules apart."""
        constant = set(self._constrained) - self.written(scope)
        forward: dict[int, int] = {}
        backward: dict[int, int] = {}
        for i in _bits(scope):
            rule = self.rules[i]
            apart = self._apart_mask(rule, constant) & scope
            forward[i] = self._acceptors_of(rule.field, rule.value) & apart
            forward[i] |= self._next_in_rule[i] & scope
            backward[i] = self._triggered_by[i] & apart
            backward[i] |= self._previous_in_rule[i] & scope
        return forward, backward

    def _apart_mask(self, rule: _Updater, constant: set[str]) -> int:
        mask = self.all
        for name, c in rule.constraints.items():
            if name in constant:
                mask &= self._compatible_with(c)
        return mask

    def _compatible_with(self, c: _Constraint) -> int:
        """Rules whose condition on ``c``'s field one constant value can meet together with
        ``c`` (rules without a condition on it included)."""
        cached = self._compat.get(c.key)
        if cached is not None:
            return cached
        field = c.field
        mask = self.all & ~self._constrained.get(field, 0)
        index = self._by_value.get(field, {})
        if c.values is not None:
            for v in c.values:
                mask |= index.get(v, 0) | self._open_admitting(field, v)
        elif (refused := c.excluded) is not None:
            # Every finite condition allows some value outside the refused ones, except those
            # whose values are all refused: only rules holding a refused value are looked at.
            mask |= self._finite_on(field)
            for v in refused:
                for k in _bits(index.get(v, 0)):
                    held = self.rules[k].constraints[field].values
                    if held is not None and held <= refused:
                        mask &= ~(1 << k)
            mask |= self._open_on(field)
        else:
            for v, holders in index.items():
                if c.admits(v):
                    mask |= holders
            # Two open conditions: undecided, so compatible.
            mask |= self._open_on(field)
        self._compat[c.key] = mask
        return mask

    def _open_conditions(self, field: str) -> _OpenConditions:
        cached = self._open_by_field.get(field)
        if cached is None:
            cached = _OpenConditions(field, self.rules, self._open.get(field, []))
            self._open_by_field[field] = cached
        return cached

    def _open_admitting(self, field: str, value: Hashable) -> int:
        """The open conditions on ``field`` that ``value`` meets."""
        key = (field, value)
        cached = self._admitting.get(key)
        if cached is None:
            cached = self._open_conditions(field).admitting(value)
            self._admitting[key] = cached
        return cached

    def _fire_on_writes_to(self, field: str) -> int:
        """Rules with a condition on ``field`` that some update of it alone may fire."""
        cached = self._fireable.get(field)
        if cached is None:
            constrained = self._constrained.get(field, 0)
            cached = _union(
                1 << j for j in _bits(constrained) if self.rules[j].fires_on_writes_to(field)
            )
            self._fireable[field] = cached
        return cached

    def _open_on(self, field: str) -> int:
        """Rules with a condition on ``field`` but no finite set of values."""
        cached = self._open_masks.get(field)
        if cached is None:
            cached = _union(1 << j for j in self._open.get(field, []))
            self._open_masks[field] = cached
        return cached

    def _finite_on(self, field: str) -> int:
        """Rules with a finite set of values on ``field``."""
        cached = self._finite.get(field)
        if cached is None:
            cached = _union(self._by_value.get(field, {}).values())
            self._finite[field] = cached
        return cached

    def _acceptors_of(self, field: str, value: Any) -> int:
        """Rules that an update setting ``field`` to ``value`` may fire."""
        key = (field, value)
        cached = self._acceptors.get(key)
        if cached is not None:
            return cached
        if isinstance(value, _Written):
            meeting = self._constrained.get(field, 0)
        else:
            meeting = self._by_value.get(field, {}).get(value, 0)
            meeting |= self._open_admitting(field, value)
        cached = self._unchanging & ~self._constrained.get(field, 0)
        cached |= meeting & self._fire_on_writes_to(field)
        self._acceptors[key] = cached
        return cached

    def _sources_of(self, rule: _Updater) -> int:
        """Rules whose update may fire ``rule``."""
        mask = 0
        for field, values in self._writers.items():
            if not rule.fires_on_writes_to(field):
                continue
            constraint = rule.constraints.get(field)
            if constraint is None:
                mask |= self._written_by[field]
                continue
            # A templated value may be whatever the condition accepts.
            mask |= _union(m for v, m in values.items() if isinstance(v, _Written))
            if constraint.values is not None:
                mask |= _union(values.get(v, 0) for v in constraint.values)
            elif (refused := constraint.excluded) is not None:
                mask |= self._written_by[field] & ~_union(values.get(v, 0) for v in refused)
            else:
                mask |= _union(m for v, m in values.items() if constraint.admits(v))
        return mask


def _components(scope: int, forward: dict[int, int], backward: dict[int, int]) -> list[int]:
    """Strongly connected components of ``scope`` (Kosaraju, iterative, on bit sets)."""
    unvisited = scope
    finished: list[int] = []
    for start in _bits(scope):
        if not unvisited >> start & 1:
            continue
        unvisited &= ~(1 << start)
        stack = [start]
        while stack:
            node = stack[-1]
            ahead = forward[node] & unvisited
            if ahead:
                nxt = (ahead & -ahead).bit_length() - 1
                unvisited &= ~(1 << nxt)
                stack.append(nxt)
            else:
                finished.append(stack.pop())
    unassigned = scope
    components = []
    for root in reversed(finished):
        if not unassigned >> root & 1:
            continue
        unassigned &= ~(1 << root)
        component = 1 << root
        frontier = [root]
        while frontier:
            reached = backward[frontier.pop()] & unassigned
            unassigned &= ~reached
            component |= reached
            frontier.extend(_bits(reached))
        components.append(component)
    return components


def _path(start: int, goal: int, forward: dict[int, int], scope: int) -> list[int]:
    """A shortest path of rules from ``start`` to another rule ``goal`` within ``scope``, which
    is strongly connected (breadth first)."""
    parent = {start: start}
    seen = 1 << start
    frontier = [start]
    while goal not in parent:
        if not frontier:
            raise AssertionError("no path between two rules of a strongly connected set")
        following = []
        for node in frontier:
            for nxt in _bits(forward[node] & scope & ~seen):
                parent[nxt] = node
                seen |= 1 << nxt
                following.append(nxt)
        frontier = following
    path = [goal]
    while path[-1] != start:
        path.append(parent[path[-1]])
    return path[::-1]


def _witness(graph: _TriggerGraph, loop: int, forward: dict[int, int]) -> list[str]:
    """A concrete round of the loop: from its first rule to a rule writing the same field to
    another value, and back."""
    first = next(_bits(loop))
    rule = graph.rules[first]
    rival = next(
        j
        for j in _bits(loop)
        if graph.rules[j].field == rule.field and graph.rules[j].value != rule.value
    )
    there = _path(first, rival, forward, loop)
    back = _path(rival, first, forward, loop)
    return [graph.rules[i].label for i in [*there, *back[1:]]]


def find_update_cycles(rules: Sequence[tuple[str, Rule]]) -> list[list[str]]:
    """Loops of enabled update_field rules that could keep changing a ticket forever.

    ``rules`` are ``(label, rule)`` pairs. Each loop is reported once, as a closed walk of
    labels (first label repeated at the end) through two rules that write the same field to
    different values; loops are ordered by their first label.
    """
    graph = _TriggerGraph(_updaters(rules))
    loops: list[list[str]] = []
    pending = [graph.all]
    while pending:
        scope = graph.settled(pending.pop())
        if not scope:
            continue
        forward, backward = graph.edges(scope)
        for component in _components(scope, forward, backward):
            if component == scope:
                loops.append(_witness(graph, component, forward))
            elif component & (component - 1):
                pending.append(component)
    return sorted(loops)


def check_no_cycles(rules: Sequence[tuple[str, Rule]]) -> None:
    """Raise :class:`RuleCycleError` naming a concrete loop of rules, if there is any."""
    cycles = find_update_cycles(rules)
    if cycles:
        raise RuleCycleError(cycles[0])
