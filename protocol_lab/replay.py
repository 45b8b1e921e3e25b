"""Replay: a simulated (or observed) run played against the live service, at compressed time.

A :class:`ReplayScript` is the time-ordered list of API calls that drive the service the way the
run was driven from outside: ticket creations (the service's own rules then start the
workflows), agents' ticket updates, human and external signals (approvals, confirmations,
acknowledgements, with rejections as rejections) and cancellations. The script says *when* in
simulated seconds; nothing the service does by itself (activities, timers, timeouts, rule
firings) is scripted.

:func:`replay_async` (or :func:`replay`) plays a script through
:class:`protocol_lab.client.AsyncClient`: the call due at simulated second ``s`` is made at
``start + s / compression`` on the wall clock, so ``compression`` must equal the workflows'
``time_scale`` (the service's ``TIME_SCALE``). At most ``concurrency`` calls are in flight;
every POST carries an ``Idempotency-Key`` derived from the replay's ``run_id`` and the
action's index, so the client's retries (and a second run with the same ``run_id``) never
create anything twice. Replayed tickets have ``replay-<run_id>`` as their requester. A signal
goes to the workflow the service started for the scripted ticket, found in the ticket's
workflow list (``GET /v1/workflows?ticket_id=``).

:func:`load_replayed` reads the replayed workflows back (the API's timelines, or the exact
Temporal histories when a Temporal address is given) and maps their wall-clock timestamps
onto simulated time, so :mod:`protocol_lab.compare` can set them beside the simulation.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import polars as pl

from protocol_lab.domain import (
    TIMELINE_SCHEMA,
    EventType,
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
    from protocol_lab.client import AsyncClient
    from protocol_lab.sim import Scenario, SimulationResult

__all__ = [
    "REPLAYED_TRIGGERS",
    "Action",
    "ActionKind",
    "ActionOutcome",
    "ReplayResult",
    "ReplayScript",
    "ScriptedWorkflow",
    "install_rules",
    "load_replayed",
    "patient_retry",
    "replay",
    "replay_async",
    "simulated_timelines",
    "to_simulated_time",
]

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
        starters: dict[str, Rule] = {}
        for rule in rules:
            action = rule.action
            if (
                rule.trigger is Trigger.ON_TICKET_CREATED
                and isinstance(action, StartWorkflowAction)
                and rule.enabled
            ):
                starters.setdefault(action.workflow_name, rule)
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
        for row in mine.filter(pl.col("event") == EventType.WORKFLOW_CANCELLED.value).iter_rows(
            named=True
        ):
            detail = row["detail"] or ""
            if detail.startswith("Cancelled: no "):  # a plan's own timeout, not a caller
                continue
            actions.append(
                Action(
                    at_s=(row["timestamp"] - origin).total_seconds(),
                    kind="cancel",
                    ticket=tickets[row["workflow_id"]],
                    workflow=row["workflow_id"],
                    payload={"reason": detail or "cancelled by replay"},
                )
            )
        return cls(
            name=name,
            origin=origin,
            actions=tuple(actions),
            workflows=tuple(scripted),
            rules=tuple({rule.name: rule for rule in starters.values()}.values()),
        )


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
    failed = events.filter(pl.col("event") == EventType.WORKFLOW_FAILED.value)
    rejected = {
        (w, s)
        for w, s, d in failed.select("workflow_id", "step", "detail").iter_rows()
        if d is not None and ("rejected" in d or "denied" in d)
    }
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


# ---------------------------------------------------------------------- playing


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What became of one action: ``ok``, ``refused`` (the service said no) or ``error``."""

    index: int
    kind: ActionKind
    due_s: float
    lag_s: float
    status: Literal["ok", "refused", "error"]
    detail: str = ""


