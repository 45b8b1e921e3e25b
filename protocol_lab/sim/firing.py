"""Rule firing: the service's rules, matched with the service's matcher, on simulated tickets.

Rules come from the scenario (by default ``data/rules/default.yaml``) as
:class:`protocol_lab.domain.Rule`; every decision goes through
:func:`protocol_lab.domain.match_conditions`, so the simulator fires what the service would:

- conditions, ``all`` / ``any`` groups included, are the matcher's; a rule with several
  ``actions`` runs them in order each time it fires (one execution of the rule);
- ``on_ticket_created`` rules are all matched against the new ticket, then their actions run in
  rule order; ``on_ticket_updated`` rules likewise after every change (with the previous record,
  for ``changed`` / ``changed_to``); update_field actions chain, up to the scenario's limit;
- ``scheduled`` rules run every ``schedule_interval_s`` (default: the scenario's interval), or at
  the times of their ``schedule_cron`` counted from the scenario's start (UTC), and fire
  once per ticket per version of the ticket (the service starts one workflow per rule and ticket,
  and a fired ticket must change before it can match again).

Three exact shortcuts keep this cheap. Event rules are matched through a
:class:`~protocol_lab.domain.rule_index.RuleIndex`, which matches in full only the rules whose
equality or membership condition the ticket can satisfy. The matcher is pure, so for rules that
read no derived field its verdict is memoised on the values of the fields the rules read. For
scheduled rules whose derived conditions can only become true as time passes (``gt``/``gte`` or
a bare threshold on ``idle_hours``/``age_hours``), a ticket is matched at the first tick at
which it can hold, not at every tick; other scheduled rules match every candidate ticket at
every tick.
"""

from __future__ import annotations

import heapq
import operator
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import simpy

from protocol_lab.domain.cron import next_fire
from protocol_lab.domain.rule_index import Predicate, RuleIndex, compile_conditions
from protocol_lab.domain.rules import (
    Rule,
    SendNotificationAction,
    StartWorkflowAction,
    Trigger,
    UpdateFieldAction,
    condition_fields,
)
from protocol_lab.domain.templates import MAX_RENDERED_CHARS, render_template, template_values
from protocol_lab.domain.tickets import DERIVED_FIELDS
from protocol_lab.sim.tickets import Ticket

if TYPE_CHECKING:
    from protocol_lab.sim.model import ServiceDeskModel

__all__ = ["RuleEngine"]

_UNMEMOISABLE = frozenset({"id", "created_at", "updated_at", "last_activity_at", "description"})


