"""The timeline event schema: the one row shape that the service, simulator and analytics share.

A timeline is a sequence of rows with the columns of :data:`TIMELINE_COLUMNS`. The service builds
them from real Temporal histories, the simulator emits them, the analytics read them.
``timestamp`` is a UTC datetime in frames and Unix seconds on the wire.

Besides the API's ``event``, ``timestamp`` and ``detail`` (a text for people, built by
:mod:`protocol_lab.domain.details`), a row carries what analyses read back, as structured fields:
``step`` (the plan's step id), ``attempt`` (the attempt number of an activity, 1-based),
``outcome`` (why a step or the workflow ended, an :class:`Outcome`) and ``actor`` (who acted: the
sender of a signal, the approver of a rejection). The three are null where they do not apply.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

import polars as pl

from protocol_lab.domain.errors import TimelineSchemaError
from protocol_lab.domain.queues import TaskQueue

__all__ = [
    "OPTIONAL_COLUMNS",
    "TERMINAL_EVENTS",
    "TIMELINE_COLUMNS",
    "TIMELINE_SCHEMA",
    "EventType",
    "Outcome",
    "TimelineEvent",
    "TriggerType",
    "WorkflowStatus",
    "events_to_frame",
    "validate_frame",
    "validate_record",
    "wire_events",
]


class EventType(StrEnum):
    """The event vocabulary of a timeline."""

    WORKFLOW_STARTED = "workflow_started"
    ACTIVITY_STARTED = "activity_started"
    ACTIVITY_COMPLETED = "activity_completed"
    ACTIVITY_FAILED = "activity_failed"
    SIGNAL_RECEIVED = "signal_received"
    WORKFLOW_PAUSED = "workflow_paused"
    WORKFLOW_RESUMED = "workflow_resumed"
    COMPENSATION_STARTED = "compensation_started"
    COMPENSATION_COMPLETED = "compensation_completed"
    WORKFLOW_COMPLETED = "workflow_completed"
    WORKFLOW_FAILED = "workflow_failed"
    WORKFLOW_CANCELLED = "workflow_cancelled"


TERMINAL_EVENTS: Final = frozenset(
    {EventType.WORKFLOW_COMPLETED, EventType.WORKFLOW_FAILED, EventType.WORKFLOW_CANCELLED}
)


class Outcome(StrEnum):
    """Why a step or a workflow ended: the ``outcome`` column of a closing event."""

    COMPLETED = "completed"
    TIMED_OUT = "timed_out"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    FAILED = "failed"


class TriggerType(StrEnum):
    """How a workflow was initiated."""

    AUTOMATIC = "automatic"
    MANUAL = "manual"
    SCHEDULED = "scheduled"
    EVENT_BASED = "event_based"


class WorkflowStatus(StrEnum):
    """The API's workflow statuses (docs/architecture.md maps Temporal's onto them)."""

    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    ARCHIVED = "archived"


TIMELINE_COLUMNS: Final = (
    "workflow_id",
    "workflow_name",
    "task_queue",
    "trigger_type",
    "event",
    "timestamp",
    "detail",
    "step",
    "attempt",
    "outcome",
    "actor",
)
# columns a timeline may leave out: they are then null
OPTIONAL_COLUMNS: Final = ("detail", "step", "attempt", "outcome", "actor")

_DTYPES: Final[dict[str, pl.DataType]] = {
    "workflow_id": pl.String(),
    "workflow_name": pl.String(),
    "task_queue": pl.Enum([q.value for q in TaskQueue]),
    "trigger_type": pl.Enum([t.value for t in TriggerType]),
    "event": pl.Enum([e.value for e in EventType]),
    "timestamp": pl.Datetime("us", "UTC"),
    "detail": pl.String(),
    "step": pl.String(),
    "attempt": pl.Int32(),
    "outcome": pl.Enum([o.value for o in Outcome]),
    "actor": pl.String(),
}
TIMELINE_SCHEMA: Final = pl.Schema(_DTYPES)

_REQUIRED: Final = ("workflow_id", "workflow_name", "task_queue", "trigger_type", "event")
_ENUMS: Final[dict[str, frozenset[str]]] = {
    "task_queue": frozenset(q.value for q in TaskQueue),
    "trigger_type": frozenset(t.value for t in TriggerType),
    "event": frozenset(e.value for e in EventType),
}
_OUTCOMES: Final = frozenset(o.value for o in Outcome)


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One timeline row. ``timestamp`` is Unix seconds (float) so the wire form is direct;
    ``attempt``, ``outcome`` and ``actor`` are the structured fields (see the module docstring)."""

    workflow_id: str
    workflow_name: str
    task_queue: str
    trigger_type: str
    event: str
    timestamp: float
    detail: str | None = None
    step: str | None = None
    attempt: int | None = None
    outcome: str | None = None
    actor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as a plain dict, in column order."""
        return asdict(self)


def _coerce_timestamp(value: Any, *, row: int) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, bool):
        raise TimelineSchemaError("must be Unix seconds or a datetime", row=row, field="timestamp")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise TimelineSchemaError("must be a finite number", row=row, field="timestamp")
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                return datetime.fromtimestamp(float(value), tz=UTC)
            except ValueError:
                raise TimelineSchemaError(
                    f"cannot parse {value!r} as a time", row=row, field="timestamp"
                ) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise TimelineSchemaError(
        f"must be Unix seconds or a datetime, got {type(value).__name__}",
        row=row,
        field="timestamp",
    )


def validate_record(record: Mapping[str, Any], *, row: int = 0) -> dict[str, Any]:
    """Check one row against the schema and return it normalised (timestamp as UTC datetime).

    Raises :class:`TimelineSchemaError` naming the row and the field at fault.
    """
    if not isinstance(record, Mapping):
        raise TimelineSchemaError(f"must be an object, got {type(record).__name__}", row=row)
    for name in _REQUIRED:
        value = record.get(name)
        if value is None or value == "":
            raise TimelineSchemaError("is required", row=row, field=name)
        if not isinstance(value, str):
            raise TimelineSchemaError(
                f"must be a string, got {type(value).__name__}", row=row, field=name
            )
    for name, allowed in _ENUMS.items():
        if record[name] not in allowed:
            raise TimelineSchemaError(
                f"{record[name]!r} is not one of {sorted(allowed)}", row=row, field=name
            )
    if record.get("timestamp") is None:
        raise TimelineSchemaError("is required", row=row, field="timestamp")
    out = {name: record.get(name) for name in TIMELINE_COLUMNS}
    out["timestamp"] = _coerce_timestamp(record["timestamp"], row=row)
    for name in ("detail", "step", "actor"):
        if out[name] is not None and not isinstance(out[name], str):
            out[name] = str(out[name])
    attempt = out["attempt"]
    if attempt is not None and (isinstance(attempt, bool) or not isinstance(attempt, int)):
        raise TimelineSchemaError(
            f"must be a whole number, got {type(attempt).__name__}", row=row, field="attempt"
        )
    if attempt is not None and not 1 <= attempt <= 1_000_000:
        raise TimelineSchemaError("must be within 1-1000000", row=row, field="attempt")
    if out["outcome"] is not None and out["outcome"] not in _OUTCOMES:
        raise TimelineSchemaError(
            f"{out['outcome']!r} is not one of {sorted(_OUTCOMES)}", row=row, field="outcome"
        )
    return out


def events_to_frame(
    records: Iterable[Mapping[str, Any] | TimelineEvent],
) -> pl.DataFrame:
    """Validate rows and build a timeline frame with :data:`TIMELINE_SCHEMA`."""
    rows = [
        validate_record(r.to_dict() if isinstance(r, TimelineEvent) else r, row=i)
        for i, r in enumerate(records)
    ]
    return (
        pl.DataFrame(rows, schema=TIMELINE_SCHEMA, orient="row")
        if rows
        else TIMELINE_SCHEMA.to_frame()
    )


def validate_frame(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Check columns and cast a frame to :data:`TIMELINE_SCHEMA`, lazily.

    Missing columns raise at once; values outside the vocabulary raise when the frame is collected,
    through polars' strict Enum cast. The analytics loaders report row-level errors.
    """
    lf = frame.lazy()
    present = lf.collect_schema().names()
    missing = [c for c in TIMELINE_COLUMNS if c not in present and c not in OPTIONAL_COLUMNS]
    if missing:
        raise TimelineSchemaError(f"missing columns {missing}", field=missing[0])
    extras = [pl.lit(None).alias(c) for c in OPTIONAL_COLUMNS if c not in present]
    if extras:
        lf = lf.with_columns(extras)
    ts_dtype = lf.collect_schema()["timestamp"]
    ts = pl.col("timestamp")
    if ts_dtype.is_numeric():
        ts_expr = (ts.cast(pl.Float64) * 1_000_000).cast(pl.Int64).cast(pl.Datetime("us", "UTC"))
    elif ts_dtype == pl.String:
        ts_expr = ts.str.to_datetime(time_zone="UTC", time_unit="us")
    elif isinstance(ts_dtype, pl.Datetime) and ts_dtype.time_zone is None:
        ts_expr = ts.dt.replace_time_zone("UTC").dt.cast_time_unit("us")
    else:
        ts_expr = ts.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    return lf.select(
        [
            pl.col(name).cast(dtype, strict=True) if name != "timestamp" else ts_expr.alias(name)
            for name, dtype in TIMELINE_SCHEMA.items()
        ]
    )


def wire_events(events: Sequence[TimelineEvent], *, precise: bool = False) -> list[dict[str, Any]]:
    """The API's timeline array: event, timestamp (whole Unix seconds; with ``precise``, a float
    with the sub-second part), detail, and beside them the structured fields ``step``,
    ``attempt``, ``outcome`` and ``actor`` (null where they do not apply)."""
    return [
        {
            "event": e.event,
            "timestamp": float(e.timestamp) if precise else int(e.timestamp),
            "detail": e.detail,
            "step": e.step,
            "attempt": e.attempt,
            "outcome": e.outcome,
            "actor": e.actor,
        }
        for e in events
    ]
