"""The replay script: a simulated (or observed) run as the API calls that drove it from outside.

A :class:`ReplayScript` is the time-ordered list of API calls that drive the service the way the
run was driven from outside: ticket creations (the service's own rules then start the
workflows), agents' ticket updates, human and external signals (approvals, confirmations,
acknowledgements, with rejections as rejections) and cancellations. The script says *when* in
simulated seconds; nothing the service does by itself (activities, timers, timeouts, rule
firings) is scripted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import polars as pl

from protocol_lab.domain import (
    EventType,
    Outcome,
    Rule,
    SignalStep,
    StartWorkflowAction,
    Trigger,
    load_catalog,
    load_rules,
)
from protocol_lab.domain.catalog import Catalog

if TYPE_CHECKING:
    from protocol_lab.analytics import Timelines
    from protocol_lab.sim import Scenario, SimulationResult

__all__ = ["Action", "ActionKind", "ReplayScript", "ScriptedWorkflow"]

ActionKind = Literal["create_ticket", "update_ticket", "signal", "cancel"]
_TICKET_FIELDS: Final = ("title", "description", "category", "priority", "status", "requester")
_REPLAY_REQUESTER: Final = "replay"


@dataclass(frozen=True, slots=True)
class Action:
    """One API call of a script, due ``at_s`` simulated seconds after the script's origin.

    ``ticket`` is the script's name of the ticket (the simulator's ``TKT-...``); the service
    gives the real ticket another id. ``workflow`` is the script's workflow id (signals and
    cancellations), resolved to the real workflow the service's rules started.
    """

    at_s: float
    kind: ActionKind
    ticket: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    workflow: str | None = None
    signal_name: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScriptedWorkflow:
    """A workflow the script expects the service to start: which ticket, which plan, which one.

    ``ordinal`` counts workflows of the same name on the same ticket (0 for the first).
    """

    workflow: str
    ticket: str
    workflow_name: str
    ordinal: int
    started_s: float


@dataclass(frozen=True)
class ReplayScript:
    """A time-ordered script of API calls (see the module docstring)."""

    name: str
    origin: datetime
    actions: tuple[Action, ...]
    workflows: tuple[ScriptedWorkflow, ...] = ()
    until_s: float | None = None
    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        """Keep the actions in time order (stable for ties)."""
        ordered = tuple(sorted(self.actions, key=lambda a: a.at_s))
        object.__setattr__(self, "actions", ordered)

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def end_s(self) -> float:
        """Simulated second of the cut-off (or of the last action)."""
        if self.until_s is not None:
            return self.until_s
        return self.actions[-1].at_s if self.actions else 0.0

    def counts(self) -> dict[str, int]:
        """Actions per kind."""
        out: dict[str, int] = {}
        for action in self.actions:
            out[action.kind] = out.get(action.kind, 0) + 1
        return out

    def wall_seconds(self, compression: float) -> float:
        """Wall-clock seconds the script takes at ``compression`` simulated seconds per second."""
        return self.end_s / compression

    def to_frame(self) -> pl.DataFrame:
        """One row per action: at (datetime), at_s, kind, ticket, workflow, signal, fields."""
        origin_us = int(self.origin.timestamp() * 1_000_000)
        return pl.DataFrame(
            {
                "at": [origin_us + int(a.at_s * 1_000_000) for a in self.actions],
                "at_s": [a.at_s for a in self.actions],
                "kind": [a.kind for a in self.actions],
                "ticket": [a.ticket for a in self.actions],
                "workflow": [a.workflow for a in self.actions],
                "signal_name": [a.signal_name for a in self.actions],
                "fields": [
                    ", ".join(f"{k}={v}" for k, v in a.fields.items()) for a in self.actions
                ],
            },
            schema_overrides={"at": pl.Int64},
        ).with_columns(pl.col("at").cast(pl.Datetime("us", "UTC")))

    def truncated(self, until_s: float) -> ReplayScript:
        """The script cut at simulated second ``until_s`` (later actions dropped)."""
        return ReplayScript(
            name=self.name,
            origin=self.origin,
            actions=tuple(a for a in self.actions if a.at_s <= until_s),
            workflows=tuple(w for w in self.workflows if w.started_s <= until_s),
            until_s=until_s,
            rules=self.rules,
        )

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_simulation(
        cls,
        scenario: Scenario,
        *,
        until_hours: float | None = None,
        seed: int | None = None,
    ) -> tuple[ReplayScript, SimulationResult]:
        """Simulate ``scenario`` and script what came from outside the service.

        Every ticket the simulator opened becomes a ``create_ticket`` at its arrival, every
        resolution by agents an ``update_ticket``, every signal a workflow received a
        ``signal`` (with a rejecting decision where the simulated one was rejected).
        ``until_hours`` cuts the script (default: the end of the simulated run).
        Returns the script and the simulation it came from.
        """
        from protocol_lab.sim import ServiceDeskModel

        rng = np.random.default_rng(scenario.seed if seed is None else seed)
        model = ServiceDeskModel(scenario, rng=rng)
        desk = model.desk
        created: list[tuple[float, dict[str, Any]]] = []
        resolved: list[tuple[float, str, dict[str, Any]]] = []
        on_created = desk.on_created
        update = desk.update
        agents_seen = [desk.resolved_by_agents]

        def record_created(ticket: Any) -> None:
            created.append((float(model.env.now), dict(ticket.record)))
            on_created(ticket)

        def record_update(ticket: Any, fields: Mapping[str, Any], *, depth: int = 0) -> bool:
            # The agents' path counts a resolution just before applying it.
            if desk.resolved_by_agents != agents_seen[0]:
                agents_seen[0] = desk.resolved_by_agents
                resolved.append((float(model.env.now), ticket.record["id"], dict(fields)))
            return update(ticket, fields, depth=depth)

        desk.on_created = record_created
        setattr(desk, "update", record_update)  # noqa: B010 (instance hook, no edit of the class)
        result = model.run()

        actions: list[Action] = []
        for at, record in created:
            fields = {k: record[k] for k in _TICKET_FIELDS if record.get(k) is not None}
            fields["requester"] = _REPLAY_REQUESTER
            actions.append(
                Action(at_s=at, kind="create_ticket", ticket=record["id"], fields=fields)
            )
        for at, ticket, fields in resolved:
            actions.append(Action(at_s=at, kind="update_ticket", ticket=ticket, fields=fields))
        events = result.recorder.events_frame(origin=result.origin, since_s=0.0)
        workflows = result.recorder.workflows_frame(origin=result.origin, since_s=0.0)
        catalog = model.catalog
        actions += _signal_actions(events, workflows, catalog=catalog, origin=result.origin)
        script = cls(
            name=scenario.name,
            origin=scenario.start,
            actions=tuple(actions),
            workflows=_scripted_workflows(workflows, origin=result.origin),
            rules=tuple(model.rules),
        )
        end_s = result.end_s if until_hours is None else until_hours * 3600.0
        return script.truncated(end_s), result

    @classmethod
    def from_timelines(
        cls,
        timelines: Timelines,
        *,
        rules: Sequence[Rule] | None = None,
        catalog: Catalog | None = None,
        name: str = "observed",
    ) -> ReplayScript:
        """Script observed timelines: one ticket per workflow that makes its rule fire.

        Each workflow becomes a ticket whose fields satisfy the conditions of an
        ``on_ticket_created`` rule starting that workflow (a workflow no such rule starts is
        left out), plus its received signals and its cancellations. The origin is the first
        workflow start.
        """
        from protocol_lab.analytics import Timelines as _Timelines

        assert isinstance(timelines, _Timelines)
        rules = list(rules) if rules is not None else load_rules()
        catalog = catalog if catalog is not None else load_catalog()
        starters = _starters(rules)
        events, wf = timelines.collect()
        if wf.height == 0:
            raise ValueError("no workflows to script")
        origin: datetime = wf["started_at"].min()  # type: ignore[assignment]
        wf = wf.filter(pl.col("workflow_name").is_in(list(starters))).sort("started_at")
        keep = set(wf["workflow_id"].to_list())
        tickets = {w: f"TKT-{90001 + i}" for i, w in enumerate(wf["workflow_id"].to_list())}
        actions: list[Action] = []
        scripted: list[ScriptedWorkflow] = []
        for row in wf.iter_rows(named=True):
            started = (row["started_at"] - origin).total_seconds()
            ticket = tickets[row["workflow_id"]]
            fields = _ticket_for(starters[row["workflow_name"]])
            actions.append(Action(at_s=started, kind="create_ticket", ticket=ticket, fields=fields))
            scripted.append(
                ScriptedWorkflow(
                    workflow=row["workflow_id"],
                    ticket=ticket,
                    workflow_name=row["workflow_name"],
                    ordinal=0,
                    started_s=started,
                )
            )
        mine = events.filter(pl.col("workflow_id").is_in(list(keep)))
        frame = wf.select(
            "workflow_id",
            "workflow_name",
            pl.col("workflow_id").replace_strict(tickets, default=None).alias("ticket_id"),
        )
        actions += _signal_actions(mine, frame, catalog=catalog, origin=origin)
        actions += _cancel_actions(mine, tickets, origin=origin)
        return cls(
            name=name,
            origin=origin,
            actions=tuple(actions),
            workflows=tuple(scripted),
            rules=tuple({rule.name: rule for rule in starters.values()}.values()),
        )


def _starters(rules: Sequence[Rule]) -> dict[str, Rule]:
    """Per workflow name, the first enabled ``on_ticket_created`` rule that starts it."""
    starters: dict[str, Rule] = {}
    for rule in rules:
        action = rule.action
        if (
            rule.trigger is Trigger.ON_TICKET_CREATED
            and isinstance(action, StartWorkflowAction)
            and rule.enabled
        ):
            starters.setdefault(action.workflow_name, rule)
    return starters


def _cancel_actions(
    events: pl.DataFrame, tickets: Mapping[str, str], *, origin: datetime
) -> list[Action]:
    """A cancel per workflow a caller cancelled (not per plan that timed itself out)."""
    actions: list[Action] = []
    for row in events.filter(pl.col("event") == EventType.WORKFLOW_CANCELLED.value).iter_rows(
        named=True
    ):
        if row["outcome"] == Outcome.TIMED_OUT.value:  # a plan's own timeout, not a caller
            continue
        detail = row["detail"] or ""
        actions.append(
            Action(
                at_s=(row["timestamp"] - origin).total_seconds(),
                kind="cancel",
                ticket=tickets[row["workflow_id"]],
                workflow=row["workflow_id"],
                payload={"reason": detail or "cancelled by replay"},
            )
        )
    return actions


def _ticket_for(rule: Rule) -> dict[str, Any]:
    """Ticket fields that satisfy a rule's conditions (equality, ``in``, ``contains``)."""
    fields: dict[str, Any] = {"title": "Replayed request", "requester": _REPLAY_REQUESTER}
    for name, expected in (rule.conditions or {}).items():
        if isinstance(expected, Mapping):
            if "contains" in expected:
                fields[name] = f"{str(expected['contains']).capitalize()} (replayed)"
            elif expected.get("in"):
                fields[name] = next(iter(expected["in"]))
            elif "changed_to" in expected:
                fields[name] = expected["changed_to"]
        else:
            fields[name] = expected
    return fields