@dataclass(slots=True)
class _Group:
    """Rules of one trigger, indexed, with the memo of their verdicts when it is exact."""

    trigger: Trigger
    rules: list[tuple[int, Rule]]
    getter: Callable[[Mapping[str, Any]], Any] | None
    memo: dict[Any, tuple[int, ...]] = field(default_factory=dict)
    index: RuleIndex[int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = RuleIndex(self.rules)


@dataclass(slots=True)
class _Scheduled:
    """A scheduled rule with its static and time-dependent conditions."""

    index: int
    rule: Rule
    static: dict[str, Any]
    thresholds: list[tuple[str, float]] | None  # (derived field, hours) when monotone
    heap: list[tuple[float, int, Ticket, int]] = field(default_factory=list)
    always: dict[int, Ticket] = field(default_factory=dict)
    fired: dict[int, int] = field(default_factory=dict)
    memo: dict[Any, bool] = field(default_factory=dict)
    getter: Callable[[Mapping[str, Any]], Any] | None = None
    holds: Predicate = field(init=False)
    static_holds: Predicate = field(init=False)

    def __post_init__(self) -> None:
        self.holds = compile_conditions(self.rule.conditions)
        self.static_holds = compile_conditions(self.static)


def _fields_getter(names: Sequence[str]) -> Callable[[Mapping[str, Any]], Any] | None:
    if any(n in DERIVED_FIELDS or n in _UNMEMOISABLE or "." in n for n in names):
        return None
    if not names:
        return lambda record: ()
    return operator.itemgetter(*names)


def _monotone_thresholds(derived: Mapping[str, Any]) -> list[tuple[str, float]] | None:
    out: list[tuple[str, float]] = []
    for name, spec in derived.items():
        if isinstance(spec, bool):
            return None
        if isinstance(spec, int | float):
            out.append((name, float(spec)))
            continue
        if not isinstance(spec, Mapping) or not spec:
            return None
        for op, value in spec.items():
            if op not in ("gt", "gte") or isinstance(value, bool):
                return None
            out.append((name, float(value)))
    return out


def _stamp(record: Mapping[str, Any], derived: str) -> float | None:
    """The timestamp a derived field counts from (as the matcher computes it)."""
    if derived == "idle_hours":
        stamp = record.get("last_activity_at")
        if stamp is None:
            stamp = record.get("updated_at") or record.get("created_at")
    else:
        stamp = record.get("created_at")
    return float(stamp) if isinstance(stamp, int | float) else None


def _read_by(rules: Sequence[tuple[int, Rule]]) -> list[str]:
    """The fields the conditions of ``rules`` read, groups included."""
    return sorted({f for _, r in rules for f in condition_fields(r.conditions)})


class RuleEngine:
    """Matches and fires a rule set on simulated tickets; counts executions per rule."""

    def __init__(self, rules: Sequence[Rule], *, model: ServiceDeskModel) -> None:
        self.rules = list(rules)
        self.model = model
        self.executions = [0] * len(self.rules)
        self.truncated_chains = 0
        self.chain_limit = model.scenario.update_chain_limit
        created = [
            (i, r)
            for i, r in enumerate(self.rules)
            if r.enabled and r.trigger is Trigger.ON_TICKET_CREATED
        ]
        updated = [
            (i, r)
            for i, r in enumerate(self.rules)
            if r.enabled and r.trigger is Trigger.ON_TICKET_UPDATED
        ]
        self.created = _Group(Trigger.ON_TICKET_CREATED, created, _fields_getter(_read_by(created)))
        self.updated = _Group(Trigger.ON_TICKET_UPDATED, updated, _fields_getter(_read_by(updated)))
        self.scheduled: list[_Scheduled] = []
        for i, rule in enumerate(self.rules):
            if not rule.enabled or rule.trigger is not Trigger.SCHEDULED:
                continue
            # An entry is static when it reads no derived field (a group may read several).
            static = {
                k: v
                for k, v in rule.conditions.items()
                if not condition_fields({k: v}) & DERIVED_FIELDS
            }
            derived = {k: v for k, v in rule.conditions.items() if k not in static}
            sched = _Scheduled(i, rule, static, _monotone_thresholds(derived))
            sched.getter = _fields_getter(sorted(condition_fields(static)))
            self.scheduled.append(sched)
        self._actions = [self._compile(rule) for rule in self.rules]

    def _compile(self, rule: Rule) -> Callable[[Ticket, int], None]:
        """The actions of a rule, in order, as one function of (ticket, chain depth)."""
        steps = [self._compile_action(rule, action) for action in rule.steps]
        if len(steps) == 1:
            return steps[0]

        def in_order(ticket: Ticket, depth: int) -> None:
            for step in steps:
                step(ticket, depth)

        return in_order

    def _compile_action(
        self, rule: Rule, action: StartWorkflowAction | SendNotificationAction | UpdateFieldAction
    ) -> Callable[[Ticket, int], None]:
        """One action of a rule as a function of (ticket, chain depth)."""
        model = self.model
        if isinstance(action, StartWorkflowAction):
            return model.workflow_starter(
                action.workflow_name, queue=action.task_queue, trigger=rule.trigger_type_of(action)
            )
        if isinstance(action, SendNotificationAction):
            queue = model.job_queue(action.channel)
            return lambda ticket, depth: queue.submit()
        desk = model.desk
        if action.value is not None and action.templated:
            template = action.value
            name = rule.name
            limit = action.max_chars or MAX_RENDERED_CHARS

            def update_templated(ticket: Ticket, depth: int) -> None:
                values = template_values(ticket.record, rule_name=name)
                value = render_template(template, values, limit=limit)
                desk.update(ticket, {action.field: value}, depth=depth + 1)

            return update_templated
        fields = {action.field: action.constant}

        def update_field(ticket: Ticket, depth: int) -> None:
            desk.update(ticket, fields, depth=depth + 1)

        return update_field

    # -- matching -------------------------------------------------------------------------

    def _match(
        self, group: _Group, record: Mapping[str, Any], previous: Mapping[str, Any] | None
    ) -> tuple[int, ...]:
        getter = group.getter
        if getter is not None:
            key = getter(record) if previous is None else (getter(record), getter(previous))
            hit = group.memo.get(key)
            if hit is None:
                now = self.model.env.now
                hit = group.memo[key] = self._evaluate(group, record, previous, now)
            return hit
        return self._evaluate(group, record, previous, self.model.env.now)

    @staticmethod
    def _evaluate(
        group: _Group, record: Mapping[str, Any], previous: Mapping[str, Any] | None, now: float
    ) -> tuple[int, ...]:
        matched = group.index.matching(group.trigger, record, previous=previous, now=now)
        return tuple(i for i, _ in matched)

    def _static_holds(self, sched: _Scheduled, record: Mapping[str, Any]) -> bool:
        now = self.model.env.now
        if sched.getter is None:
            return sched.static_holds(record, None, now)
        key = sched.getter(record)
        hit = sched.memo.get(key)
        if hit is None:
            hit = sched.memo[key] = sched.static_holds(record, None, now)
        return hit

    # -- events ---------------------------------------------------------------------------

    def on_created(self, ticket: Ticket) -> None:
        """A ticket was opened: fire the matching on_ticket_created rules."""
        if self.created.rules:
            executions = self.executions
            actions = self._actions
            for i in self._match(self.created, ticket.record, None):
                executions[i] += 1
                actions[i](ticket, 0)
        if self.scheduled:
            self._watch(ticket)

    def on_updated(self, ticket: Ticket, previous: Mapping[str, Any], *, depth: int) -> None:
        """A ticket changed: fire the matching on_ticket_updated rules."""
        if self.updated.rules:
            if depth >= self.chain_limit:
                self.truncated_chains += 1
            else:
                for i in self._match(self.updated, ticket.record, previous):
                    self.fire(i, ticket, depth=depth)
        if self.scheduled:
            self._watch(ticket)

    def fire(self, index: int, ticket: Ticket, *, depth: int) -> None:
        """Run a rule's action on a ticket."""
        self.executions[index] += 1
        self._actions[index](ticket, depth)

    # -- scheduled rules ------------------------------------------------------------------

    def _watch(self, ticket: Ticket) -> None:
        """Index a new or changed ticket for the scheduled rules."""
        record = ticket.record
        for sched in self.scheduled:
            if not self._static_holds(sched, record):
                sched.always.pop(ticket.number, None)
                continue
            if sched.thresholds is None:
                sched.always[ticket.number] = ticket
                continue
            due = 0.0
            for name, hours in sched.thresholds:
                stamp = _stamp(record, name)
                if stamp is None:
                    due = float("inf")
                    break
                due = max(due, stamp + hours * 3600.0)
            if due != float("inf"):
                heapq.heappush(sched.heap, (due, ticket.number, ticket, ticket.version))

    def _next_run(self, rule: Rule, after: float) -> float:
        """The simulated time of a scheduled rule's first run after ``after``."""
        if rule.schedule_cron is not None:
            start = self.model.scenario.start
            due = next_fire(rule.schedule_cron, start + timedelta(seconds=after))
            return (due - start).total_seconds()
        return after + (rule.schedule_interval_s or self.model.scenario.scheduler_interval_s)

    def scheduler(self, env: simpy.Environment, *, until: float) -> Generator[Any, Any, None]:
        """Process: run every scheduled rule at its interval or cron times until ``until``."""
        nexts = [self._next_run(sched.rule, 0.0) for sched in self.scheduled]
        if not self.scheduled:
            return
        while True:
            tick = min(nexts)
            if tick > until:
                return
            yield env.timeout(tick - env.now)
            for k, sched in enumerate(self.scheduled):
                if nexts[k] <= env.now:
                    self._tick(sched)
                    nexts[k] = self._next_run(sched.rule, nexts[k])

    def _tick(self, sched: _Scheduled) -> None:
        now = self.model.env.now
        due: list[Ticket] = []
        heap = sched.heap
        while heap and heap[0][0] <= now:
            _, _, ticket, version = heapq.heappop(heap)
            if ticket.version == version:
                due.append(ticket)
        due.extend(sched.always.values())
        for ticket in due:
            version = ticket.version
            if sched.fired.get(ticket.number) == version:
                continue
            if sched.holds(ticket.record, None, now):
                sched.fired[ticket.number] = version
                self.fire(sched.index, ticket, depth=0)
            elif sched.thresholds is not None and ticket.version == version:
                heapq.heappush(heap, (now + 1e-9, ticket.number, ticket, version))
