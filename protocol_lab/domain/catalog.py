"""The workflow catalog: each named workflow is a plan of steps, loaded from YAML.

A step is either an automated activity (with retry policy, an optional compensation and a
duration model) or a wait for a named signal (human approval, callback) with a timeout and an
``on_timeout`` behaviour. The service's Temporal workflow interprets these plans and the
simulator runs the very same ones.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocol_lab.domain.durations import DurationModel, Exponential
from protocol_lab.domain.errors import CatalogError
from protocol_lab.domain.paths import DATA_DIR
from protocol_lab.domain.queues import JobQueue, TaskQueue

__all__ = [
    "ActivityKind",
    "ActivityStep",
    "Catalog",
    "Compensation",
    "OnTimeout",
    "RetryPolicy",
    "SignalStep",
    "Step",
    "WorkflowPlan",
    "load_catalog",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ActivityKind(StrEnum):
    """What an automated step does in the service.

    - ``integration``: call an external system configured by URL (signed, retried); emulated
      from the duration model when no URL is configured.
    - ``ticket_update``: set fields on the workflow's ticket in the store.
    - ``asset_reserve`` / ``asset_release`` / ``asset_assign``: change an asset record.
    - ``enqueue_job``: put a job on a BullMQ queue (``params.queue``).
    """

    INTEGRATION = "integration"
    TICKET_UPDATE = "ticket_update"
    ASSET_RESERVE = "asset_reserve"
    ASSET_RELEASE = "asset_release"
    ASSET_ASSIGN = "asset_assign"
    ENQUEUE_JOB = "enqueue_job"


class OnTimeout(StrEnum):
    """What a signal wait does when its timeout passes without the signal."""

    FAIL = "fail"
    CONTINUE = "continue"
    CANCEL = "cancel"


class RetryPolicy(_Model):
    """Temporal-style retry policy of an activity."""

    max_attempts: int = Field(default=3, ge=1, le=100)
    initial_interval_s: float = Field(default=1.0, gt=0)
    backoff: float = Field(default=2.0, ge=1.0)
    max_interval_s: float = Field(default=60.0, gt=0)


class Compensation(_Model):
    """The action that undoes a completed step when the workflow is cancelled."""

    activity: ActivityKind
    detail: str = Field(min_length=1)
    integration: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class ActivityStep(_Model):
    """An automated activity."""

    kind: Literal["activity"] = "activity"
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    activity: ActivityKind
    detail: str = Field(min_length=1, description="text while running, e.g. 'Provisioning asset'")
    done: str = Field(min_length=1, description="text once completed, e.g. 'Asset provisioned'")
    integration: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    duration: DurationModel = Field(default_factory=lambda: Exponential(mean_s=5.0))
    failure_probability: float = Field(default=0.0, ge=0, le=1)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_s: float = Field(default=300.0, gt=0)
    compensation: Compensation | None = None

    @model_validator(mode="after")
    def _check_params(self) -> ActivityStep:
        if self.activity is ActivityKind.INTEGRATION and not self.integration:
            raise ValueError("an integration step needs 'integration'")
        if self.activity is ActivityKind.ENQUEUE_JOB:
            queue = self.params.get("queue")
            if queue not in {q.value for q in JobQueue}:
                raise ValueError(
                    f"enqueue_job needs params.queue, one of {[q.value for q in JobQueue]}"
                )
        return self


class SignalStep(_Model):
    """A wait for a named signal, such as a human approval or a callback."""

    kind: Literal["signal"] = "signal"
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    signal: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    detail: str = Field(min_length=1, description="text while waiting")
    done: str = Field(min_length=1, description="text once the signal arrived")
    timeout_s: float = Field(gt=0)
    on_timeout: OnTimeout = OnTimeout.FAIL
    human: bool = True
    response: DurationModel = Field(
        default_factory=lambda: Exponential(mean_s=3600.0),
        description="how long the signal takes to arrive, for simulation",
    )
    reject_values: tuple[str, ...] = Field(
        default=("rejected", "denied"),
        description="payload.decision values that end the workflow as failed",
    )


Step = Annotated[ActivityStep | SignalStep, Field(discriminator="kind")]


class WorkflowPlan(_Model):
    """A named workflow definition: the plan the Temporal workflow interprets."""

    name: str = Field(min_length=1)
    task_queue: TaskQueue
    description: str = ""
    category: str | None = None
    steps: tuple[Step, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> WorkflowPlan:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"duplicate step id {step.id!r}")
            seen.add(step.id)
        return self

    @property
    def signals(self) -> frozenset[str]:
        """Names of every signal this plan can take."""
        return frozenset(s.signal for s in self.steps if isinstance(s, SignalStep))

    def awaited_signals(self, index: int, over: Collection[str]) -> list[str]:
        """Names of the signals the plan still acts on, standing at step ``index`` with the
        signal steps ``over`` (received or timed out) behind it, in plan order."""
        names = (
            s.signal for s in self.steps[index:] if isinstance(s, SignalStep) and s.id not in over
        )
        return list(dict.fromkeys(names))

    def step(self, step_id: str) -> ActivityStep | SignalStep:
        """The step with this id."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


class Catalog(Mapping[str, WorkflowPlan]):
    """Workflow plans by name; read-only."""

    def __init__(self, plans: Mapping[str, WorkflowPlan]) -> None:
        self._plans = dict(plans)

    def __getitem__(self, name: str) -> WorkflowPlan:
        return self._plans[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._plans)

    def __len__(self) -> int:
        return len(self._plans)

    def __repr__(self) -> str:
        return f"Catalog({sorted(self._plans)})"

    @property
    def names(self) -> list[str]:
        """Known workflow names, sorted."""
        return sorted(self._plans)


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(root)"
    return f"field {loc}: {first['msg']}"


def _documents(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from exc
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        items = doc if isinstance(doc, list) else [doc]
        for item in items:
            yield i, item


def load_catalog(path: Path | str | None = None) -> Catalog:
    """Load every ``*.yaml`` workflow definition under ``path`` (default ``data/definitions``).

    A file may hold one definition, a list, or several YAML documents. Errors name the file,
    the definition and the field.
    """
    root = Path(path) if path is not None else DATA_DIR / "definitions"
    files = sorted(root.glob("*.yaml")) if root.is_dir() else [root]
    if not files or not files[0].exists():
        raise CatalogError(f"{root}: no workflow definitions found")
    plans: dict[str, WorkflowPlan] = {}
    for file in files:
        for _, raw in _documents(file):
            name = raw.get("name", "<unnamed>") if isinstance(raw, dict) else "<not a mapping>"
            try:
                plan = WorkflowPlan.model_validate(raw)
            except ValidationError as exc:
                raise CatalogError(f"{file}: definition {name!r}: {_describe(exc)}") from exc
            if plan.name in plans:
                raise CatalogError(f"{file}: definition {plan.name!r}: defined twice")
            plans[plan.name] = plan
    return Catalog(plans)
