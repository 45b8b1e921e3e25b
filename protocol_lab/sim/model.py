"""The service-desk model: SimPy environment, queues, rules, tickets and workflows, wired.

:class:`ServiceDeskModel` owns the entities of one run (one module each): the ticket source
(:mod:`~protocol_lab.sim.arrivals`), the desk (:mod:`~protocol_lab.sim.tickets`), the rule
engine (:mod:`~protocol_lab.sim.firing`), a worker pool per Temporal task queue
(:mod:`~protocol_lab.sim.workers`), the BullMQ queues (:mod:`~protocol_lab.sim.jobs`), the
signal senders with their business calendar (:mod:`~protocol_lab.sim.signals`), the workflow
processes (:mod:`~protocol_lab.sim.plans`), the platform's own latency
(:mod:`~protocol_lab.sim.platform`: the rule engine's start, workflow tasks, schedule-to-start and
activity overhead, scaled by the compression the run stands for), the timeline recorder and the
metrics tracker.

Randomness: one :class:`numpy.random.Generator` is passed in; every named stream (each step's
durations, each signal's responses, arrivals, failures...) gets its own generator derived from
it and the stream's name, so the same seed gives the same run, and two scenarios that differ in
workers or rules still draw the same service times for the same named steps.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import numpy as np

from protocol_lab.domain.catalog import Catalog
from protocol_lab.domain.durations import DurationModel
from protocol_lab.domain.errors import ScenarioError
from protocol_lab.domain.queues import JobQueue, TaskQueue
from protocol_lab.domain.rules import Rule
from protocol_lab.domain.tickets import Priority
from protocol_lab.domain.timeline import TriggerType
from protocol_lab.sim import flow
from protocol_lab.sim.arrivals import TicketSource, iter_arrivals
from protocol_lab.sim.business_clock import BusinessClock
from protocol_lab.sim.environment import LeanEnvironment, Wake
from protocol_lab.sim.firing import RuleEngine
from protocol_lab.sim.jobs import BullQueue
from protocol_lab.sim.metrics import MetricsTracker
from protocol_lab.sim.plans import CompiledPlan, compile_plan, run_workflow
from protocol_lab.sim.platform import PlatformDelays
from protocol_lab.sim.recorder import TimelineRecorder, WorkflowOutcome
from protocol_lab.sim.sampling import Sampler, UniformSampler
from protocol_lab.sim.scenario import Scenario
from protocol_lab.sim.signals import SignalSource
from protocol_lab.sim.tickets import Ticket, TicketDesk
from protocol_lab.sim.workers import TaskQueueWorkers

if TYPE_CHECKING:
    from protocol_lab.sim.results import SimulationResult

__all__ = ["QUEUE_NAMES", "ServiceDeskModel", "simulate"]

_TASK_QUEUES = list(TaskQueue)
_JOB_QUEUES = list(JobQueue)
QUEUE_NAMES = [q.value for q in _TASK_QUEUES] + [q.value for q in _JOB_QUEUES]
_QUEUE_KINDS = ["task"] * len(_TASK_QUEUES) + ["job"] * len(_JOB_QUEUES)
_TRIGGERS = {t: i for i, t in enumerate(TriggerType)}
_PRIORITIES = {p.value: i for i, p in enumerate(Priority)}


class ServiceDeskModel:
    """One run of a scenario: build with a generator, then :meth:`run`."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        rng: np.random.Generator,
        record_events: bool = True,
        catalog: Catalog | None = None,
        rules: list[Rule] | None = None,
    ) -> None:
        self.scenario = scenario
        self.catalog = catalog if catalog is not None else scenario.load_catalog()
        self.rules = rules if rules is not None else scenario.load_rules()
        scenario.check(self.catalog, self.rules)
        self._root = int(rng.integers(0, 2**63 - 1))
        self.env = LeanEnvironment()
        env = self.env
        self.tracker = MetricsTracker(
            queues=QUEUE_NAMES, kinds=_QUEUE_KINDS, interval_s=scenario.metrics_interval_s
        )
        categories = list(dict.fromkeys(s.category for s in scenario.arrivals.streams))
        self._category_codes = {c: i for i, c in enumerate(categories)}
        self.recorder = TimelineRecorder(
            plans=self.catalog.names, categories=categories, events=record_events
        )
        self.uniform = self.uniform_sampler("uniform")
        self.clock = BusinessClock(
            # the SLA file's calendar is read (and its holidays loaded) only if a wait needs it
            scenario.calendar if scenario.calendar is not None else scenario.business_calendar,
            origin=scenario.start,
            days=int(scenario.horizon_hours / 24) + 30,
        )
        self.pools = {
            q: TaskQueueWorkers(
                env,
                queue=q,
                workers=scenario.task_queue(q).workers,
                slots=scenario.task_queue(q).slots,
                code=i,
                tracker=self.tracker,
            )
            for i, q in enumerate(_TASK_QUEUES)
        }
        self.platform = PlatformDelays(scenario.platform, self.sampler)
        for q, pool in self.pools.items():
            pool.schedule_to_start = self.platform.schedule_to_start[q]
            pool.activity_overhead = self.platform.overheads[q]
        self.jobs = {
            q: BullQueue(
                env,
                queue=q,
                config=scenario.job_queue(q),
                code=len(_TASK_QUEUES) + i,
                tracker=self.tracker,
                duration=self.sampler(f"job:{q.value}", scenario.job_queue(q).duration),
                uniform=self.uniform_sampler(f"job-failures:{q.value}"),
            )
            for i, q in enumerate(_JOB_QUEUES)
        }
        self.signals = SignalSource(env, clock=self.clock, uniform=self.uniform)
        streams = scenario.arrivals.streams
        self.desk = TicketDesk(
            env,
            streams=streams,
            resolution=[
                self.sampler(f"resolution:{k}", s.resolution) if s.resolution is not None else None
                for k, s in enumerate(streams)
            ],
            clock=self.clock,
        )
        self.compensation_duration = self.sampler("compensation", scenario.compensation_duration)
        self.plans: dict[str, CompiledPlan] = {
            name: compile_plan(self.catalog[name], code=i, recorder=self.recorder, model=self)
            for i, name in enumerate(self.catalog.names)
        }
        self.engine = RuleEngine(self.rules, model=self)
        self.desk.rules = self.engine
        self.desk.on_created = self.engine.on_created
        self.wall_s = 0.0

    # -- randomness -----------------------------------------------------------------------

    def _stream(self, name: str) -> np.random.Generator:
        return np.random.default_rng([self._root, zlib.crc32(name.encode())])

    def sampler(self, name: str, model: DurationModel) -> Sampler:
        """A sampler of ``model`` on the named random stream."""
        return Sampler(model, self._stream(name))

    def uniform_sampler(self, name: str) -> UniformSampler:
        """Uniform numbers on the named random stream (failures, decisions)."""
        return UniformSampler(self._stream(name))

    # -- services used by the entities ----------------------------------------------------

    def job_queue(self, name: str) -> BullQueue:
        """The BullMQ queue of that name."""
        return self.jobs[JobQueue(name)]

    def notify(self, channel: str) -> None:
        """A send_notification action: one job on the notification or email queue."""
        self.jobs[JobQueue(channel)].submit()

    def workflow_starter(
        self, name: str, *, queue: TaskQueue, trigger: TriggerType
    ) -> Callable[[Ticket, int], None]:
        """A rule action: start workflow ``name`` on ``queue`` for a ticket (at a chain depth)."""
        plan = self.plans.get(name)
        if plan is None:
            raise ScenarioError(f"no workflow named {name!r} in the catalog")
        pool = self.pools[queue]
        static = self.recorder.meta(
            plan=plan.code, queue=_TASK_QUEUES.index(queue), trigger=_TRIGGERS[trigger]
        )
        categories = self._category_codes
        recorder = self.recorder
        start = recorder.start
        env = self.env
        start_flow = flow.start
        latency = self.platform.workflow_start

        def start_later(delay: float, meta: int, ticket: Ticket) -> Generator[Any, Any, None]:
            # the rule engine's and Temporal's time to start it (the platform's latency)
            yield Wake(env, delay)
            wf = start(meta, ticket.number, env._now)
            yield from run_workflow(self, wf, plan, pool, ticket)

        def start_workflow(ticket: Ticket, depth: int = 0) -> None:
            record = ticket.record
            category = record["category"]
            code = categories.get(category)
            if code is None:
                code = categories[category] = len(recorder.categories)
                recorder.categories.append(category)
            meta = static | _PRIORITIES.get(record["priority"], 0) << 32 | code << 40
            ticket.active_workflows += 1
            if latency is not None:
                start_flow(start_later(latency(), meta, ticket))
                return
            wf = start(meta, ticket.number, env._now)
            start_flow(run_workflow(self, wf, plan, pool, ticket))

        return start_workflow

    def start_workflow(
        self, name: str, *, queue: TaskQueue, trigger: TriggerType, ticket: Ticket
    ) -> int:
        """Start a workflow of the catalog for a ticket on a task queue; returns its index.

        With a platform ``workflow_start`` latency the workflow is recorded only once it starts,
        and the index returned is the last one recorded so far."""
        self.workflow_starter(name, queue=queue, trigger=trigger)(ticket, 0)
        return self.recorder.n_workflows - 1

    def finish_workflow(
        self, wf: int, *, outcome: WorkflowOutcome, code: int, ticket: Ticket
    ) -> None:
        """Record a workflow's terminal event and let the desk know."""
        now = self.env.now
        self.recorder.event(wf, code, now)
        self.recorder.end(wf, outcome, now)
        self.desk.workflow_ended(ticket)

    # -- running --------------------------------------------------------------------------

    def run(self) -> SimulationResult:
        """Run the scenario to its horizon (and drain it if asked); return the result."""
        from protocol_lab.sim.results import SimulationResult

        scenario = self.scenario
        env = self.env
        began = time.perf_counter()
        schedule = iter_arrivals(scenario, self._stream("arrivals"))
        horizon = scenario.horizon_s
        TicketSource(env, schedule, self.desk).start()
        env.process(self.engine.scheduler(env, until=horizon))
        env.process(self.tracker.sampler(env, until=horizon))
        if scenario.warmup_s > 0:
            env.run(until=scenario.warmup_s)
        self.tracker.mark("warmup", env.now)
        env.run(until=horizon)
        self.tracker.mark("horizon", env.now)
        if scenario.drain:
            env.run()
        self.tracker.snapshot(env.now)
        self.wall_s = time.perf_counter() - began
        return SimulationResult(self)


def simulate(
    scenario: Scenario,
    *,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    record_events: bool = True,
) -> SimulationResult:
    """Run one scenario. ``rng`` (or ``seed``, or the scenario's seed) fixes every draw."""
    if rng is None:
        rng = np.random.default_rng(scenario.seed if seed is None else seed)
    return ServiceDeskModel(scenario, rng=rng, record_events=record_events).run()