@dataclass
class ReplayResult:
    """A played script: where its tickets and workflows are, and how each call went.

    ``started_at`` is the wall-clock instant of simulated second 0; ``tickets`` maps script
    ticket names to real ticket ids, ``workflows`` script workflow ids to real ones.
    """

    script: ReplayScript
    run_id: str
    compression: float
    started_at: datetime
    tickets: dict[str, str] = field(default_factory=dict)
    workflows: dict[str, str] = field(default_factory=dict)
    outcomes: list[ActionOutcome] = field(default_factory=list)
    wall_s: float = 0.0

    def summary(self) -> pl.DataFrame:
        """Per action kind: calls, ok, refused, errors, median and max lateness (wall s)."""
        if not self.outcomes:
            return pl.DataFrame(
                schema={
                    "kind": pl.String,
                    "calls": pl.UInt32,
                    "ok": pl.UInt32,
                    "refused": pl.UInt32,
                    "errors": pl.UInt32,
                    "lag_p50_s": pl.Float64,
                    "lag_max_s": pl.Float64,
                }
            )
        frame = pl.DataFrame(
            {
                "kind": [o.kind for o in self.outcomes],
                "status": [o.status for o in self.outcomes],
                "lag_s": [o.lag_s for o in self.outcomes],
            }
        )
        status = pl.col("status")
        return (
            frame.group_by("kind")
            .agg(
                pl.len().alias("calls"),
                (status == "ok").sum().alias("ok"),
                (status == "refused").sum().alias("refused"),
                (status == "error").sum().alias("errors"),
                pl.col("lag_s").median().alias("lag_p50_s"),
                pl.col("lag_s").max().alias("lag_max_s"),
            )
            .sort("kind")
        )

    @property
    def errors(self) -> list[ActionOutcome]:
        """Actions that failed (not refusals)."""
        return [o for o in self.outcomes if o.status == "error"]

    def wall_time(self, at_s: float) -> float:
        """Unix time at which simulated second ``at_s`` falls."""
        return self.started_at.timestamp() + at_s / self.compression


class _Resolver:
    """Finds the real workflow a rule started for a real ticket (in the ticket's workflows)."""

    def __init__(
        self,
        client: AsyncClient,
        rules_by_workflow: Mapping[str, list[str]],
        gate: asyncio.Semaphore,
    ) -> None:
        self.client = client
        self.gate = gate
        self.rules_by_workflow = rules_by_workflow
        self.cache: dict[tuple[str, str], list[str]] = {}
        self.locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def _lookup(self, ticket: str, workflow_name: str) -> list[str]:
        """The ids of the ``workflow_name`` workflows started for ``ticket``, oldest first."""
        if not self.rules_by_workflow.get(workflow_name):
            return []  # no replayed rule starts it
        async with self.gate:
            workflows = [
                w async for w in self.client.aiter_workflows(ticket_id=ticket, page_size=100)
            ]
        # The list is newest first; only started workflows are in it.
        return [w["id"] for w in reversed(workflows) if w.get("name") == workflow_name]

    async def resolve(
        self, ticket: str, workflow_name: str, ordinal: int, *, within_s: float
    ) -> str | None:
        key = (ticket, workflow_name)
        lock = self.locks.setdefault(key, asyncio.Lock())
        deadline = time.monotonic() + within_s
        async with lock:
            while True:
                known = self.cache.get(key, [])
                if len(known) > ordinal:
                    return known[ordinal]
                known = await self._lookup(ticket, workflow_name)
                self.cache[key] = known
                if len(known) > ordinal:
                    return known[ordinal]
                if time.monotonic() >= deadline:
                    return None
                await asyncio.sleep(0.2)


