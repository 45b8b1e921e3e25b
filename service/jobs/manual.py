"""The jobs an operator may add by hand: per queue, the job names allowed and the data each takes.

Queues whose jobs reach people or addresses (email, notification, webhook-delivery) and the
append-only audit trail take no manual jobs: only the service enqueues there. Every other
queue lists its job names, each with a model of its data; a field not in the model is refused.
A caller's job id is namespaced under ``manual-`` so it can never take the id of a job the
service enqueues itself (``audit-event-*``, ``sla-*``, ``ai-*``, ``email-*`` ...).
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol_lab.domain import JobQueue

__all__ = [
    "JOB_ID_PATTERN",
    "MANUAL_JOBS",
    "MANUAL_PREFIX",
    "ManualJobError",
    "describe_manual_jobs",
    "manual_job_id",
    "validate_manual_job",
]

MANUAL_PREFIX: Final = "manual-"
JOB_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReportData(_Data):
    """An SLA report of a timeline file."""

    timelines: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="a timeline file, relative to STATE_DIR; default: the shipped sample",
    )
    by: Literal["task_queue", "workflow_name", "trigger_type", "priority"] = Field(
        default="task_queue", description="what the report groups by"
    )


class ExportData(_Data):
    """An export of every ticket; takes no data."""


class MaintenanceData(_Data):
    """Housekeeping: prune processed outbox events."""

    retention_days: float = Field(
        default=7, ge=0, le=3650, description="keep processed events this many days"
    )


class TicketData(_Data):
    """Work on one ticket."""

    ticket_id: str = Field(pattern=r"^TKT-[0-9]{1,12}$", description="the ticket, e.g. TKT-7")


_SYNC: Final[dict[str, type[_Data]]] = {"resync": TicketData}

MANUAL_JOBS: Final[dict[JobQueue, dict[str, type[_Data]]]] = {
    JobQueue.REPORT_GENERATION: {"sla": ReportData},
    JobQueue.EXPORT: {"tickets": ExportData},
    JobQueue.MAINTENANCE: {"prune": MaintenanceData},
    JobQueue.AI_INFERENCE: {"suggest": TicketData},
    JobQueue.SLA_TIMER: {"response_check": TicketData},
    JobQueue.SYNC: _SYNC,
    JobQueue.ASSET_SYNC: _SYNC,
    JobQueue.FLEET_SYNC: _SYNC,
}


class ManualJobError(ValueError):
    """A manual job that is not allowed; ``forbidden`` when its queue takes none at all."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


def _fields(model: type[_Data]) -> str:
    return ", ".join(model.model_fields) or "none"


def validate_manual_job(queue: JobQueue, name: str, data: dict[str, Any]) -> dict[str, Any]:
    """The job's data as validated for its queue and name; :class:`ManualJobError` if refused."""
    names = MANUAL_JOBS.get(queue)
    if names is None:
        open_queues = ", ".join(q.value for q in MANUAL_JOBS)
        raise ManualJobError(
            f"queue {queue.value!r} takes no jobs added by hand; queues that do: {open_queues}",
            forbidden=True,
        )
    model = names.get(name)
    if model is None:
        raise ManualJobError(f"{queue.value} takes no job named {name!r}; it takes {sorted(names)}")
    try:
        return model.model_validate(data).model_dump(exclude_none=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ManualJobError(
            f"data.{where}: {err['msg']} ({queue.value} {name!r} takes: {_fields(model)})"
        ) from exc


def manual_job_id(job_id: str) -> str:
    """The id a caller's job gets: always under ``manual-``."""
    return job_id if job_id.startswith(MANUAL_PREFIX) else MANUAL_PREFIX + job_id


def describe_manual_jobs() -> str:
    """The allow-list as Markdown, for the API documentation."""
    lines = ["| queue | job name | data fields |", "|---|---|---|"]
    for queue, names in MANUAL_JOBS.items():
        for name, model in names.items():
            fields = [
                f"`{field}`" + (f": {info.description}" if info.description else "")
                for field, info in model.model_fields.items()
            ]
            lines.append(f"| {queue.value} | `{name}` | {'; '.join(fields) or 'none'} |")
    closed = ", ".join(q.value for q in JobQueue if q not in MANUAL_JOBS)
    lines += ["", f"Other queues ({closed}) take no jobs added by hand (403)."]
    return "\n".join(lines)
