"""The player: a :class:`~protocol_lab.replay.script.ReplayScript` performed against the API.

:func:`replay_async` (or :func:`replay`) plays a script through
:class:`protocol_lab.client.AsyncClient`: the call due at simulated second ``s`` is made at
``start + s / compression`` on the wall clock, so ``compression`` must equal the workflows'
``time_scale`` (the service's ``TIME_SCALE``). At most ``concurrency`` calls are in flight;
every POST carries an ``Idempotency-Key`` derived from the replay's ``run_id`` and the
action's index, so the client's retries (and a second run with the same ``run_id``) never
create anything twice. Replayed tickets have ``replay-<run_id>`` as their requester. A signal
goes to the workflow the service started for the scripted ticket, found in the ticket's
workflow list (``GET /v1/workflows?ticket_id=``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import polars as pl

from protocol_lab.domain import Rule, Trigger
from protocol_lab.replay.script import Action, ActionKind, ReplayScript

if TYPE_CHECKING:
    from protocol_lab.client import AsyncClient

__all__ = [
    "REPLAYED_TRIGGERS",
    "RESOLVE_WITHIN_S",
    "ActionOutcome",
    "ReplayResult",
    "install_rules",
    "patient_retry",
    "replay",
    "replay_async",
    "warm_up",
]


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
        return [w.id for w in reversed(workflows) if w.name == workflow_name]

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


RESOLVE_WITHIN_S: Final = 60.0
"""How long a call waits for the rule engine to start the workflow it addresses: longer than
the service's event lease (30 s), so that a start delayed by a dispatcher that died holding the
ticket's event, and whose lease had to expire first, is still found. With 30 s, a replay that
killed the worker mid-way missed such starts by a few seconds."""


async def replay_async(
    script: ReplayScript,
    client: AsyncClient,
    *,
    compression: float,
    concurrency: int = 16,
    progress: bool = True,
    run_id: str | None = None,
    resolve_within_s: float = RESOLVE_WITHIN_S,
    wait_until_end: bool = True,
    on_action: Callable[[int, Action], None] | None = None,
) -> ReplayResult:
    """Play ``script`` through ``client`` at ``compression`` simulated seconds per second.

    ``concurrency`` bounds the HTTP calls in flight (the schedule itself never waits for
    them); ``run_id`` seeds the idempotency keys (give
    the same one to resume a replay without duplicates); ``resolve_within_s`` is how long a call
    waits for the workflow it addresses to be started by the rule engine
    (:data:`RESOLVE_WITHIN_S`); ``wait_until_end`` sleeps until the
    script's cut-off is reached on the wall clock, so loading the timelines afterwards sees
    the service at the same simulated instant as the script's end. ``on_action`` is called
    (index, action) as each action is issued (tests use it to disturb the service midway).
    """
    if compression <= 0:
        raise ValueError("compression must be positive")
    await install_rules(client, script.rules)
    gate = asyncio.Semaphore(max(1, concurrency))
    resolver = _Resolver(client, await _rules_by_workflow(client), gate)
    player = _Player(
        script,
        client,
        run_id=run_id or uuid.uuid4().hex[:12],
        compression=compression,
        gate=gate,
        resolver=resolver,
        resolve_within_s=resolve_within_s,
    )
    return await player.play(progress=progress, wait_until_end=wait_until_end, on_action=on_action)


async def _rules_by_workflow(client: AsyncClient) -> dict[str, list[str]]:
    """The ids of the enabled rules that start each workflow, by workflow name."""
    rules_by_workflow: dict[str, list[str]] = {}
    async for rule in client.aiter_rules(page_size=100):
        action = rule.raw.get("action") or {}
        if action.get("type") == "start_workflow" and rule.enabled:
            rules_by_workflow.setdefault(str(action.get("workflow_name")), []).append(rule.id)
    return rules_by_workflow


class _Player:
    """One playing of a script: issues each action on time and records how it went."""

    def __init__(
        self,
        script: ReplayScript,
        client: AsyncClient,
        *,
        run_id: str,
        compression: float,
        gate: asyncio.Semaphore,
        resolver: _Resolver,
        resolve_within_s: float,
    ) -> None:
        self.script = script
        self.client = client
        self.run_id = run_id
        self.compression = compression
        self.gate = gate
        self.resolver = resolver
        self.resolve_within_s = resolve_within_s
        self.expected = {w.workflow: w for w in script.workflows}
        loop = asyncio.get_running_loop()
        # One future per scripted ticket: actions on it wait until its creation answered.
        self.tickets: dict[str, asyncio.Future[str]] = {}
        for action in script.actions:
            if action.kind == "create_ticket" and action.ticket not in self.tickets:
                self.tickets[action.ticket] = loop.create_future()
        self.began = time.time() + 0.2
        self.result = ReplayResult(
            script=script,
            run_id=run_id,
            compression=compression,
            started_at=datetime.fromtimestamp(self.began, tz=UTC),
        )

    async def play(
        self,
        *,
        progress: bool,
        wait_until_end: bool,
        on_action: Callable[[int, Action], None] | None,
    ) -> ReplayResult:
        """Issue every action at its due time, then find the workflows no action touched."""
        from tqdm.auto import tqdm

        bar = tqdm(total=len(self.script.actions), desc="replay", unit="call", disable=not progress)
        tasks: list[asyncio.Task[None]] = []
        try:
            for index, action in enumerate(self.script.actions):
                due = self.began + action.at_s / self.compression
                delay = due - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if on_action is not None:
                    on_action(index, action)
                tasks.append(asyncio.create_task(self._run(index, action, due, bar)))
            await asyncio.gather(*tasks)
            await self._resolve_untouched_workflows()
            if wait_until_end:
                rest = self.began + self.script.end_s / self.compression - time.time()
                if rest > 0:
                    await asyncio.sleep(rest)
        finally:
            for task in tasks:
                task.cancel()
            bar.close()
        self.result.outcomes.sort(key=lambda o: o.index)
        self.result.wall_s = time.time() - self.began
        return self.result

    async def _resolve_untouched_workflows(self) -> None:
        """Every workflow the script expects, also those that got no signal.

        They share one deadline (``resolve_within_s``): a start the rule engine delayed (its
        process restarted near the end of the replay) is still found, and a workflow that never
        started costs the wait once, not once per workflow."""
        result = self.result
        deadline = time.monotonic() + self.resolve_within_s
        for spec in self.script.workflows:
            if spec.workflow in result.workflows or spec.ticket not in result.tickets:
                continue
            found = await self.resolver.resolve(
                result.tickets[spec.ticket],
                spec.workflow_name,
                spec.ordinal,
                within_s=max(0.0, deadline - time.monotonic()),
            )
            if found is not None:
                result.workflows[spec.workflow] = found

    async def _run(self, index: int, action: Action, due: float, bar: Any) -> None:
        """Perform one action and record its outcome (a refusal or error is an outcome)."""
        from protocol_lab.client import ApiStatusError, ConflictError

        lag = max(0.0, time.time() - due)
        try:
            status, detail = await self._perform(index, action)
        except ConflictError as exc:
            status, detail = "refused", str(exc)
        except (ApiStatusError, LookupError) as exc:
            status, detail = "error", f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            status, detail = "error", f"{type(exc).__name__}: {exc}"
        finally:
            bar.update(1)
        self.result.outcomes.append(
            ActionOutcome(
                index=index,
                kind=action.kind,
                due_s=action.at_s,
                lag_s=lag,
                status=status,  # type: ignore[arg-type]
                detail=detail,
            )
        )

    async def _perform(self, index: int, action: Action) -> tuple[str, str]:
        """Make the call ``action`` stands for; its status and the real id it touched."""
        key = f"replay-{self.run_id}-{index}"
        if action.kind == "create_ticket":
            return await self._create_ticket(action, key)
        if action.kind == "update_ticket":
            return await self._update_ticket(action)
        workflow_id = await self._real_workflow(action)
        if action.kind == "signal":
            return await self._signal(action, workflow_id, key)
        return await self._cancel(action, workflow_id, key)

    async def _real_ticket(self, name: str) -> str:
        """The real id of scripted ticket ``name``, once its creation has answered."""
        future = self.tickets.get(name)
        if future is None:
            raise LookupError(f"ticket {name} is never created by the script")
        return await asyncio.shield(future)

    async def _real_workflow(self, action: Action) -> str:
        """The real id of the workflow ``action`` addresses (found in its ticket's list)."""
        assert action.workflow is not None
        ticket = await self._real_ticket(action.ticket)
        known = self.result.workflows.get(action.workflow)
        if known is not None:
            return known
        spec = self.expected.get(action.workflow)
        name = spec.workflow_name if spec is not None else ""
        ordinal = spec.ordinal if spec is not None else 0
        found = await self.resolver.resolve(ticket, name, ordinal, within_s=self.resolve_within_s)
        if found is None:
            raise LookupError(f"no {name!r} workflow started for ticket {ticket}")
        self.result.workflows[action.workflow] = found
        return found

    async def _create_ticket(self, action: Action, key: str) -> tuple[str, str]:
        """Create the scripted ticket; its future answers every action waiting on it."""
        try:
            async with self.gate:
                ticket = await self.client.create_ticket(
                    title=str(action.fields.get("title", "Replayed ticket")),
                    description=action.fields.get("description"),
                    category=action.fields.get("category"),
                    priority=action.fields.get("priority"),
                    status=action.fields.get("status"),
                    requester=f"replay-{self.run_id}",
                    idempotency_key=key,
                )
        except BaseException as exc:
            self.tickets[action.ticket].set_exception(exc)
            raise
        self.tickets[action.ticket].set_result(ticket.id)
        self.result.tickets[action.ticket] = ticket.id
        return "ok", ticket.id

    async def _update_ticket(self, action: Action) -> tuple[str, str]:
        """Set the ticket's status, again if the answer was lost (it is idempotent)."""
        from protocol_lab.client import ApiRequestError

        real = await self._real_ticket(action.ticket)
        status = action.fields.get("status", "resolved")
        deadline = time.monotonic() + self.resolve_within_s
        while True:
            try:
                async with self.gate:
                    await self.client.update_ticket(real, status=status)
            except ApiRequestError:
                # the answer was lost (the API restarted mid-request); setting the same
                # status again changes nothing if the first request went through
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.25)
                continue
            return "ok", real

    async def _signal(self, action: Action, workflow_id: str, key: str) -> tuple[str, str]:
        """Send the scripted signal; ``refused`` when the workflow does not accept it."""
        from protocol_lab.client import NotFoundError

        deadline = time.monotonic() + self.resolve_within_s
        while True:
            try:
                async with self.gate:
                    answer = await self.client.signal_workflow(
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
            return ("ok" if answer.accepted else "refused"), workflow_id

    async def _cancel(self, action: Action, workflow_id: str, key: str) -> tuple[str, str]:
        """Cancel the workflow with the scripted reason."""
        reason = str(action.payload.get("reason", "cancelled by replay"))
        async with self.gate:
            await self.client.cancel_workflow(workflow_id, reason=reason, idempotency_key=key)
        return "ok", workflow_id


REPLAYED_TRIGGERS: Final = (Trigger.ON_TICKET_CREATED, Trigger.ON_TICKET_UPDATED)
"""Rules a replay installs: those that fire on ticket events (scheduled rules measure idle
time on the wall clock, which a compressed replay cannot reproduce)."""


async def install_rules(client: AsyncClient, rules: Sequence[Rule]) -> list[str]:
    """Create the ticket-event rules the service does not have yet (by name); their ids."""
    existing: dict[str, str] = {}
    async for rule in client.aiter_rules(page_size=100):
        existing[rule.name] = rule.id
    ids = []
    for spec in rules:
        if spec.trigger not in REPLAYED_TRIGGERS or not spec.enabled:
            continue
        if spec.name in existing:
            ids.append(existing[spec.name])
            continue
        if spec.action is None:
            raise ValueError(
                f"rule {spec.name!r} has several actions: replay installs one-action rules"
            )
        digest = hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:24]
        created = await client.create_rule(
            name=spec.name,
            trigger=spec.trigger.value,
            conditions=spec.conditions,
            action=spec.action.model_dump(mode="json", exclude_none=True),
            enabled=True,
            idempotency_key=f"replay-rule-{digest}",
        )
        ids.append(created.id)
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


async def warm_up(client: Any, *, within_s: float = 60.0) -> str:
    """Start one workflow and wait until the worker has run its first step, then cancel it;
    returns its id.

    A worker's first workflow task pays for imports and sandbox set-up; doing that before a
    replay keeps the first replayed workflows from starting seconds late.
    """
    workflow = await client.create_workflow(
        name="Password Reset",
        task_queue="itsm-workflows",
        trigger_type="manual",
        input={"purpose": "warm-up before a replay"},
    )
    deadline = time.monotonic() + within_s
    # Its status names the first step from the start (the state it was started with); the
    # timeline shows the worker's work: an event beyond ``workflow_started``.
    while time.monotonic() < deadline:
        found = await client.get_workflow(workflow.id)
        if found.status != "active" or any(e.event != "workflow_started" for e in found.timeline):
            break
        await asyncio.sleep(0.2)
    with contextlib.suppress(Exception):
        await client.cancel_workflow(workflow.id, reason="warm-up done")
    return str(workflow.id)