async def replay_async(
    script: ReplayScript,
    client: AsyncClient,
    *,
    compression: float,
    concurrency: int = 16,
    progress: bool = True,
    run_id: str | None = None,
    resolve_within_s: float = 30.0,
    wait_until_end: bool = True,
    on_action: Callable[[int, Action], None] | None = None,
) -> ReplayResult:
    """Play ``script`` through ``client`` at ``compression`` simulated seconds per second.

    ``concurrency`` bounds the HTTP calls in flight (the schedule itself never waits for
    them); ``run_id`` seeds the idempotency keys (give
    the same one to resume a replay without duplicates); ``wait_until_end`` sleeps until the
    script's cut-off is reached on the wall clock, so loading the timelines afterwards sees
    the service at the same simulated instant as the script's end. ``on_action`` is called
    (index, action) as each action is issued (tests use it to disturb the service midway).
    """
    from tqdm.auto import tqdm

    from protocol_lab.client import ApiRequestError, ApiStatusError, ConflictError, NotFoundError

    if compression <= 0:
        raise ValueError("compression must be positive")
    run_id = run_id or uuid.uuid4().hex[:12]
    await install_rules(client, script.rules)
    rules_by_workflow: dict[str, list[str]] = {}
    async for rule in client.aiter_rules(page_size=100):
        action = rule.get("action") or {}
        if action.get("type") == "start_workflow" and rule.get("enabled", True):
            rules_by_workflow.setdefault(str(action.get("workflow_name")), []).append(rule["id"])
    gate = asyncio.Semaphore(max(1, concurrency))
    resolver = _Resolver(client, rules_by_workflow, gate)
    expected = {w.workflow: w for w in script.workflows}
    loop = asyncio.get_running_loop()
    tickets: dict[str, asyncio.Future[str]] = {}
    for action in script.actions:
        if action.kind == "create_ticket" and action.ticket not in tickets:
            tickets[action.ticket] = loop.create_future()
    began = time.time() + 0.2
    result = ReplayResult(
        script=script,
        run_id=run_id,
        compression=compression,
        started_at=datetime.fromtimestamp(began, tz=UTC),
    )
    bar = tqdm(total=len(script.actions), desc="replay", unit="call", disable=not progress)

    async def real_ticket(name: str) -> str:
        future = tickets.get(name)
        if future is None:
            raise LookupError(f"ticket {name} is never created by the script")
        return await asyncio.shield(future)

    async def real_workflow(action: Action) -> str:
        assert action.workflow is not None
        ticket = await real_ticket(action.ticket)
        known = result.workflows.get(action.workflow)
        if known is not None:
            return known
        spec = expected.get(action.workflow)
        name = spec.workflow_name if spec is not None else ""
        ordinal = spec.ordinal if spec is not None else 0
        found = await resolver.resolve(ticket, name, ordinal, within_s=resolve_within_s)
        if found is None:
            raise LookupError(f"no {name!r} workflow started for ticket {ticket}")
        result.workflows[action.workflow] = found
        return found

    async def perform(index: int, action: Action) -> tuple[str, str]:
        key = f"replay-{run_id}-{index}"
        if action.kind == "create_ticket":
            try:
                async with gate:
                    ticket = await client.create_ticket(
                        title=str(action.fields.get("title", "Replayed ticket")),
                        description=action.fields.get("description"),
                        category=action.fields.get("category"),
                        priority=action.fields.get("priority"),
                        status=action.fields.get("status"),
                        requester=f"replay-{run_id}",
                        idempotency_key=key,
                    )
            except BaseException as exc:
                tickets[action.ticket].set_exception(exc)
                raise
            tickets[action.ticket].set_result(ticket["id"])
            result.tickets[action.ticket] = ticket["id"]
            return "ok", ticket["id"]
        if action.kind == "update_ticket":
            real = await real_ticket(action.ticket)
            status = action.fields.get("status", "resolved")
            deadline = time.monotonic() + resolve_within_s
            while True:
                try:
                    async with gate:
                        await client.update_ticket(real, status=status)
                except ApiRequestError:
                    # the answer was lost (the API restarted mid-request); setting the same
                    # status again changes nothing if the first request went through
                    if time.monotonic() >= deadline:
                        raise
                    await asyncio.sleep(0.25)
                    continue
                return "ok", real
        workflow_id = await real_workflow(action)
        if action.kind == "signal":
            deadline = time.monotonic() + resolve_within_s
            while True:
                try:
                    async with gate:
                        answer = await client.signal_workflow(
                            workflow_id,
                            signal_name=str(action.signal_name),
                            payload=dict(action.payload),
                            idempotency_key=key,
                        )
                except NotFoundError:
                    # started a moment ago and not yet visible: try again shortly
                    if time.monotonic() >= deadline:
                        raise
                    await asyncio.sleep(0.25)
                    continue
                return ("ok" if answer.get("accepted", True) else "refused"), workflow_id
        reason = str(action.payload.get("reason", "cancelled by replay"))
        async with gate:
            await client.cancel_workflow(workflow_id, reason=reason, idempotency_key=key)
        return "ok", workflow_id

    async def run(index: int, action: Action, due: float) -> None:
        lag = max(0.0, time.time() - due)
        try:
            status, detail = await perform(index, action)
        except ConflictError as exc:
            status, detail = "refused", str(exc)
        except (ApiStatusError, LookupError) as exc:
            status, detail = "error", f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            status, detail = "error", f"{type(exc).__name__}: {exc}"
        finally:
            bar.update(1)
        result.outcomes.append(
            ActionOutcome(
                index=index,
                kind=action.kind,
                due_s=action.at_s,
                lag_s=lag,
                status=status,  # type: ignore[arg-type]
                detail=detail,
            )
        )

    tasks: list[asyncio.Task[None]] = []
    try:
        for index, action in enumerate(script.actions):
            due = began + action.at_s / compression
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if on_action is not None:
                on_action(index, action)
            tasks.append(asyncio.create_task(run(index, action, due)))
        await asyncio.gather(*tasks)
        # Every workflow the script expects, also those that got no signal.
        for spec in script.workflows:
            if spec.workflow in result.workflows or spec.ticket not in result.tickets:
                continue
            found = await resolver.resolve(
                result.tickets[spec.ticket],
                spec.workflow_name,
                spec.ordinal,
                within_s=1.0,
            )
            if found is not None:
                result.workflows[spec.workflow] = found
        if wait_until_end:
            rest = began + script.end_s / compression - time.time()
            if rest > 0:
                await asyncio.sleep(rest)
    finally:
        for task in tasks:
            task.cancel()
        bar.close()
    result.outcomes.sort(key=lambda o: o.index)
    result.wall_s = time.time() - began
    return result