def _signal_actions(
    events: pl.DataFrame,
    workflows: pl.DataFrame,
    *,
    catalog: Catalog,
    origin: datetime,
) -> list[Action]:
    """A ``signal`` action per ``signal_received`` event, rejecting where the run rejected."""
    tickets = dict(
        zip(workflows["workflow_id"].to_list(), workflows["ticket_id"].to_list(), strict=True)
    )
    rejected = set(
        events.filter(
            (pl.col("event") == EventType.SIGNAL_RECEIVED.value)
            & (pl.col("outcome") == Outcome.REJECTED.value)
        )
        .select("workflow_id", "step")
        .iter_rows()
    )
    out: list[Action] = []
    received = events.filter(pl.col("event") == EventType.SIGNAL_RECEIVED.value)
    for row in received.iter_rows(named=True):
        plan = catalog.get(row["workflow_name"]) if row["workflow_name"] in catalog else None
        step = None
        if plan is not None and row["step"] is not None:
            with contextlib.suppress(KeyError):
                step = plan.step(row["step"])
        if not isinstance(step, SignalStep):
            continue
        ticket = tickets.get(row["workflow_id"])
        if ticket is None:
            continue
        payload: dict[str, Any] = {"by": _REPLAY_REQUESTER}
        if (row["workflow_id"], step.id) in rejected:
            payload["decision"] = step.reject_values[0] if step.reject_values else "rejected"
        elif step.signal == "approval_received":
            payload["decision"] = "approved"
        out.append(
            Action(
                at_s=(row["timestamp"] - origin).total_seconds(),
                kind="signal",
                ticket=ticket,
                workflow=row["workflow_id"],
                signal_name=step.signal,
                payload=payload,
            )
        )
    return out


def _scripted_workflows(
    workflows: pl.DataFrame, *, origin: datetime
) -> tuple[ScriptedWorkflow, ...]:
    ranked = workflows.sort("started_at").with_columns(
        pl.int_range(pl.len()).over("ticket_id", "workflow_name").alias("__ordinal")
    )
    return tuple(
        ScriptedWorkflow(
            workflow=row["workflow_id"],
            ticket=row["ticket_id"],
            workflow_name=row["workflow_name"],
            ordinal=int(row["__ordinal"]),
            started_s=(row["started_at"] - origin).total_seconds(),
        )
        for row in ranked.iter_rows(named=True)
    )
