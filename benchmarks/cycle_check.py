"""Time of the update-loop check of rule sets (``protocol_lab.domain.check_no_cycles``).

The service runs this check on every rule creation, PATCH and toggle, over every enabled rule.
Shapes, each at ``--sizes`` rules (all ``on_ticket_updated`` ``update_field`` rules):

- routing, one person: "category cN -> set assignee alice" (no loop);
- routing, a person each: "category cN -> set assignee agentN" (no loop);
- routing, unless boss: the same, unless the assignee is the boss (``not_in`` on the written
  field; no loop);
- chain: "category cN -> set category cN+1" (no loop: each rule triggers the next one only);
- closed chain: the chain plus "category cLAST -> set category c0" (one loop through all);
- agreeing, all-to-all: no conditions, "set assignee alice": every rule triggers every rule, and
  the set settles (the densest graph that is not a loop);
- fighting, all-to-all: no conditions, "set assignee agentN": every rule triggers every rule
  and they overwrite each other (the densest graph, a loop);
- mixed operators: half the rules require a requester, half exclude one, all flip the status
  between open and pending (a loop; every pair goes through the matcher's ``not_in``);
- two actions, grouped: "any of category cN or dN -> set assignee alice, then status open"
  (each rule is two members of the check; no loop);
- two actions, fighting: "category net -> set assignee agentN, then status open" (a loop).

Building the rules is not timed; each figure is the best of ``--repeat`` runs.

Run: ``.venv/bin/python benchmarks/cycle_check.py [--sizes 10 11 100 500 5000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from protocol_lab.domain import Rule, RuleCycleError, check_no_cycles

Shape = Callable[[int], list[tuple[str, Rule]]]


def _two(name: str, conditions: dict[str, Any], assignee: str) -> tuple[str, Rule]:
    rule = Rule.model_validate(
        {
            "name": name,
            "trigger": "on_ticket_updated",
            "conditions": conditions,
            "actions": [
                {"type": "update_field", "field": "assignee", "value": assignee},
                {"type": "update_field", "field": "status", "value": "open"},
            ],
        }
    )
    return name, rule


def _rule(name: str, conditions: dict[str, Any], field: str, value: str) -> tuple[str, Rule]:
    rule = Rule.model_validate(
        {
            "name": name,
            "trigger": "on_ticket_updated",
            "conditions": conditions,
            "action": {"type": "update_field", "field": field, "value": value},
        }
    )
    return name, rule


def routing_one_person(n: int) -> list[tuple[str, Rule]]:
    """Category -> the same assignee."""
    return [_rule(f"route c{i}", {"category": f"c{i}"}, "assignee", "alice") for i in range(n)]


def routing_person_each(n: int) -> list[tuple[str, Rule]]:
    """Category -> an assignee of its own."""
    return [_rule(f"route c{i}", {"category": f"c{i}"}, "assignee", f"agent{i}") for i in range(n)]


def routing_unless_boss(n: int) -> list[tuple[str, Rule]]:
    """Category -> an assignee of its own, unless the boss has the ticket."""
    return [
        _rule(
            f"route c{i}",
            {"category": f"c{i}", "assignee": {"not_in": ["boss"]}},
            "assignee",
            f"agent{i}",
        )
        for i in range(n)
    ]


def chain(n: int) -> list[tuple[str, Rule]]:
    """Each category moves on to the next one."""
    return [_rule(f"step {i}", {"category": f"c{i}"}, "category", f"c{i + 1}") for i in range(n)]


def closed_chain(n: int) -> list[tuple[str, Rule]]:
    """The chain, whose last step goes back to the first category."""
    return [*chain(n - 1), _rule("back", {"category": f"c{n - 1}"}, "category", "c0")]


def agreeing(n: int) -> list[tuple[str, Rule]]:
    """Unconditional rules that all set the same value."""
    return [_rule(f"assign {i}", {}, "assignee", "alice") for i in range(n)]


def fighting(n: int) -> list[tuple[str, Rule]]:
    """Unconditional rules that each set a value of their own."""
    return [_rule(f"assign {i}", {}, "assignee", f"agent{i}") for i in range(n)]


def mixed_operators(n: int) -> list[tuple[str, Rule]]:
    """Half the rules name a requester, half exclude one; all flip the status back and forth,
    so every pair of them is checked with the matcher's own operators."""
    rules = []
    for i in range(n):
        who: Any = f"u{i}" if i % 2 else {"not_in": [f"u{i}"]}
        status, value = ("open", "pending") if i % 4 < 2 else ("pending", "open")
        rules.append(_rule(f"flip {i}", {"requester": who, "status": status}, "status", value))
    return rules


def two_actions_grouped(n: int) -> list[tuple[str, Rule]]:
    """Two updates per rule, on either of two categories, to the same values."""
    return [
        _two(f"route {i}", {"any": [{"category": f"c{i}"}, {"category": f"d{i}"}]}, "alice")
        for i in range(n)
    ]


def two_actions_fighting(n: int) -> list[tuple[str, Rule]]:
    """Two updates per rule, the assignee a rule's own."""
    return [_two(f"fight {i}", {"all": [{"category": "net"}]}, f"agent{i}") for i in range(n)]


SHAPES: dict[str, Shape] = {
    "routing, one person": routing_one_person,
    "routing, a person each": routing_person_each,
    "routing, unless boss": routing_unless_boss,
    "chain": chain,
    "closed chain": closed_chain,
    "agreeing, all-to-all": agreeing,
    "fighting, all-to-all": fighting,
    "mixed operators": mixed_operators,
    "two actions, grouped": two_actions_grouped,
    "two actions, fighting": two_actions_fighting,
}


def time_check(rules: list[tuple[str, Rule]], repeat: int) -> tuple[float, str]:
    """Best wall time of ``check_no_cycles`` over ``repeat`` runs, and its verdict."""
    best = float("inf")
    verdict = "accepted"
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            check_no_cycles(rules)
            verdict = "accepted"
        except RuleCycleError as exc:
            verdict = f"loop of {len(set(exc.cycle))} rules"
        best = min(best, time.perf_counter() - start)
    return best, verdict


def main() -> None:
    """Print one line per shape and size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 11, 100, 500, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'shape':<24}{'rules':>7}{'seconds':>11}  verdict")
    for name, shape in SHAPES.items():
        for size in args.sizes:
            seconds, verdict = time_check(shape(size), args.repeat)
            print(f"{name:<24}{size:>7}{seconds:>11.4f}  {verdict}", flush=True)


if __name__ == "__main__":
    main()
