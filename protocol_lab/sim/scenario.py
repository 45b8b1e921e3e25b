"""Scenarios: the validated, frozen description of one simulation, saved as YAML.

A scenario names everything a run needs, with units in the field names:

- ``arrivals``: ticket streams per category and priority (tickets per week, titles, an
  hour-of-week profile) and the agents' resolution time of tickets no workflow resolves;
- the rule set and the workflow catalog (by default the very files the service loads:
  ``data/rules/default.yaml`` and ``data/definitions``), plus per-step duration and failure
  overrides;
- ``signals``: how human and external signals arrive (business hours or not, rejections);
- ``task_queues``: Temporal workers per task queue and activity slots per worker;
- ``job_queues``: BullMQ concurrency, rate limits, durations, attempts;
- ``platform``: the service's own latency (rule engine, workflow tasks, schedule-to-start,
  activity overhead) in wall-clock seconds with the replay compression the run stands for
  (:mod:`protocol_lab.sim.platform`; zero by default);
- horizon, warm-up, seed and the metrics interval;
- ``states`` (optional): cases that move through a foreign log's own states instead of the
  catalog's workflows (:mod:`protocol_lab.sim.state_model`, run by
  :func:`protocol_lab.sim.state_flow.simulate_states`), one arrival stream per priority.

Paths in a scenario are relative to the ``data`` folder unless absolute. Scenarios are pydantic
models (frozen, ``extra="forbid"``); :func:`load_scenario` reports the file and field at fault as a
:class:`protocol_lab.domain.ScenarioError`, and :meth:`Scenario.check` cross-checks the scenario
against the catalog and rules it names.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from protocol_lab.domain.catalog import (
    ActivityKind,
    ActivityStep,
    Catalog,
    SignalStep,
    load_catalog,
)
from protocol_lab.domain.durations import DurationModel, Fixed, LogNormal
from protocol_lab.domain.errors import ScenarioError
from protocol_lab.domain.paths import DATA_DIR
from protocol_lab.domain.queues import JOB_QUEUES, TASK_QUEUES, JobQueue, TaskQueue
from protocol_lab.domain.rules import Rule, StartWorkflowAction, load_rules
from protocol_lab.domain.sla import BusinessCalendar, load_sla_config
from protocol_lab.domain.tickets import Priority
from protocol_lab.sim.platform import PlatformConfig
from protocol_lab.sim.profiles import HourOfWeekProfile
from protocol_lab.sim.state_model import StateModel

__all__ = [
    "SCENARIO_DIR",
    "ArrivalStream",
    "Arrivals",
    "JobQueueConfig",
    "PlatformConfig",
    "RateLimit",
    "Scenario",
    "SignalConfig",
    "TaskQueueConfig",
    "load_scenario",
    "save_scenario",
]

SCENARIO_DIR = DATA_DIR / "scenarios"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ArrivalStream(_Frozen):
    """Tickets of one category and priority: a Poisson stream shaped by an hour-of-week profile.

    ``titles`` maps a title to its relative weight; the rules match on these titles exactly as
    the service matches real ones. ``resolution`` is the agents' working time (business seconds)
    to resolve a ticket that no workflow resolves; None leaves such tickets open.
    """

    category: str = Field(min_length=1)
    priority: Priority
    tickets_per_week: float = Field(gt=0)
    titles: dict[str, float] = Field(min_length=1)
    profile: HourOfWeekProfile | None = None
    resolution: DurationModel | None = None

    @field_validator("titles")
    @classmethod
    def _positive(cls, titles: dict[str, float]) -> dict[str, float]:
        if any(w <= 0 for w in titles.values()):
            raise ValueError("title weights must be positive")
        return titles


class Arrivals(_Frozen):
    """All ticket streams, their default profile, and an overall forecast factor.

    ``observed`` replays recorded arrivals instead of drawing Poisson ones: a Parquet or CSV
    file (relative to ``data/`` unless absolute) with columns ``created_at`` (UTC time),
    ``category``, ``priority`` and ``title``; each row is matched to the stream of its category
    and priority (which supplies the agents' resolution time).
    """

    profile: HourOfWeekProfile = Field(default_factory=HourOfWeekProfile.flat)
    scale: float = Field(default=1.0, gt=0, description="multiplies every stream's rate")
    streams: tuple[ArrivalStream, ...] = Field(min_length=1)
    observed: str | None = Field(default=None, description="recorded arrivals to replay")

    @property
    def tickets_per_week(self) -> float:
        """Expected tickets per week over all streams, after ``scale``."""
        return self.scale * sum(s.tickets_per_week for s in self.streams)


class TaskQueueConfig(_Frozen):
    """Temporal workers polling one task queue; each runs up to ``slots`` activities at once."""

    workers: int = Field(ge=1)
    slots: int = Field(default=1, ge=1, description="max concurrent activities per worker")
    cost_per_worker: float = Field(default=1.0, ge=0, description="for the capacity planner")

    @property
    def capacity(self) -> int:
        """Activity slots on the queue."""
        return self.workers * self.slots


class RateLimit(_Frozen):
    """BullMQ limiter: at most ``max`` jobs start per ``duration_s`` window."""

    max: int = Field(ge=1)
    duration_s: float = Field(gt=0)


class JobQueueConfig(_Frozen):
    """A BullMQ queue: processor concurrency, optional limiter, job durations, attempts."""

    workers: int = Field(default=1, ge=1)
    concurrency: int = Field(default=1, ge=1)
    rate_limit: RateLimit | None = None
    duration: DurationModel = Field(default_factory=lambda: LogNormal(median_s=0.5, sigma=0.5))
    failure_probability: float = Field(default=0.0, ge=0, le=1)
    attempts: int = Field(default=3, ge=1)
    backoff_s: float = Field(default=5.0, ge=0, description="exponential backoff base delay")

    @property
    def capacity(self) -> int:
        """Jobs processed at once."""
        return self.workers * self.concurrency


class SignalConfig(_Frozen):
    """How one named signal arrives in simulation.

    ``business_hours``: the response time runs on the business calendar (people at work);
    otherwise on the wall clock (users, on-call, systems). ``reject_probability``: chance the
    payload's decision is a rejection (``rejected``), which fails the workflow. ``response``
    overrides the plan's response model.
    """

    business_hours: bool = True
    reject_probability: float = Field(default=0.0, ge=0, le=1)
    response: DurationModel | None = None


class Scenario(_Frozen):
    """One simulation: arrivals, rules, catalog, queues, signals, horizon and seed."""

    name: str = Field(min_length=1)
    description: str = ""
    start: datetime = Field(default=datetime(2026, 11, 2, tzinfo=UTC))
    horizon_hours: float = Field(gt=0, description="arrivals stop after this")
    warmup_hours: float = Field(default=0.0, ge=0, description="excluded from statistics")
    drain: bool = Field(default=True, description="after the horizon, run until all work ends")
    max_tickets: int | None = Field(default=None, ge=1, description="stop arrivals after N")
    seed: int = Field(default=0, ge=0)
    catalog: str = Field(default="definitions", description="catalog folder, relative to data/")
    rules_file: str = Field(default="rules/default.yaml", description="relative to data/")
    rules: tuple[Rule, ...] | None = Field(default=None, description="inline rules (win)")
    arrivals: Arrivals
    task_queues: dict[TaskQueue, TaskQueueConfig] = Field(default_factory=dict)
    job_queues: dict[JobQueue, JobQueueConfig] = Field(default_factory=dict)
    signals: dict[str, SignalConfig] = Field(default_factory=dict)
    calendar: BusinessCalendar | None = Field(default=None, description="default: data/sla.yaml")
    durations: dict[str, dict[str, DurationModel]] = Field(
        default_factory=dict, description="workflow name -> step id -> duration override"
    )
    failure_probabilities: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="workflow name -> step id -> failure probability"
    )
    compensation_duration: DurationModel = Field(default_factory=lambda: Fixed(seconds=1.0))
    scheduler_interval_s: float = Field(default=3600.0, gt=0, description="scheduled rules")
    metrics_interval_s: float = Field(default=3600.0, gt=0)
    update_chain_limit: int = Field(default=10, ge=1, description="update_field rule chains")
    platform: PlatformConfig = Field(
        default_factory=PlatformConfig,
        description="the service's own latency, wall-clock seconds at a compression",
    )
    states: StateModel | None = Field(
        default=None, description="cases through a log's states (one stream per priority)"
    )

    @field_validator("start")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        if self.warmup_hours >= self.horizon_hours:
            raise ValueError("warmup_hours must be shorter than horizon_hours")
        for probs in self.failure_probabilities.values():
            if any(not 0 <= p <= 1 for p in probs.values()):
                raise ValueError("failure probabilities must lie in [0, 1]")
        if self.states is not None and len({s.category for s in self.arrivals.streams}) != len(
            self.arrivals.streams
        ):
            raise ValueError("states: one arrival stream per priority (category) is needed")
        return self

    # -- resolved parts -------------------------------------------------------------------

    @property
    def horizon_s(self) -> float:
        """Horizon in seconds."""
        return self.horizon_hours * 3600.0

    @property
    def warmup_s(self) -> float:
        """Warm-up in seconds."""
        return self.warmup_hours * 3600.0

    def task_queue(self, queue: TaskQueue | str) -> TaskQueueConfig:
        """Workers of a task queue (the registry's defaults when the scenario is silent)."""
        q = TaskQueue(queue)
        if q in self.task_queues:
            return self.task_queues[q]
        spec = TASK_QUEUES[q]
        return TaskQueueConfig(workers=spec.default_workers, slots=spec.default_slots)

    def job_queue(self, queue: JobQueue | str) -> JobQueueConfig:
        """A BullMQ queue's settings (the registry's defaults when the scenario is silent)."""
        q = JobQueue(queue)
        if q in self.job_queues:
            return self.job_queues[q]
        spec = JOB_QUEUES[q]
        limit = (
            RateLimit(max=max(1, round(spec.rate_limit_per_s)), duration_s=1.0)
            if spec.rate_limit_per_s
            else None
        )
        return JobQueueConfig(concurrency=spec.concurrency, rate_limit=limit)

    def signal(self, name: str) -> SignalConfig:
        """How a named signal arrives (default: business hours, no rejections)."""
        return self.signals.get(name, SignalConfig())

    def business_calendar(self) -> BusinessCalendar:
        """The calendar human waits run on."""
        return self.calendar if self.calendar is not None else load_sla_config().calendar

    def load_catalog(self) -> Catalog:
        """The workflow catalog this scenario simulates."""
        return load_catalog(_resolve(self.catalog))

    def load_rules(self) -> list[Rule]:
        """The rule set this scenario simulates (inline rules win over the file)."""
        if self.rules is not None:
            return list(self.rules)
        return load_rules(_resolve(self.rules_file))

    def check(self, catalog: Catalog | None = None, rules: Iterable[Rule] | None = None) -> None:
        """Cross-check against the catalog and rules; raise :class:`ScenarioError`."""
        try:
            catalog = catalog if catalog is not None else self.load_catalog()
            rules = list(rules) if rules is not None else self.load_rules()
        except ScenarioError:
            raise
        except Exception as exc:
            raise ScenarioError(f"scenario {self.name!r}: {exc}") from exc
        for rule in rules:
            for action in rule.steps:
                if isinstance(action, StartWorkflowAction) and action.workflow_name not in catalog:
                    raise ScenarioError(
                        f"scenario {self.name!r}: rule {rule.name!r} starts unknown workflow "
                        f"{action.workflow_name!r}; the catalog has {catalog.names}"
                    )
        for label, table in (
            ("durations", self.durations),
            ("failure_probabilities", self.failure_probabilities),
        ):
            for wf_name, steps in table.items():
                if wf_name not in catalog:
                    raise ScenarioError(f"{label}: unknown workflow {wf_name!r}")
                plan = catalog[wf_name]
                for step_id in steps:
                    try:
                        step = plan.step(step_id)
                    except KeyError:
                        raise ScenarioError(
                            f"{label}.{wf_name}: unknown step {step_id!r}"
                        ) from None
                    if not isinstance(step, ActivityStep):
                        raise ScenarioError(f"{label}.{wf_name}.{step_id}: not an activity")
        signals = {s.signal for p in catalog.values() for s in p.steps if isinstance(s, SignalStep)}
        for name in self.signals:
            if name not in signals:
                raise ScenarioError(f"signals: no plan waits for {name!r}; known {sorted(signals)}")

    # -- variations ---------------------------------------------------------------------

    def with_workers(self, workers: Mapping[TaskQueue, int] | Mapping[str, int]) -> Scenario:
        """A copy with other worker counts on some task queues (slots unchanged)."""
        queues = {q: self.task_queue(q) for q in TaskQueue}
        for name, n in workers.items():
            q = TaskQueue(name)
            queues[q] = queues[q].model_copy(update={"workers": int(n)})
        return self.model_copy(update={"task_queues": queues})

    def with_forecast(
        self, *, tickets_per_week: float | None = None, scale: float | None = None
    ) -> Scenario:
        """A copy whose arrivals total ``tickets_per_week`` (or are multiplied by ``scale``)."""
        if (tickets_per_week is None) == (scale is None):
            raise ScenarioError("give exactly one of tickets_per_week and scale")
        base = sum(s.tickets_per_week for s in self.arrivals.streams)
        factor = tickets_per_week / base if tickets_per_week is not None else float(scale or 1)
        if factor <= 0:
            raise ScenarioError("the forecast must be positive")
        arrivals = self.arrivals.model_copy(update={"scale": factor})
        return self.model_copy(update={"arrivals": arrivals})

    def with_rules(
        self,
        *,
        add: Iterable[Rule] = (),
        remove: Iterable[str] = (),
        replace: Mapping[str, Rule] | None = None,
    ) -> Scenario:
        """A copy with rules added, removed (by name) or replaced (by name); unknown names raise."""
        rules = self.load_rules()
        names = {r.name for r in rules}
        replace = dict(replace or {})
        for name in [*remove, *replace]:
            if name not in names:
                raise ScenarioError(f"no rule named {name!r}; known {sorted(names)}")
        dropped = set(remove)
        out = [replace.get(r.name, r) for r in rules if r.name not in dropped]
        out.extend(add)
        return self.model_copy(update={"rules": tuple(out)})

    def with_horizon(self, hours: float, *, warmup_hours: float | None = None) -> Scenario:
        """A copy with another horizon (and warm-up)."""
        warm = self.warmup_hours if warmup_hours is None else warmup_hours
        data = {**self.model_dump(), "horizon_hours": hours, "warmup_hours": warm}
        try:
            return Scenario.model_validate(data)
        except ValidationError as exc:
            raise ScenarioError(f"scenario {self.name!r}: {_describe(exc)}") from exc

    def with_platform(
        self, platform: PlatformConfig, *, compression: float | None = None
    ) -> Scenario:
        """A copy with the platform's latency (at ``compression``, if given, instead of the
        config's own): a scenario simulated for a replay at compression c adds each wall-clock
        latency times c simulated seconds."""
        if compression is not None:
            platform = platform.at_compression(compression)
        return self.model_copy(update={"platform": platform})

    def as_the_service_runs(self, catalog: Catalog | None = None) -> Scenario:
        """A copy whose steps take the time they take on the service: a step the service does
        itself (a ticket update, an asset record, a job on a queue: anything but an integration
        call, which it emulates with the plan's duration) and every compensation (the service
        emulates an integration's undo at once) take no time of their own, so what is left of
        them is the platform's latency (:attr:`platform`). For a simulation that a replay against
        the service is compared with."""
        plans = catalog if catalog is not None else self.load_catalog()
        durations = {name: dict(steps) for name, steps in self.durations.items()}
        for plan in plans.values():
            for step in plan.steps:
                if isinstance(step, ActivityStep) and step.activity is not ActivityKind.INTEGRATION:
                    durations.setdefault(plan.name, {})[step.id] = Fixed(seconds=0.0)
        return self.model_copy(
            update={"durations": durations, "compensation_duration": Fixed(seconds=0.0)}
        )

    def with_seed(self, seed: int) -> Scenario:
        """A copy with another seed."""
        return self.model_copy(update={"seed": int(seed)})


# The shipped catalog's folder was data/workflows until it was named for what it holds.
_RENAMED_CATALOGS: dict[str, str] = {
    "workflows": "definitions",
    "scenarios/mmc/workflows": "scenarios/mmc/definitions",
}


def _resolve(path: str) -> Path:
    p = Path(path)
    if p.is_absolute():
        return p
    renamed = _RENAMED_CATALOGS.get(p.as_posix())
    if renamed is not None and not (DATA_DIR / p).exists():
        warnings.warn(
            f"catalog {path!r} is now {renamed!r} (data/{renamed}); name that in the scenario",
            DeprecationWarning,
            stacklevel=4,
        )
        return DATA_DIR / renamed
    return DATA_DIR / p


def _describe(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(root)"
    return f"field {loc}: {err['msg']}"


def load_scenario(path: Path | str) -> Scenario:
    """Read a scenario YAML file; a bare name looks in ``data/scenarios`` (``.yaml`` optional)."""
    file = Path(path)
    if not file.exists():
        candidate = SCENARIO_DIR / (file.name if file.suffix else f"{file.name}.yaml")
        if candidate.exists():
            file = candidate
        else:
            known = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
            raise ScenarioError(f"{path}: no such scenario; shipped ones are {known}")
    try:
        raw: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{file}: {exc}") from exc
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(f"{file}: {_describe(exc)}") from exc


def save_scenario(scenario: Scenario, path: Path | str) -> Path:
    """Write a scenario as YAML (every field, so the file states the whole model)."""
    file = Path(path)
    data = {k: v for k, v in scenario.model_dump(mode="json").items() if v is not None}
    file.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return file
