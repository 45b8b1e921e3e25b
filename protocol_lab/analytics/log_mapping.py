"""How the columns of a foreign event log map onto a timeline: :class:`LogMapping`.

A log is either an *activity log* (one row per event of an activity, with an optional lifecycle
such as XES's ``start`` / ``complete``) or a *state log* (one row per update of a case, each
giving the state the case is in from then on, as ServiceNow's audit exports do). The mapping
names the columns; times are read with its format in its time zone and kept in UTC.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from protocol_lab.domain import TimelineSchemaError

__all__ = ["ISO_FORMATS", "LogMapping"]

ISO_FORMATS: Final = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
)
"""The ISO 8601 layouts read when a mapping gives no format (each also with an offset)."""

_UTC: Final = pl.Datetime("us", "UTC")
_TUPLES: Final = ("attributes", "final", "missing")


def _naive_to_utc(parsed: pl.Expr, time_zone: str) -> pl.Expr:
    # a wall-clock time that a DST change skips reads as unreadable, a repeated one as its first
    return (
        parsed.dt.replace_time_zone(time_zone, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
        .dt.cast_time_unit("us")
    )


@dataclass(frozen=True, slots=True)
class LogMapping:
    """The columns of a log and how to read them (``None``: the log has no such column).

    - ``case``: the case id (the timeline's ``workflow_id``); ``process`` names the timeline's
      ``workflow_name`` for every case.
    - ``activity`` *or* ``state``: an activity log's activity, or a state log's state after
      each update (becoming the timeline's ``step``). A state log turns into intervals: the
      case is in a state from the update that entered it until the next change of state, group
      or resource, each interval an ``activity_started`` / ``activity_completed`` pair.
    - ``timestamp`` with ``timestamp_format`` (strftime, e.g. ``%d-%m-%Y %H:%M``; None reads ISO
      8601 and Unix seconds) in ``time_zone`` (for times written without an offset).
    - ``lifecycle`` (activity logs): ``start`` / ``complete`` map to ``activity_started`` /
      ``activity_completed``; other transitions keep their own name as the event; a row without
      one is a ``complete``.
    - ``resource`` (the ``actor``), ``group`` (the ``task_queue``), ``trigger`` (the
      ``trigger_type``, e.g. the contact channel).
    - ``priority``, ``category`` and ``attributes``: case attributes, the last value given in
      the case, as columns of :attr:`Timelines.workflows`; ``attribute_prefix`` keeps every
      column so prefixed too (XES's ``case:``), named without the prefix.
    - ``opened``: when the case opened, if before its first row; ``order``: a number that
      orders rows of a case with equal times (ServiceNow's ``sys_mod_count``).
    - ``final``: states or activities that close a case when its last row is one of them;
      ``complete_cases``: every case closed at its last row (logs of finished cases).
    - ``missing``: values that mean "no value" (ServiceNow writes ``?``).
    """

    case: str
    timestamp: str
    activity: str | None = None
    state: str | None = None
    timestamp_format: str | None = None
    time_zone: str = "UTC"
    lifecycle: str | None = None
    resource: str | None = None
    group: str | None = None
    trigger: str | None = None
    priority: str | None = None
    category: str | None = None
    attributes: tuple[str, ...] = ()
    attribute_prefix: str | None = None
    opened: str | None = None
    order: str | None = None
    final: tuple[str, ...] = ()
    complete_cases: bool = False
    process: str = "log"
    missing: tuple[str, ...] = ("",)

    def __post_init__(self) -> None:
        if (self.activity is None) == (self.state is None):
            raise TimelineSchemaError("mapping: give an activity column or a state column")
        if self.lifecycle is not None and self.state is not None:
            raise TimelineSchemaError("mapping: a lifecycle column goes with activity, not state")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise TimelineSchemaError(
                f"mapping: unknown time zone {self.time_zone!r}", field="time_zone"
            ) from None
        if not self.process:
            raise TimelineSchemaError("mapping: process must not be empty", field="process")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogMapping:
        """A mapping from plain data (a YAML or JSON object); unknown keys are refused."""
        return cls(**_checked_fields(data))

    def updated(self, changes: Mapping[str, Any]) -> LogMapping:
        """This mapping with some fields changed (e.g. a preset in another time zone)."""
        fields = _checked_fields(changes)
        if "activity" in fields and "state" not in fields:
            fields["state"] = None
        if "state" in fields and "activity" not in fields:
            fields["activity"] = None
            fields["lifecycle"] = None
        return dataclasses.replace(self, **fields)

    @property
    def label(self) -> str:
        """The activity or state column."""
        return self.activity if self.activity is not None else str(self.state)

    @property
    def is_state_log(self) -> bool:
        """Whether rows are state snapshots (turned into intervals)."""
        return self.state is not None

    def described_format(self) -> str:
        """The time layout in words, for error messages."""
        layout = self.timestamp_format or "ISO 8601"
        return f"{layout} in {self.time_zone}"

    def time(self, column: str, dtype: pl.DataType) -> pl.Expr:
        """An expression reading ``column`` (of ``dtype``) as UTC microseconds; null where the
        value cannot be read."""
        col = pl.col(column)
        if dtype.is_numeric():
            return (col.cast(pl.Float64) * 1_000_000).round().cast(pl.Int64).cast(_UTC)
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is None:
                return _naive_to_utc(col, self.time_zone)
            return col.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        if isinstance(dtype, pl.Date):
            return _naive_to_utc(col.cast(pl.Datetime("us")), self.time_zone)
        if dtype == pl.Null:
            return pl.lit(None, dtype=_UTC)
        text = col.cast(pl.String).str.strip_chars()
        if self.timestamp_format is not None:
            fmt = self.timestamp_format
            if "%z" in fmt or "%:z" in fmt:
                return text.str.to_datetime(
                    format=fmt, time_unit="us", time_zone="UTC", strict=False
                )
            return _naive_to_utc(
                text.str.to_datetime(format=fmt, time_unit="us", strict=False), self.time_zone
            )
        zulu = text.str.replace(r"Z$", "+00:00")
        aware = [
            zulu.str.to_datetime(format=f + "%z", time_unit="us", time_zone="UTC", strict=False)
            for f in ISO_FORMATS
        ]
        naive = [
            _naive_to_utc(
                text.str.to_datetime(format=f, time_unit="us", strict=False), self.time_zone
            )
            for f in ISO_FORMATS
        ]
        seconds = text.cast(pl.Float64, strict=False)
        unix = (seconds * 1_000_000).round().cast(pl.Int64).cast(_UTC)
        return pl.coalesce(*aware, *naive, unix)


def _checked_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(LogMapping)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TimelineSchemaError(
            f"mapping: unknown keys {unknown}; known: {sorted(known)}", field=unknown[0]
        )
    fields = dict(data)
    for name, value in fields.items():
        if name in _TUPLES:
            if isinstance(value, str):
                fields[name] = (value,)
            elif isinstance(value, list | tuple):
                fields[name] = tuple(str(v) for v in value)
            else:
                raise TimelineSchemaError(f"mapping: {name} must be a list of names", field=name)
        elif name == "complete_cases":
            if not isinstance(value, bool):
                raise TimelineSchemaError(f"mapping: {name} must be true or false", field=name)
        elif value is not None and not isinstance(value, str):
            raise TimelineSchemaError(f"mapping: {name} must be text", field=name)
    return fields