REPLAYED_TRIGGERS: Final = (Trigger.ON_TICKET_CREATED, Trigger.ON_TICKET_UPDATED)
"""Rules a replay installs: those that fire on ticket events (scheduled rules measure idle
time on the wall clock, which a compressed replay cannot reproduce)."""


async def install_rules(client: AsyncClient, rules: Sequence[Rule]) -> list[str]:
    """Create the ticket-event rules the service does not have yet (by name); their ids."""
    existing: dict[str, str] = {}
    async for rule in client.aiter_rules(page_size=100):
        existing[str(rule.get("name"))] = str(rule["id"])
    ids = []
    for spec in rules:
        if spec.trigger not in REPLAYED_TRIGGERS or not spec.enabled:
            continue
        if spec.name in existing:
            ids.append(existing[spec.name])
            continue
        digest = hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:24]
        created = await client.create_rule(
            name=spec.name,
            trigger=spec.trigger.value,
            conditions=spec.conditions,
            action=spec.action.model_dump(mode="json", exclude_none=True),
            enabled=True,
            idempotency_key=f"replay-rule-{digest}",
        )
        ids.append(str(created["id"]))
    return ids


def replay(
    script: ReplayScript,
    *,
    base_url: str,
    token: str | None,
    compression: float,
    concurrency: int = 16,
    progress: bool = True,
    run_id: str | None = None,
) -> ReplayResult:
    """Play ``script`` against the service at ``base_url`` (see :func:`replay_async`)."""
    from protocol_lab.client import AsyncClient

    async def main() -> ReplayResult:
        async with AsyncClient(
            base_url=base_url, token=token, retry=patient_retry(), timeout=30.0
        ) as client:
            return await replay_async(
                script,
                client,
                compression=compression,
                concurrency=concurrency,
                progress=progress,
                run_id=run_id,
            )

    return asyncio.run(main())


def patient_retry() -> Any:
    """A retry policy that rides out a restart of the API (about 30 s of retries)."""
    from protocol_lab.client import RetryPolicy

    return RetryPolicy(max_retries=12, initial_delay=0.25, max_delay=4.0, jitter=0.3)


# ---------------------------------------------------------------------- reading back


def to_simulated_time(
    events: pl.DataFrame, *, started_at: datetime, origin: datetime, compression: float
) -> pl.DataFrame:
    """Map wall-clock timestamps of a replay onto the script's simulated clock."""
    t0 = int(started_at.timestamp() * 1_000_000)
    o = int(origin.timestamp() * 1_000_000)
    us = pl.col("timestamp").dt.epoch("us")
    mapped = ((us - t0).cast(pl.Float64) * compression).round().cast(pl.Int64) + o
    return events.with_columns(mapped.cast(pl.Datetime("us", "UTC")).alias("timestamp"))


