"""The SimPy process of a state model: cases arrive, move through states, and end.

:func:`simulate_states` runs a scenario with a ``states`` section
(:class:`~protocol_lab.sim.state_model.StateModel`): arrivals come from the scenario's streams
(:func:`~protocol_lab.sim.arrivals.iter_arrivals`, one stream per priority), each case is a
process that, in each state, draws its next state and group and its dwell (waiting first for a
slot of its group in a work state whose group has a capacity), and the run is recorded as
timelines in the foreign vocabulary, the same events :meth:`Timelines.from_log` makes of a state
log (``activity_started`` / ``activity_completed`` per state with the group as ``task_queue``,
``workflow_completed`` when a case ends), with each case's ``priority`` as an attribute, so the
analyses of a log apply to a simulated one unchanged.

Without ``drain`` the run stops at the horizon, as an export stops at its cut: cases still open
then stay open, so a simulated log and the log it was fitted from are observed alike.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import simpy

from protocol_lab.analytics import Timelines
from protocol_lab.analytics.vocabulary import FOREIGN_SCHEMA
from protocol_lab.domain.durations import DurationModel
from protocol_lab.domain.errors import ScenarioError
from protocol_lab.sim.arrivals import iter_arrivals
from protocol_lab.sim.scenario import Scenario
from protocol_lab.sim.state_model import StateModel, StateRouting

__all__ = ["simulate_states"]

Node = tuple[str, str | None, int]
"""(state, group, visit)."""


@dataclass(frozen=True, slots=True)
class _Choices:
    """Where a node leads: (to_state, to_group, dwell key) with cumulative probabilities."""

    targets: tuple[tuple[str | None, str | None, str], ...]
    cumulative: list[float]

    def draw(self, u: float) -> tuple[str | None, str | None, str]:
        """The target a uniform draw ``u`` picks."""
        return self.targets[min(bisect_right(self.cumulative, u), len(self.targets) - 1)]


def _cumulative(weights: list[float]) -> list[float]:
    total = sum(weights)
    return [float(c) / total for c in np.cumsum(weights)]


def _choices(routing: StateRouting) -> dict[Node, _Choices]:
    grouped: dict[Node, list[tuple[tuple[str | None, str | None, str], float]]] = {}
    for t in routing.transitions:
        grouped.setdefault((t.state, t.group, t.visit), []).append(
            ((t.to_state, t.to_group, t.dwell), t.probability)
        )
    return {
        node: _Choices(
            targets=tuple(target for target, _ in pairs),
            cumulative=_cumulative([p for _, p in pairs]),
        )
        for node, pairs in grouped.items()
    }


def _entries(routing: StateRouting) -> tuple[list[tuple[str, str | None]], list[float]]:
    return (
        [(e.state, e.group) for e in routing.entries],
        _cumulative([e.probability for e in routing.entries]),
    )


class _Router:
    """Looks a node up in a priority's routing, else the pooled default; a node neither knows
    (a path the simulation found and the log did not show) takes the default's node of the
    same state with the nearest lower visit, same group first, then any group."""

    def __init__(self, model: StateModel) -> None:
        self.default = _choices(model.default)
        self.own = {name: _choices(r) for name, r in model.priorities.items()}
        self._near: dict[Node, Node | None] = {}
        self.work = frozenset(model.work_states)
        self._entries = {name: _entries(r) for name, r in model.priorities.items() if r.entries}
        self._default_entries = _entries(model.default)

    def entry(self, priority: str, u: float) -> tuple[str, str | None]:
        """Where a case of ``priority`` begins, for a uniform draw ``u``."""
        states, cumulative = self._entries.get(priority, self._default_entries)
        return states[min(bisect_right(cumulative, u), len(states) - 1)]

    def _nearest(self, node: Node) -> Node | None:
        if node not in self._near:
            state, group, visit = node
            known = [n for n in self.default if n[0] == state and n[2] <= visit]
            known.sort(key=lambda n: (n[1] == group, n[2]), reverse=True)
            self._near[node] = known[0] if known else None
        return self._near[node]

    def choices(self, priority: str, node: Node) -> _Choices | None:
        own = self.own.get(priority)
        if own is not None and node in own:
            return own[node]
        if node in self.default:
            return self.default[node]
        near = self._nearest(node)
        return self.default[near] if near is not None else None


class _Recorder:
    """Events as column lists (seconds from the start), turned into a frame once."""

    def __init__(self) -> None:
        self.case: list[str] = []
        self.event: list[str] = []
        self.at: list[float] = []
        self.step: list[str | None] = []
        self.group: list[str | None] = []
        self.detail: list[str | None] = []

    def add(
        self,
        case: str,
        event: str,
        at: float,
        step: str | None = None,
        group: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.case.append(case)
        self.event.append(event)
        self.at.append(at)
        self.step.append(step)
        self.group.append(group)
        self.detail.append(detail)


def _case(
    env: simpy.Environment,
    case: str,
    priority: str,
    model: StateModel,
    router: _Router,
    slots: dict[str, simpy.Resource],
    dwells: dict[str, DurationModel],
    rng: np.random.Generator,
    out: _Recorder,
) -> Generator[Any, Any, None]:
    state, group = router.entry(priority, rng.random())
    work = router.work
    visits: dict[str, int] = {}
    out.add(case, "workflow_started", env.now, group=group)
    for _ in range(model.max_steps):
        visits[state] = visits.get(state, 0) + 1
        node = (state, group, min(visits[state], model.max_visits))
        out.add(case, "activity_started", env.now, state, group)
        options = router.choices(priority, node)
        if options is None:  # a state the log never left: the case ends in it
            out.add(case, "activity_completed", env.now, state, group)
            break
        to_state, to_group, dwell = options.draw(rng.random())
        hold = dwells[dwell].sample(rng)
        slot = slots.get(group) if group is not None and state in work else None
        if slot is not None:
            with slot.request() as granted:
                yield granted
                yield env.timeout(hold)
        else:
            yield env.timeout(hold)
        out.add(case, "activity_completed", env.now, state, group)
        if to_state is None:
            break
        state, group = to_state, to_group
    out.add(case, "workflow_completed", env.now, group=group, detail=model.end_state)


def _source(
    env: simpy.Environment,
    scenario: Scenario,
    model: StateModel,
    rng: np.random.Generator,
    out: _Recorder,
    priorities: dict[str, str],
) -> Generator[Any, Any, None]:
    router = _Router(model)
    slots = {g: simpy.Resource(env, capacity=c) for g, c in model.capacities.items()}
    names = [s.category for s in scenario.arrivals.streams]
    n = 0
    for block in iter_arrivals(scenario, rng):
        for t, k in zip(block.times.tolist(), block.stream.tolist(), strict=True):
            yield env.timeout(t - env.now)
            case = f"SIM{n:08d}"
            n += 1
            priorities[case] = names[k]
            env.process(_case(env, case, names[k], model, router, slots, model.dwells, rng, out))


def simulate_states(scenario: Scenario, *, seed: int | None = None) -> Timelines:
    """Run a scenario's state model (see the module docstring) and return its timelines.

    ``seed`` overrides the scenario's; one seed gives one answer. Events carry the foreign
    vocabulary; :attr:`Timelines.workflows` has each case's ``priority``.
    """
    model = scenario.states
    if model is None:
        raise ScenarioError(f"scenario {scenario.name!r} has no states section to simulate")
    rng = np.random.default_rng(scenario.seed if seed is None else seed)
    env = simpy.Environment()
    out = _Recorder()
    priorities: dict[str, str] = {}
    env.process(_source(env, scenario, model, rng, out, priorities))
    env.run(until=None if scenario.drain else scenario.horizon_s)
    origin = scenario.start
    at_us = (np.asarray(out.at, dtype=np.float64) * 1e6).round().astype(np.int64)
    events = pl.DataFrame(
        {
            "workflow_id": out.case,
            "workflow_name": [model.workflow_name] * len(out.case),
            "task_queue": out.group,
            "trigger_type": [None] * len(out.case),
            "event": out.event,
            "timestamp": pl.Series(at_us, dtype=pl.Int64),
            "detail": out.detail,
            "step": out.step,
        },
        schema_overrides={"task_queue": pl.String, "trigger_type": pl.String},
    ).with_columns(
        (pl.lit(origin) + pl.duration(microseconds=pl.col("timestamp"))).alias("timestamp"),
        pl.lit(None, dtype=pl.Int32).alias("attempt"),
        pl.lit(None, dtype=pl.String).alias("outcome"),
        pl.lit(None, dtype=pl.String).alias("actor"),
    )
    events = events.select(pl.col(name).cast(dtype) for name, dtype in FOREIGN_SCHEMA.items()).sort(
        "workflow_id", "timestamp", maintain_order=True
    )
    attributes = pl.DataFrame(
        {"workflow_id": list(priorities), "priority": list(priorities.values())},
        schema={"workflow_id": pl.String, "priority": pl.String},
    )
    return Timelines.from_frame(events, attributes, check=False, vocabulary="foreign")
