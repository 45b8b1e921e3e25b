"""The platform's own latency: what Temporal and the rule engine add to every workflow.

A workflow on the service spends time that is no step's own: the rule engine starting it after
the ticket event, a workflow task round trip between one step's end and the next step being
scheduled, an activity's schedule-to-start on its task queue once a worker slot is free, and the
task delivery and completion report around the activity's own work. In real time these are
milliseconds; in a replay at ``compression`` c (simulated seconds per wall second) every wall
millisecond of them becomes c simulated milliseconds, so at 600x a 20 ms round trip is 12
simulated seconds per step.

:class:`PlatformConfig` states them **in wall-clock seconds**, with the compression the run
stands for; the simulator draws each one and multiplies it by ``compression``. The defaults are
zero (and compression 1), which keeps a planner's real-time scenario as it always was.

Where each latency sits in a simulated workflow (the service's Temporal history in brackets)::

    ticket event --workflow_start--> workflow_started                 [rule engine, start]
      --first_workflow_task--> first step scheduled                    [first workflow task]
      activity: slot granted --schedule_to_start--> activity_started   [ActivityTaskStarted]
                runs duration + activity_overhead --> activity_completed
      --workflow_task--> next activity scheduled                       [workflow task]
      --wait_task--> signal wait begins                                [workflow task, memo]
      signal wait: signal_received at the signal's arrival
      --signal_delivery--> next step scheduled                         [update's workflow task]
      --wait_task--> workflow_completed / failed / cancelled           [closing workflow task]

``schedule_to_start`` and ``activity_overhead`` are per task queue (``queues``, else
``default_queue``); the overhead holds the worker slot, as the service's worker does until it
has reported the result. What an activity does also costs the platform time of its own (a
ticket update writes the store and its outbox, a job goes to Redis), so ``activities`` can give
the overhead per activity kind, which then replaces the queue's for steps of that kind.
:class:`PlatformDelays` is the run-time form: samplers that return
simulated seconds, or None for a latency that is zero, so a scenario without platform latency
costs the model nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from protocol_lab.domain.catalog import ActivityKind
from protocol_lab.domain.durations import (
    DurationModel,
    Empirical,
    Exponential,
    Fixed,
    Gamma,
    LogNormal,
)
from protocol_lab.domain.queues import TaskQueue
from protocol_lab.sim.sampling import Sampler

__all__ = [
    "PlatformConfig",
    "PlatformDelays",
    "QueueLatency",
    "is_zero",
    "scale_duration",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _zero() -> DurationModel:
    return Fixed(seconds=0.0)


class QueueLatency(_Frozen):
    """The latency of one Temporal task queue, in wall-clock seconds.

    ``schedule_to_start``: from a free worker slot to the activity being started (the poll and
    match); ``activity_overhead``: how much longer than its own duration an activity holds its
    slot (task delivery to the worker and the completion report).
    """

    schedule_to_start: DurationModel = Field(default_factory=_zero)
    activity_overhead: DurationModel = Field(default_factory=_zero)


class PlatformConfig(_Frozen):
    """The platform's own latency, in wall-clock seconds (see the module docstring).

    ``compression`` is the replay compression the simulated run stands for (simulated seconds
    per wall second; 1 = real time): every latency drawn is multiplied by it.
    ``first_workflow_task`` (None: as ``workflow_task``) is the workflow's first task, which
    also loads the workflow on a worker; ``signal_delivery`` (None: as ``workflow_task``) is the
    workflow task that takes a signal, or a wait's timeout, and schedules the next step;
    ``wait_task`` (None: as ``workflow_task``) is the workflow task that begins a signal wait or
    closes the workflow, which also records the workflow's state for status reads.
    """

    compression: float = Field(default=1.0, gt=0, le=1e6)
    workflow_start: DurationModel = Field(
        default_factory=_zero, description="ticket event to workflow_started (rule engine)"
    )
    first_workflow_task: DurationModel | None = None
    workflow_task: DurationModel = Field(
        default_factory=_zero, description="a step's end to the next step being scheduled"
    )
    signal_delivery: DurationModel | None = None
    wait_task: DurationModel | None = None
    default_queue: QueueLatency = Field(default_factory=QueueLatency)
    queues: dict[TaskQueue, QueueLatency] = Field(default_factory=dict)
    activities: dict[ActivityKind, DurationModel] = Field(
        default_factory=dict,
        description="activity overhead per activity kind (replaces the queue's for that kind)",
    )

    def queue(self, queue: TaskQueue | str) -> QueueLatency:
        """The latency of a task queue (``default_queue`` when the config is silent)."""
        return self.queues.get(TaskQueue(queue), self.default_queue)

    @property
    def is_zero(self) -> bool:
        """True when every latency is zero (the simulator then adds nothing)."""
        models = [
            self.workflow_start,
            self.first_workflow_task,
            self.workflow_task,
            self.signal_delivery,
            self.wait_task,
            self.default_queue.schedule_to_start,
            self.default_queue.activity_overhead,
        ]
        for latency in self.queues.values():
            models += [latency.schedule_to_start, latency.activity_overhead]
        models += list(self.activities.values())
        return all(m is None or is_zero(m) for m in models)

    def at_compression(self, compression: float) -> PlatformConfig:
        """The same wall-clock latencies for a run that stands for another compression."""
        return self.model_copy(update={"compression": float(compression)})


def is_zero(model: DurationModel) -> bool:
    """True for a model that always draws zero seconds."""
    if isinstance(model, Fixed):
        return model.seconds == 0
    if isinstance(model, Empirical):
        return not any(model.values_s)
    return False


def scale_duration(model: DurationModel, factor: float) -> DurationModel:
    """``model`` with every draw multiplied by ``factor`` (same family, scaled parameters)."""
    if factor <= 0:
        raise ValueError("a scale factor must be positive")
    if isinstance(model, Fixed):
        return Fixed(seconds=model.seconds * factor)
    if isinstance(model, Exponential):
        return Exponential(mean_s=model.mean_s * factor)
    if isinstance(model, LogNormal):
        return LogNormal(median_s=model.median_s * factor, sigma=model.sigma)
    if isinstance(model, Gamma):
        return Gamma(shape=model.shape, mean_s=model.mean_s * factor)
    if isinstance(model, Empirical):
        return Empirical(values_s=tuple(v * factor for v in model.values_s))
    raise TypeError(f"unknown duration model {type(model).__name__}")


class PlatformDelays:
    """A platform config ready for one run: samplers of simulated seconds (None for zero).

    ``sampler(name, model)`` gives a sampler on the model's named random stream, so the
    platform's draws never shift any other part of the model's draws.
    """

    __slots__ = (
        "activity_overheads",
        "first_task",
        "overheads",
        "schedule_to_start",
        "signal_delivery",
        "task",
        "wait_task",
        "workflow_start",
    )

    def __init__(
        self, config: PlatformConfig, sampler: Callable[[str, DurationModel], Sampler]
    ) -> None:
        c = config.compression

        def build(name: str, model: DurationModel | None) -> Sampler | None:
            if model is None or is_zero(model):
                return None
            return sampler(f"platform:{name}", scale_duration(model, c))

        task = config.workflow_task
        self.workflow_start = build("workflow_start", config.workflow_start)
        self.task = build("workflow_task", task)
        first = config.first_workflow_task
        self.first_task = build("first_workflow_task", first) if first is not None else self.task
        delivery = config.signal_delivery
        self.signal_delivery = (
            build("signal_delivery", delivery) if delivery is not None else self.task
        )
        wait = config.wait_task
        self.wait_task = build("wait_task", wait) if wait is not None else self.task
        self.schedule_to_start: dict[TaskQueue, Sampler | None] = {}
        self.overheads: dict[TaskQueue, Sampler | None] = {}
        for queue in TaskQueue:
            latency = config.queue(queue)
            self.schedule_to_start[queue] = build(
                f"schedule_to_start:{queue.value}", latency.schedule_to_start
            )
            self.overheads[queue] = build(
                f"activity_overhead:{queue.value}", latency.activity_overhead
            )
        self.activity_overheads: dict[ActivityKind, Sampler | None] = {
            kind: build(f"activity_overhead:{kind.value}", model)
            for kind, model in config.activities.items()
        }