async def _fetch_api(client: AsyncClient, ids: Sequence[str], concurrency: int) -> list[Any]:
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(workflow_id: str) -> Any:
        async with gate:
            return await client.get_workflow(workflow_id, precise_timestamps=True)

    return list(await asyncio.gather(*(one(w) for w in ids)))


async def _fetch_temporal(
    address: str, namespace: str, ids: Sequence[str], concurrency: int
) -> list[dict[str, Any]]:
    """Exact (sub-second) timelines from the histories, with the shared history mapper."""
    from temporalio.client import Client as TemporalClient

    from protocol_lab.domain.history import build_timeline

    client = await TemporalClient.connect(address, namespace=namespace)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(workflow_id: str) -> list[dict[str, Any]]:
        async with gate:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
        timeline = await build_timeline(
            workflow_id, list(history.events), converter=client.data_converter
        )
        return [e.to_dict() for e in timeline.events]

    chunks = await asyncio.gather(*(one(w) for w in ids))
    return [row for chunk in chunks for row in chunk]


async def load_replayed(
    result: ReplayResult,
    client: AsyncClient,
    *,
    temporal_address: str | None = None,
    temporal_namespace: str = "default",
    concurrency: int = 16,
    cut: bool = True,
) -> Timelines:
    """The replayed workflows' real timelines, on the script's simulated clock.

    Read through the API (``GET /v1/workflows/{id}?timestamps=float``: sub-second timestamps)
    or, with ``temporal_address``, from the Temporal histories with the shared history mapper
    (microseconds). With ``cut``, events after the script's cut-off are dropped (as the
    simulation is cut there). Workflow attributes: ``ticket_id`` and ``sim_workflow_id`` (the
    script's names), and the real ids in ``workflow_id``.
    """
    from protocol_lab.analytics import Timelines

    real_ids = list(dict.fromkeys(result.workflows.values()))
    back = {real: sim for sim, real in result.workflows.items()}
    scripted = {w.workflow: w for w in result.script.workflows}
    if temporal_address is not None:
        rows = await _fetch_temporal(temporal_address, temporal_namespace, real_ids, concurrency)
        raw = Timelines.from_records(rows)
    else:
        items = await _fetch_api(client, real_ids, concurrency)
        raw = Timelines.from_records(items)
    events = raw.events.collect()
    events = to_simulated_time(
        events,
        started_at=result.started_at,
        origin=result.script.origin,
        compression=result.compression,
    )
    cutoff = result.script.origin + timedelta(seconds=result.script.end_s)
    if cut:
        events = events.filter(pl.col("timestamp") <= cutoff)
    events = events.cast(
        dict(TIMELINE_SCHEMA)  # type: ignore[arg-type]
    )
    attributes = pl.DataFrame(
        {
            "workflow_id": real_ids,
            "sim_workflow_id": [back[r] for r in real_ids],
            "ticket_id": [
                scripted[back[r]].ticket if back[r] in scripted else None for r in real_ids
            ],
        },
        schema={"workflow_id": pl.String, "sim_workflow_id": pl.String, "ticket_id": pl.String},
    )
    return Timelines.from_frame(events, attributes, check=False)


def simulated_timelines(result: SimulationResult, *, until_s: float | None = None) -> Timelines:
    """The simulation's timelines cut at ``until_s`` (same cut as a truncated script)."""
    from protocol_lab.analytics import Timelines

    events = result.recorder.events_frame(origin=result.origin, since_s=0.0)
    if until_s is not None:
        cutoff = result.origin + timedelta(seconds=until_s)
        events = events.filter(pl.col("timestamp") <= cutoff)
    attributes = result.recorder.workflows_frame(origin=result.origin, since_s=0.0).select(
        "workflow_id",
        pl.col("workflow_id").alias("sim_workflow_id"),
        "ticket_id",
        pl.col("priority").cast(pl.String),
        "category",
    )
    return Timelines.from_frame(events, attributes, check=False)
