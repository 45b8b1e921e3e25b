"""SLA targets: how long a workflow may take, per task queue, workflow name or priority."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocol_lab.domain.errors import SlaConfigError
from protocol_lab.domain.paths import DATA_DIR
from protocol_lab.domain.queues import TaskQueue

__all__ = ["BusinessCalendar", "SlaConfig", "SlaTarget", "load_sla_config"]


class SlaTarget(BaseModel):
    """A cycle-time target for one scope: exactly one of task_queue, workflow_name, priority,
    category, or group (a foreign log's group in its own words, e.g. a ServiceNow assignment
    group: the timeline's ``task_queue`` column, which ``task_queue`` here names only from
    protocol-lab's own queues)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_queue: TaskQueue | None = None
    workflow_name: str | None = None
    priority: str | None = None
    category: str | None = None
    group: str | None = None
    target_hours: float = Field(gt=0)
    business_hours: bool = False
    at_risk_fraction: float = Field(default=0.8, gt=0, lt=1)
    calendar: str | None = Field(
        default=None,
        description="the named calendar (of the file's ``calendars``) its business time runs"
        " on; the file's ``calendar`` if not given",
    )

    @model_validator(mode="after")
    def _one_scope(self) -> SlaTarget:
        given = (self.task_queue, self.workflow_name, self.priority, self.category, self.group)
        scopes = [s for s in given if s is not None]
        if len(scopes) != 1:
            raise ValueError(
                "give exactly one of task_queue, workflow_name, priority, category, group"
            )
        return self

    @property
    def scope(self) -> tuple[str, str]:
        """(column, value) this target applies to."""
        if self.task_queue is not None:
            return ("task_queue", self.task_queue.value)
        if self.group is not None:
            return ("task_queue", self.group)
        if self.workflow_name is not None:
            return ("workflow_name", self.workflow_name)
        if self.category is not None:
            return ("category", self.category)
        return ("priority", str(self.priority))

    @property
    def target_seconds(self) -> float:
        """The target in seconds."""
        return self.target_hours * 3600.0


class BusinessCalendar(BaseModel):
    """Working hours in a time zone, working weekdays (0 = Monday) and holidays: ISO dates of
    its own and, with ``country`` (and ``subdivision``), the public holidays the ``holidays``
    package lists for them (``GB`` / ``ENG``, ``US`` / ``CA``, ``DE`` / ``BY``, ...).

    ``end: "24:00"`` closes at midnight. :mod:`protocol_lab.domain.business_time` is the one
    arithmetic over a calendar, for the analytics and the simulator alike.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = "UTC"
    start: str = Field(default="09:00", pattern=r"^\d{2}:\d{2}$")
    end: str = Field(default="17:00", pattern=r"^\d{2}:\d{2}$")
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    holidays: tuple[str, ...] = ()
    country: str | None = Field(default=None, min_length=2, max_length=3)
    subdivision: str | None = Field(default=None, min_length=1, max_length=10)

    @model_validator(mode="after")
    def _check(self) -> BusinessCalendar:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        try:
            opens = time.fromisoformat(self.start)
            closes = None if self.end == "24:00" else time.fromisoformat(self.end)
        except ValueError:
            raise ValueError(
                f"start and end must be HH:MM times (end may be 24:00), got {self.start}-{self.end}"
            ) from None
        if closes is not None and closes <= opens:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        if any(not 0 <= d <= 6 for d in self.weekdays):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        for day in self.holidays:
            try:
                date.fromisoformat(day)
            except ValueError:
                raise ValueError(f"holiday {day!r} is not an ISO date (YYYY-MM-DD)") from None
        if self.subdivision is not None and self.country is None:
            raise ValueError("a subdivision needs its country")
        if self.country is not None:
            _check_country(self.country, self.subdivision)
        return self


def _check_country(country: str, subdivision: str | None) -> None:
    import holidays

    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(f"country {country!r} is not one the holidays package knows")
    if subdivision is not None and subdivision not in supported[country]:
        known = ", ".join(supported[country][:20])
        raise ValueError(f"{country} has no subdivision {subdivision!r}; e.g. {known}")


class SlaConfig(BaseModel):
    """The SLA file: a business calendar, named calendars for some targets (a task queue served
    around the clock, a priority with its own hours), and a list of targets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calendar: BusinessCalendar = Field(default_factory=BusinessCalendar)
    calendars: dict[str, BusinessCalendar] = Field(default_factory=dict)
    targets: tuple[SlaTarget, ...] = ()

    @model_validator(mode="after")
    def _known_calendars(self) -> SlaConfig:
        for target in self.targets:
            if target.calendar is not None and target.calendar not in self.calendars:
                known = ", ".join(sorted(self.calendars)) or "none"
                raise ValueError(
                    f"target {target.scope[1]!r} names calendar {target.calendar!r};"
                    f" calendars: {known}"
                )
        return self

    def calendar_of(self, target: SlaTarget) -> BusinessCalendar:
        """The calendar a target's business time runs on."""
        return self.calendars[target.calendar] if target.calendar else self.calendar


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
