"""SLA targets: how long a workflow may take, per task queue, workflow name or priority."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocol_lab.domain.errors import SlaConfigError
from protocol_lab.domain.paths import DATA_DIR
from protocol_lab.domain.queues import TaskQueue

__all__ = ["BusinessCalendar", "SlaConfig", "SlaTarget", "load_sla_config"]


class SlaTarget(BaseModel):
    """A cycle-time target for one scope (exactly one of task_queue, workflow_name, priority)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_queue: TaskQueue | None = None
    workflow_name: str | None = None
    priority: str | None = None
    target_hours: float = Field(gt=0)
    business_hours: bool = False
    at_risk_fraction: float = Field(default=0.8, gt=0, lt=1)

    @model_validator(mode="after")
    def _one_scope(self) -> SlaTarget:
        scopes = [s for s in (self.task_queue, self.workflow_name, self.priority) if s is not None]
        if len(scopes) != 1:
            raise ValueError("give exactly one of task_queue, workflow_name, priority")
        return self

    @property
    def scope(self) -> tuple[str, str]:
        """(column, value) this target applies to."""
        if self.task_queue is not None:
            return ("task_queue", self.task_queue.value)
        if self.workflow_name is not None:
            return ("workflow_name", self.workflow_name)
        return ("priority", str(self.priority))

    @property
    def target_seconds(self) -> float:
        """The target in seconds."""
        return self.target_hours * 3600.0


class BusinessCalendar(BaseModel):
    """Working hours in a time zone, working weekdays (0 = Monday) and holidays (ISO dates)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = "UTC"
    start: str = Field(default="09:00", pattern=r"^\d{2}:\d{2}$")
    end: str = Field(default="17:00", pattern=r"^\d{2}:\d{2}$")
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    holidays: tuple[str, ...] = ()


class SlaConfig(BaseModel):
    """The SLA file: a business calendar and a list of targets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calendar: BusinessCalendar = Field(default_factory=BusinessCalendar)
    targets: tuple[SlaTarget, ...] = ()


def load_sla_config(path: Path | str | None = None) -> SlaConfig:
    """Read ``data/sla.yaml`` (or ``path``); errors name the file and the field."""
    file = Path(path) if path is not None else DATA_DIR / "sla.yaml"
    try:
        raw: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SlaConfigError(f"{file}: {exc}") from exc
    try:
        return SlaConfig.model_validate(raw or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise SlaConfigError(f"{file}: field {loc}: {err['msg']}") from exc
