"""The state model of a scenario: cases that move through a log's own states.

A scenario with a ``states`` section simulates an ITSM tool's cases rather than protocol-lab's
workflow plans (:func:`protocol_lab.sim.state_flow.simulate_states` runs it;
:func:`protocol_lab.sim.log_calibration.calibrate_from_log` fits it from a foreign log). A case
arrives on the scenario's arrival stream of its priority (the stream's ``category`` is the
priority's name in the log), enters a first state held by a group, and from then on, in each
state it draws where it goes next and how long it stays before it goes:

- a *node* is a state, the group that holds the case in it, and the how-many-th visit of the
  case to that state this is (visits above ``max_visits`` count as the last): the visit number
  lets a loop (a wait, a reassignment, a reopen) be likelier the first time than the second,
  as logs show, where a plain Markov chain would repeat it geometrically;
- a *transition* leaves a node for another state and group (or ends the case) with a
  probability, after a dwell whose model is named in :attr:`StateModel.dwells`: the dwell
  depends on where the case goes next (a semi-Markov process), since a resolution that is
  reopened lasts hours while one that closes lasts days;
- ``priorities`` hold each priority's own entries and transitions; a node a priority has too
  few cases for falls back to ``default`` (all priorities pooled);
- in a state of ``work_states`` the case needs one of the ``capacities`` slots of its group
  for the whole dwell (a group absent from ``capacities`` has no limit).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocol_lab.domain.durations import DurationModel

__all__ = ["StateEntry", "StateModel", "StateRouting", "StateTransition"]

_TOLERANCE = 1e-6


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StateEntry(_Frozen):
    """Where cases begin: a state, the group holding them in it, and the share that begin there."""

    state: str = Field(min_length=1)
    group: str | None = None
    probability: float = Field(gt=0, le=1)


class StateTransition(_Frozen):
    """From a node (``state``, ``group``, ``visit``) to ``to_state`` held by ``to_group`` (or,
    with ``to_state`` null, the end of the case) with ``probability``, after a dwell in the
    node drawn from the model ``dwell`` names in :attr:`StateModel.dwells`."""

    state: str = Field(min_length=1)
    group: str | None = None
    visit: int = Field(ge=1)
    to_state: str | None = None
    to_group: str | None = None
    probability: float = Field(gt=0, le=1)
    dwell: str = Field(min_length=1)


class StateRouting(_Frozen):
    """The entries and transitions of one priority (or of all, pooled)."""

    entries: tuple[StateEntry, ...] = ()
    transitions: tuple[StateTransition, ...] = ()

    @model_validator(mode="after")
    def _sums(self) -> StateRouting:
        if self.entries and abs(sum(e.probability for e in self.entries) - 1) > _TOLERANCE:
            raise ValueError("entry probabilities must add up to 1")
        totals: dict[tuple[str, str | None, int], float] = {}
        for t in self.transitions:
            key = (t.state, t.group, t.visit)
            totals[key] = totals.get(key, 0.0) + t.probability
        for (state, group, visit), total in totals.items():
            if abs(total - 1) > _TOLERANCE:
                raise ValueError(
                    f"transitions out of {state} (group {group}, visit {visit}) add up to "
                    f"{total:.6f}, not 1"
                )
        return self

    def nodes(self) -> Iterator[tuple[str, str | None, int]]:
        """The nodes this routing has transitions out of, each once."""
        yield from dict.fromkeys((t.state, t.group, t.visit) for t in self.transitions)


class StateModel(_Frozen):
    """Cases moving through states (see the module docstring)."""

    workflow_name: str = Field(default="case", min_length=1, description="the cases' name")
    stopping: tuple[str, ...] = Field(
        default=("Resolved",), description="resolution: the last entry into one of these"
    )
    end_state: str = Field(default="Closed", description="how a case that ends is labelled")
    work_states: tuple[str, ...] = Field(
        default=(), description="states whose dwell holds a slot of the group"
    )
    capacities: dict[str, int] = Field(
        default_factory=dict, description="group -> slots; a group not named has no limit"
    )
    max_visits: int = Field(default=3, ge=1, description="visits above this count as the last")
    max_steps: int = Field(default=200, ge=1, description="a case ends after this many states")
    default: StateRouting
    priorities: dict[str, StateRouting] = Field(default_factory=dict)
    dwells: dict[str, DurationModel] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> StateModel:
        if not self.default.entries:
            raise ValueError("default: entries are required")
        for name, routing in [("default", self.default), *self.priorities.items()]:
            for t in routing.transitions:
                if t.dwell not in self.dwells:
                    raise ValueError(f"{name}: transition out of {t.state} names unknown dwell")
        if any(c < 1 for c in self.capacities.values()):
            raise ValueError("capacities must be at least 1")
        return self

    def routing(self, priority: str) -> StateRouting:
        """The routing of ``priority`` (the pooled default for a priority not named)."""
        return self.priorities.get(priority, self.default)

    def mean_dwell_h(self, key: str) -> float:
        """The mean of a dwell model, in hours (for reports)."""
        mean = self.dwells[key].mean()
        return mean / 3600.0 if math.isfinite(mean) else math.nan
