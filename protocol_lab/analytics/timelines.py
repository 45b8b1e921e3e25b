"""The ``Timelines`` value: workflow timelines as a lazy events frame plus one row per workflow.

Loaders read timelines from polars/pandas frames, Python records, JSON / NDJSON / Parquet / CSV
files, the protocol-lab HTTP API and straight from Temporal histories. Every loader checks rows
against :data:`protocol_lab.domain.TIMELINE_SCHEMA`: a bad row raises
:class:`~protocol_lab.domain.TimelineSchemaError` naming the row and the field, or, with
``on_error="set_aside"``, is kept out of the frame and listed in :attr:`Timelines.rejected`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import polars as pl

from protocol_lab.analytics._case_order import (
    find_case_order,
    known_order,
    per_case_columns,
    remember,
)
from protocol_lab.analytics._frames import ENGINE
from protocol_lab.analytics.vocabulary import (
    VOCABULARY_KEY,
    Vocabulary,
    schema_for,
    vocabulary_of,
)
from protocol_lab.domain import (
    OPTIONAL_COLUMNS,
    TIMELINE_COLUMNS,
    TIMELINE_SCHEMA,
    EventType,
    Outcome,
    TaskQueue,
    TimelineEvent,
    TimelineSchemaError,
    TriggerType,
    validate_record,
)

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd
    from matplotlib.figure import Figure

    from protocol_lab.analytics.conformance import Conformance
    from protocol_lab.analytics.itsm import Level
    from protocol_lab.analytics.logs import LogMapping
    from protocol_lab.analytics.process_map import ProcessMap
    from protocol_lab.analytics.sla import SlaSummary
    from protocol_lab.domain import Catalog, SlaConfig

__all__ = [
    "OUTCOMES",
    "REJECTED_SCHEMA",
    "WORKFLOW_SCHEMA",
    "OnError",
    "PlotNamespace",
    "Timelines",
]

OnError = Literal["raise", "set_aside"]

OUTCOMES: Final = ("completed", "failed", "cancelled", "open")
"""How a workflow ended: one of the terminal events, or still ``open``."""

WORKFLOW_SCHEMA: Final = pl.Schema(
    {
        "workflow_id": pl.String(),
        "workflow_name": pl.String(),
        "task_queue": TIMELINE_SCHEMA["task_queue"],
        "trigger_type": TIMELINE_SCHEMA["trigger_type"],
        "started_at": pl.Datetime("us", "UTC"),
        "completed_at": pl.Datetime("us", "UTC"),
        "last_event_at": pl.Datetime("us", "UTC"),
        "outcome": pl.Enum(list(OUTCOMES)),
        "status": pl.String(),
        "end_detail": pl.String(),
        "cycle_time_s": pl.Float64(),
        "n_events": pl.UInt32(),
    }
)
"""Columns of :attr:`Timelines.workflows` before any caller-given attribute columns."""

REJECTED_SCHEMA: Final = pl.Schema({"row": pl.Int64(), "field": pl.String(), "error": pl.String()})
"""Columns of :attr:`Timelines.rejected`: the zero-based input row, the field at fault, why."""

_ENUM_VALUES: Final[dict[str, list[str]]] = {
    "task_queue": [q.value for q in TaskQueue],
    "trigger_type": [t.value for t in TriggerType],
    "event": [e.value for e in EventType],
}
_REQUIRED: Final = ("workflow_id", "workflow_name", "task_queue", "trigger_type", "event")
# a foreign log may have no groups or channels; its names are its own, so only presence counts
_REQUIRED_FOREIGN: Final = ("workflow_id", "workflow_name", "event")
_TERMINAL_OUTCOME: Final = {
    EventType.WORKFLOW_COMPLETED.value: "completed",
    EventType.WORKFLOW_FAILED.value: "failed",
    EventType.WORKFLOW_CANCELLED.value: "cancelled",
}
_API_STATUS: Final = {"completed": "completed", "failed": "failed", "cancelled": "failed"}


def _parse_timestamp(dtype: pl.DataType) -> pl.Expr:
    """An expression turning a timestamp column of any supported dtype into UTC microseconds.

    Numbers are Unix seconds; strings are ISO-8601 or Unix seconds; naive datetimes are UTC.
    Values that cannot be read become null (and are reported by the row check).
    """
    ts = pl.col("timestamp")
    from_seconds = (ts.cast(pl.Float64, strict=False) * 1_000_000).round().cast(pl.Int64)
    if dtype.is_numeric():
        return from_seconds.cast(pl.Datetime("us", "UTC"))
    if dtype == pl.String:
        text = ts.str.strip_chars().str.replace(r"Z$", "+00:00")
        aware = [
            text.str.to_datetime(format=f, time_unit="us", time_zone="UTC", strict=False)
            for f in ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z")
        ]
        naive = [
            text.str.to_datetime(format=f, time_unit="us", strict=False).dt.replace_time_zone("UTC")
            for f in ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f")
        ]
        return pl.coalesce(*aware, *naive, from_seconds.cast(pl.Datetime("us", "UTC")))
    if dtype == TIMELINE_SCHEMA["timestamp"]:
        return ts  # already UTC microseconds (typed Parquet): no conversion pass
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return ts.dt.replace_time_zone("UTC").dt.cast_time_unit("us")
        return ts.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if dtype == pl.Null:
        return pl.lit(None, dtype=pl.Datetime("us", "UTC"))
    raise TimelineSchemaError(f"unsupported dtype {dtype}", field="timestamp")


def _checked(
    frame: pl.DataFrame | pl.LazyFrame, vocabulary: Vocabulary = "protocol-lab"
) -> tuple[pl.LazyFrame, pl.Expr, list[pl.Expr]]:
    """Normalise a raw frame to string/datetime columns and give the per-row check expressions.

    ``(frame, problem, failing)``: the problem expression is null for a good row and
    ``"field: message"`` for the first failing field of a bad one; ``failing`` holds each
    check's condition, true on a row it fails. A foreign vocabulary checks presence, times and
    attempts, not names.
    """
    own = vocabulary == "protocol-lab"
    target = schema_for(vocabulary)
    lf = frame.lazy()
    names = lf.collect_schema().names()
    missing = [c for c in TIMELINE_COLUMNS if c not in names and c not in OPTIONAL_COLUMNS]
    if missing:
        raise TimelineSchemaError(f"missing columns {missing}", field=missing[0])
    schema = lf.collect_schema()
    exprs: list[pl.Expr] = []
    for name in TIMELINE_COLUMNS:
        if name not in names:
            dtype = pl.Int32 if name == "attempt" else pl.String
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
        elif name == "attempt":
            exprs.append(pl.col(name).cast(pl.Int32, strict=False).alias(name))
        elif name == "timestamp":
            exprs.append(_parse_timestamp(schema[name]).alias(name))
        elif schema[name] == target[name]:
            exprs.append(pl.col(name))  # already typed: Enum values are valid by construction
        else:
            exprs.append(pl.col(name).cast(pl.String).alias(name))
    raw_ts = (
        pl.col("timestamp").is_null()
        if "timestamp" in names
        else pl.lit(value=True, dtype=pl.Boolean)
    )
    raw_attempt = pl.col("attempt").is_not_null() if "attempt" in names else pl.lit(value=False)
    lf = lf.with_columns(raw_ts.alias("__ts_missing"), raw_attempt.alias("__attempt_given")).select(
        [*exprs, pl.col("__ts_missing"), pl.col("__attempt_given")]
    )
    checks = _row_checks(schema, own=own)
    problem: pl.Expr = pl.lit(None, dtype=pl.String)
    for cond, message in reversed(checks):
        problem = pl.when(cond).then(pl.lit(message)).otherwise(problem)
    return lf, problem, [cond for cond, _ in checks]


def _row_checks(schema: pl.Schema, *, own: bool) -> list[tuple[pl.Expr, str]]:
    """Each row check of a frame of this ``schema`` (after :func:`_checked`'s normalising):
    its condition, true on a failing row, and its message. ``own``: the project's vocabulary,
    whose names are checked too."""
    checks: list[tuple[pl.Expr, str]] = []
    for name in _REQUIRED if own else _REQUIRED_FOREIGN:
        typed = schema.get(name)
        never_empty = isinstance(typed, pl.Enum) and "" not in typed.categories
        missing_value = (
            pl.col(name).is_null() if never_empty else pl.col(name).is_null() | (pl.col(name) == "")
        )
        checks.append((missing_value, f"{name}: is required"))
        if own and name in _ENUM_VALUES and schema.get(name) != TIMELINE_SCHEMA[name]:
            allowed = _ENUM_VALUES[name]
            checks.append(
                (
                    pl.col(name).is_in(allowed).not_(),
                    f"{name}: not one of {sorted(allowed)}",
                )
            )
    # a typed time column is read as it is: missing there is null here, a condition a Parquet
    # scan can rule out from its statistics
    typed_ts = schema.get("timestamp") == TIMELINE_SCHEMA["timestamp"]
    ts_missing = pl.col("timestamp").is_null() if typed_ts else pl.col("__ts_missing")
    checks.append((ts_missing, "timestamp: is required"))
    checks.append((pl.col("timestamp").is_null(), "timestamp: cannot be read as a time"))
    # a typed attempt is read as it is: given but unreadable cannot happen, and a value below 1
    # alone is a condition a Parquet scan can rule out from its statistics
    typed_attempt = schema.get("attempt") == TIMELINE_SCHEMA["attempt"]
    bad_attempt = (
        pl.col("attempt") < 1
        if typed_attempt
        else pl.col("__attempt_given") & (pl.col("attempt").is_null() | (pl.col("attempt") < 1))
    )
    checks.append((bad_attempt, "attempt: must be a whole number from 1"))
    if own and schema.get("outcome", TIMELINE_SCHEMA["outcome"]) != TIMELINE_SCHEMA["outcome"]:
        allowed = [o.value for o in Outcome]
        checks.append(
            (
                pl.col("outcome").is_not_null() & pl.col("outcome").is_in(allowed).not_(),
                f"outcome: not one of {sorted(allowed)}",
            )
        )
    return checks


def _passes_checks(frame: pl.LazyFrame, vocabulary: Vocabulary) -> bool:
    """Whether no row of ``frame`` fails a row check, each check run as a filter of its own.

    For a Parquet scan this reads each check's own columns only, or nothing at all where the
    file's row-group statistics rule a failure out (no null or empty id, no null time); one
    filter of all checks together reads every column they name. For a source that is parsed
    (CSV), one pass of all checks is cheaper: see :func:`_validate_frame`.
    """
    lf, _, failing = _checked(frame, vocabulary)
    counts = pl.collect_all([lf.filter(cond).select(pl.len()) for cond in failing], engine=ENGINE)
    return all(count.item() == 0 for count in counts)


def _cast(lf: pl.LazyFrame, vocabulary: Vocabulary = "protocol-lab") -> pl.LazyFrame:
    return lf.select([pl.col(n).cast(d) for n, d in schema_for(vocabulary).items()])


def _validate_frame(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    on_error: OnError,
    check: bool,
    vocabulary: Vocabulary = "protocol-lab",
) -> tuple[pl.LazyFrame, pl.DataFrame]:
    """Row-check a frame; raise on the first bad row or split good rows from rejected ones."""
    lf, problem, _ = _checked(frame, vocabulary)
    if not check:
        return _cast(lf, vocabulary), REJECTED_SCHEMA.to_frame()
    flagged = lf.with_row_index("__row").with_columns(problem.alias("__problem"))
    bad = (
        flagged.filter(pl.col("__problem").is_not_null())
        .select(
            pl.col("__row").cast(pl.Int64).alias("row"),
            pl.col("__problem").str.split_exact(": ", 1).struct.field("field_0").alias("field"),
            pl.col("__problem").str.split_exact(": ", 1).struct.field("field_1").alias("error"),
        )
        .collect(engine=ENGINE)
    )
    if on_error == "raise":
        if bad.height:
            first = bad.row(0, named=True)
            raise TimelineSchemaError(first["error"], row=first["row"], field=first["field"])
        return _cast(lf, vocabulary), bad
    good = flagged.filter(pl.col("__problem").is_null())
    return _cast(good, vocabulary), bad


def _workflows(events: pl.LazyFrame) -> pl.LazyFrame:
    """One row per workflow, built lazily from the events in one hash aggregation, no sorts.

    The start and the terminal event's time are the minimum and maximum of columns that are
    null on other events, so no aggregation filters per group; the terminal event and its
    detail are read at the latter's position (nulls never win ``arg_max``).
    """
    event = pl.col("event")
    ts = pl.col("timestamp")
    closed_at = pl.col("__closed_at")
    base = (
        events.with_columns(
            pl.when(event == EventType.WORKFLOW_STARTED.value).then(ts).alias("__started_at"),
            pl.when(event.is_in(list(_TERMINAL_OUTCOME))).then(ts).alias("__closed_at"),
        )
        .group_by("workflow_id")
        .agg(
            pl.col("workflow_name").first(),
            pl.col("task_queue").first(),
            pl.col("trigger_type").first(),
            pl.coalesce(pl.col("__started_at").min(), ts.min()).alias("started_at"),
            ts.max().alias("last_event_at"),
            event.get(ts.arg_max()).alias("__last_event"),
            pl.len().cast(pl.UInt32).alias("n_events"),
            closed_at.max().alias("completed_at"),
            event.get(closed_at.arg_max()).alias("__terminal"),
            pl.col("detail").get(closed_at.arg_max()).alias("end_detail"),
        )
    )
    return _finish_workflows(base)


def _finish_workflows(base: pl.LazyFrame) -> pl.LazyFrame:
    """The per-workflow frame from its aggregates (see :func:`_workflows`): outcome, status and
    cycle time added, helper columns dropped."""
    outcome = _mapped(
        pl.col("__terminal"), _TERMINAL_OUTCOME, default="open", dtype=WORKFLOW_SCHEMA["outcome"]
    )
    status = _mapped(pl.col("outcome"), _API_STATUS, default="failed")
    return base.with_columns(outcome.alias("outcome")).select(
        "workflow_id",
        "workflow_name",
        "task_queue",
        "trigger_type",
        "started_at",
        "completed_at",
        "last_event_at",
        "outcome",
        pl.when(pl.col("outcome") != "open")
        .then(status)
        .when(pl.col("__last_event") == EventType.WORKFLOW_PAUSED.value)
        .then(pl.lit("paused"))
        .otherwise(pl.lit("active"))
        .alias("status"),
        "end_detail",
        ((pl.col("completed_at") - pl.col("started_at")).dt.total_microseconds() / 1e6).alias(
            "cycle_time_s"
        ),
        "n_events",
    )


def _mapped(
    column: pl.Expr,
    mapping: Mapping[str, str],
    *,
    default: str,
    dtype: pl.DataType | None = None,
) -> pl.Expr:
    """``column``'s value looked up in ``mapping``, else (and for null) ``default``, as a
    string or, given ``dtype``, a value of that type: comparisons of the column's own type, no
    string per row before the lookup, nor one cast per row after it."""
    out: pl.Expr = pl.lit(default, dtype=dtype)
    for key, value in reversed(list(mapping.items())):
        out = pl.when(column == key).then(pl.lit(value, dtype=dtype)).otherwise(out)
    return out


def _api_rows(workflow: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flatten one API workflow object (with its ``timeline``) into timeline rows."""
    base = {
        "workflow_id": workflow.get("id"),
        "workflow_name": workflow.get("name"),
        "task_queue": workflow.get("task_queue"),
        "trigger_type": workflow.get("trigger_type"),
    }
    rows = []
    for item in workflow.get("timeline") or []:
        row = dict(base)
        if isinstance(item, Mapping):
            row.update(
                {
                    "event": item.get("event"),
                    "timestamp": item.get("timestamp"),
                    "detail": item.get("detail"),
                    "step": item.get("step"),
                    "attempt": item.get("attempt"),
                    "outcome": item.get("outcome"),
                    "actor": item.get("actor"),
                }
            )
        rows.append(row)
    return rows


def _api_attributes(workflow: Mapping[str, Any]) -> dict[str, Any]:
    # imported here: the detail texts load the catalog (pydantic, YAML), which a file load skips
    from protocol_lab.domain import details

    ticket = workflow.get("ticket_id")
    if ticket is None:
        for item in workflow.get("timeline") or []:
            if isinstance(item, Mapping) and item.get("event") == "workflow_started":
                detail = item.get("detail")
                ticket = details.ticket_in(detail if isinstance(detail, str) else None)
                break
    return {
        "workflow_id": workflow.get("id"),
        "api_status": workflow.get("status"),
        "ticket_id": ticket,
        "priority": workflow.get("priority"),
    }


def _steps_from_catalog(events: pl.LazyFrame) -> pl.LazyFrame:
    """Fill a missing ``step`` from the catalog's step texts (API timelines carry only text)."""
    from protocol_lab.domain import load_catalog

    rows = []
    for plan in load_catalog().values():
        for step in plan.steps:
            for text in {step.detail, step.done}:
                rows.append((plan.name, text, step.id))
            comp = getattr(step, "compensation", None)
            if comp is not None:
                rows.append((plan.name, comp.detail, step.id))
    lookup = pl.LazyFrame(
        rows,
        schema={"workflow_name": pl.String, "detail": pl.String, "__step": pl.String},
        orient="row",
    ).unique(subset=["workflow_name", "detail"], keep="first")
    return (
        events.join(lookup, on=["workflow_name", "detail"], how="left", maintain_order="left")
        .with_columns(pl.coalesce("step", "__step").alias("step"))
        .drop("__step")
    )


def _attribute_frame(attributes: pl.DataFrame | pl.LazyFrame | pd.DataFrame) -> pl.LazyFrame:
    """Workflow attributes ready to join: keyed by ``workflow_id``, one row per workflow, no
    column of the workflow schema."""
    if not isinstance(attributes, pl.DataFrame | pl.LazyFrame):
        attributes = pl.from_pandas(attributes)
    attrs = attributes.lazy()
    names = attrs.collect_schema().names()
    if "workflow_id" not in names:
        raise TimelineSchemaError("attributes need a workflow_id column", field="workflow_id")
    clash = [c for c in names if c != "workflow_id" and c in WORKFLOW_SCHEMA]
    return attrs.drop(clash).unique(subset="workflow_id", keep="first")


@dataclass(frozen=True)
class _Derived:
    """How :attr:`Timelines.workflows` was made: aggregated from the events, then joined with
    ``attributes`` (see :func:`_attribute_frame`) if any. :meth:`Timelines.cache` can then build
    it from the events in case order instead of running the plan."""

    attributes: pl.LazyFrame | None


@dataclass(frozen=True)
class Timelines:
    """Workflow timelines: a lazy events frame and a lazy one-row-per-workflow frame.

    ``events`` follows :data:`~protocol_lab.domain.TIMELINE_SCHEMA`, or for a log another
    system wrote (:meth:`from_log`) :data:`~protocol_lab.analytics.vocabulary.FOREIGN_SCHEMA`
    (see :attr:`vocabulary`); ``workflows`` has the columns of :data:`WORKFLOW_SCHEMA` (queue
    and trigger as strings for a foreign log) plus any attribute columns given at construction
    (``priority``, ``ticket_id``, ...). ``rejected`` lists rows set aside at load.
    """

    events: pl.LazyFrame
    workflows: pl.LazyFrame
    rejected: pl.DataFrame = field(default_factory=REJECTED_SCHEMA.to_frame)
    _derived: _Derived | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_frame(
        cls,
        events: pl.DataFrame | pl.LazyFrame | pd.DataFrame,
        attributes: pl.DataFrame | pl.LazyFrame | pd.DataFrame | None = None,
        *,
        on_error: OnError = "raise",
        check: bool = True,
        vocabulary: Vocabulary = "protocol-lab",
    ) -> Timelines:
        """Timelines from an events frame (polars or pandas) and optional workflow attributes.

        ``attributes`` is keyed by ``workflow_id``; its other columns are joined onto
        :attr:`workflows`. ``check=False`` skips the row check (for frames already in the
        schema, e.g. produced by this library or the simulator). ``vocabulary="foreign"``
        takes queue, trigger, event and outcome names as the frame has them (a log another
        system wrote); the default checks them against protocol-lab's own.
        """
        if not isinstance(events, pl.DataFrame | pl.LazyFrame):
            events = pl.from_pandas(events)
        if check or events.lazy().collect_schema() != schema_for(vocabulary):
            lf, rejected = _validate_frame(
                events, on_error=on_error, check=check, vocabulary=vocabulary
            )
        else:
            lf, rejected = events.lazy(), REJECTED_SCHEMA.to_frame()
        workflows = _workflows(lf)
        attrs = None if attributes is None else _attribute_frame(attributes)
        if attrs is not None:
            workflows = workflows.join(attrs, on="workflow_id", how="left")
        return cls(events=lf, workflows=workflows, rejected=rejected, _derived=_Derived(attrs))

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any] | TimelineEvent],
        attributes: pl.DataFrame | pl.LazyFrame | Sequence[Mapping[str, Any]] | None = None,
        *,
        on_error: OnError = "raise",
    ) -> Timelines:
        """Timelines from Python rows (dicts or :class:`TimelineEvent`), checked row by row.

        API workflow objects (dicts with a ``timeline`` list) are flattened first; their row
        numbers then count timeline rows.
        """
        rows: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        flat: list[Any] = []
        api_attrs: list[dict[str, Any]] = []
        for record in records:
            if isinstance(record, Mapping) and "timeline" in record:
                flat.extend(_api_rows(record))
                api_attrs.append(_api_attributes(record))
            else:
                flat.append(record)
        for i, record in enumerate(flat):
            try:
                if isinstance(record, TimelineSchemaError):  # a line that was not JSON
                    raise TimelineSchemaError(str(record).split(": ", 1)[-1], row=i)
                data = record.to_dict() if isinstance(record, TimelineEvent) else record
                rows.append(validate_record(data, row=i))
            except TimelineSchemaError as exc:
                if on_error == "raise":
                    raise
                message = str(exc).split(": ", 1)[-1]
                rejected.append({"row": i, "field": exc.field, "error": message})
        frame = (
            pl.DataFrame(rows, schema=TIMELINE_SCHEMA, orient="row")
            if rows
            else TIMELINE_SCHEMA.to_frame()
        )
        lf: pl.LazyFrame = frame.lazy()
        if api_attrs:
            lf = _steps_from_catalog(lf)
        attrs: pl.DataFrame | pl.LazyFrame | None
        if attributes is None:
            attrs = pl.DataFrame(api_attrs) if api_attrs else None
        elif isinstance(attributes, pl.DataFrame | pl.LazyFrame):
            attrs = attributes
        else:
            attrs = pl.DataFrame(list(attributes))
        out = cls.from_frame(lf, attrs, check=False)
        return replace(
            out,
            rejected=pl.DataFrame(rejected, schema=REJECTED_SCHEMA)
            if rejected
            else REJECTED_SCHEMA.to_frame(),
        )

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        attributes: pl.DataFrame | pl.LazyFrame | None = None,
        *,
        on_error: OnError = "raise",
    ) -> Timelines:
        """Timelines from a ``.json``, ``.ndjson``/``.jsonl``, ``.parquet`` or ``.csv`` file.

        JSON may hold a list of timeline rows, a list of API workflow objects, or an API page
        (``{"data": [...]}``). Parquet and CSV are scanned lazily. A Parquet file written by
        :meth:`write_parquet` carries workflow attributes in a sidecar
        ``<name>.workflows.parquet`` which is joined automatically, and, written from a
        foreign log, the mark that loads it in the foreign vocabulary.
        """
        file = Path(path)
        suffix = file.suffix.lower()
        if suffix == ".parquet":
            side = file.with_suffix(".workflows.parquet")
            if attributes is None and side.exists():
                attributes = pl.scan_parquet(side)
            marked = pl.read_parquet_metadata(file).get(VOCABULARY_KEY) == "foreign"
            vocabulary: Vocabulary = "foreign" if marked else "protocol-lab"
            scan = pl.scan_parquet(file)
            return cls.from_frame(
                scan,
                attributes,
                on_error=on_error,
                # rows are checked one by one only if a check fails somewhere
                check=not _passes_checks(scan, vocabulary),
                vocabulary=vocabulary,
            )
        if suffix == ".csv":
            lf = pl.scan_csv(file, schema_overrides={"detail": pl.String, "step": pl.String})
            return cls.from_frame(lf, attributes, on_error=on_error)
        if suffix in (".ndjson", ".jsonl"):
            records: list[Any] = []
            with file.open(encoding="utf-8") as handle:
                lines = [line for line in handle if line.strip()]
            for i, line in enumerate(lines):  # rows count the non-blank lines
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    error = TimelineSchemaError(f"not valid JSON: {exc.msg}", row=i)
                    if on_error == "raise":
                        raise error from None
                    records.append(error)
            return cls.from_records(records, attributes, on_error=on_error)
        if suffix == ".json":
            data = json.loads(file.read_text(encoding="utf-8"))
            if isinstance(data, Mapping):
                data = data.get("data", data.get("events", [data]))
            if not isinstance(data, list):
                raise TimelineSchemaError(f"{file}: expected a list of rows or workflows")
            return cls.from_records(data, attributes, on_error=on_error)
        raise TimelineSchemaError(f"{file}: unsupported file type {suffix!r}")

    @classmethod
    def from_log(
        cls,
        source: str | Path | pl.DataFrame | pl.LazyFrame | pd.DataFrame,
        *,
        mapping: LogMapping | Mapping[str, Any] | None = None,
        preset: str | None = None,
        on_error: OnError = "raise",
    ) -> Timelines:
        """Timelines from an event log another system wrote (see
        :func:`protocol_lab.analytics.logs.read_log`): CSV, Parquet, JSON lines or XES (plain
        or ``.gz``), or a frame, read through a ``preset`` (``servicenow``, ``jira``, ``xes``)
        and/or a column ``mapping`` (a :class:`~protocol_lab.analytics.logs.LogMapping`, or a
        dict of its fields that overrides the preset's). The result speaks the foreign
        vocabulary; a bad row raises naming the source row and column, or with
        ``on_error="set_aside"`` is listed in :attr:`rejected`.
        """
        from protocol_lab.analytics.logs import read_log

        return read_log(source, mapping=mapping, preset=preset, on_error=on_error)

    @classmethod
    def from_api(
        cls,
        client: Any,
        *,
        status: str | None = None,
        task_queue: str | None = None,
        progress: bool = True,
        on_error: OnError = "raise",
    ) -> Timelines:
        """Timelines from the protocol-lab API, following every page, with a progress bar.

        ``client`` is a :class:`protocol_lab.client.Client`; its ``iter_workflows`` yields
        API workflow objects, whose JSON (``.raw``) ``timeline`` rows are flattened and checked.
        """
        from tqdm.auto import tqdm

        workflows = client.iter_workflows(status=status, task_queue=task_queue, page_size=100)
        bar = tqdm(workflows, desc="workflows", unit="wf", disable=not progress)
        items = [workflow.raw for workflow in bar]
        return cls.from_records(items, on_error=on_error)

    @classmethod
    async def afrom_api(
        cls,
        client: Any,
        *,
        status: str | None = None,
        task_queue: str | None = None,
        progress: bool = True,
        on_error: OnError = "raise",
    ) -> Timelines:
        """The twin of :meth:`from_api` for :class:`protocol_lab.client.AsyncClient`."""
        from tqdm.auto import tqdm

        items: list[dict[str, Any]] = []
        with tqdm(desc="workflows", unit="wf", disable=not progress) as bar:
            async for item in client.aiter_workflows(
                status=status, task_queue=task_queue, page_size=100
            ):
                items.append(item.raw)
                bar.update()
        return cls.from_records(items, on_error=on_error)

    @classmethod
    async def from_temporal(
        cls,
        client: Any,
        *,
        query: str | None = None,
        concurrency: int = 16,
    ) -> Timelines:
        """Timelines straight from Temporal: list executions, fetch histories concurrently.

        ``client`` is a ``temporalio.client.Client``; ``query`` a visibility list filter.
        Histories are fetched at most ``concurrency`` at a time and mapped to timeline rows by
        :func:`protocol_lab.domain.history.build_timeline`.
        """
        from protocol_lab.analytics.from_temporal import fetch_rows

        rows, attrs = await fetch_rows(client, query=query, concurrency=concurrency)
        return cls.from_records(rows, pl.DataFrame(attrs) if attrs else None)

    # ------------------------------------------------------------------ accessors
    @property
    def vocabulary(self) -> Vocabulary:
        """``protocol-lab`` for the service's and simulator's timelines, ``foreign`` for a log
        read with :meth:`from_log` (its queue, trigger and event names are its own)."""
        return vocabulary_of(self.events.collect_schema())

    def collect(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Both frames, collected: ``(events, workflows)``."""
        events, workflows = pl.collect_all([self.events, self.workflows], engine=ENGINE)
        return events, workflows

    def to_pandas(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Both frames as pandas: ``(events, workflows)``."""
        events, workflows = self.collect()
        return events.to_pandas(), workflows.to_pandas()

    def cache(self) -> Timelines:
        """The same timelines with both frames computed once and held in memory.

        The events keep their order; where each workflow's events are (in time order) is found
        on the way and kept with the cached events frame, so that its directly-follows graph and
        variants need no grouping by workflow id (and label the events once between them).
        Workflows built from the events are aggregated from that order too.
        """
        known = known_order(self.events, column="workflow_id")
        derived = self._derived if known is None else None
        if derived is None:
            events, workflows = self.collect()
        else:
            events = self.events.collect(engine=ENGINE)
        order = known or find_case_order(events)
        if derived is not None:
            if events["timestamp"].null_count():
                built = _workflows(events.lazy())
            else:
                built = _finish_workflows(per_case_columns(events, order).lazy())
            if derived.attributes is not None:
                built = built.join(derived.attributes, on="workflow_id", how="left")
            workflows = built.collect(engine=ENGINE)
        cached = events.lazy()
        remember(cached, order)
        return Timelines(
            events=cached,
            workflows=workflows.lazy(),
            rejected=self.rejected,
            _derived=self._derived,
        )

    def filter(self, *predicates: pl.Expr) -> Timelines:
        """Keep the workflows (and their events) whose workflow row matches ``predicates``."""
        keep = self.workflows.filter(*predicates)
        ids = keep.select("workflow_id")
        return Timelines(
            events=self.events.join(ids, on="workflow_id", how="semi"),
            workflows=keep,
            rejected=self.rejected,
        )

    def write_parquet(self, path: str | Path) -> Path:
        """Write events to ``path`` and extra workflow attributes to the ``.workflows`` sidecar."""
        file = Path(path)
        foreign = self.vocabulary == "foreign"
        self.events.sink_parquet(file, metadata={VOCABULARY_KEY: "foreign"} if foreign else None)
        extra = [c for c in self.workflows.collect_schema().names() if c not in WORKFLOW_SCHEMA]
        if extra:
            self.workflows.select("workflow_id", *extra).sink_parquet(
                file.with_suffix(".workflows.parquet")
            )
        return file

    # ------------------------------------------------------------------ analyses
    # Convenience for notebooks: each method calls the frame function of the same name and
    # collects the (small) result. The frame functions stay lazy for pipelines.
    def sla(
        self,
        by: str | Sequence[str] | None = "task_queue",
        *,
        config: SlaConfig | None = None,
        as_of: datetime | None = None,
        pausing: Sequence[str] | None = None,
        stopping: Sequence[str] | None = None,
    ) -> SlaSummary:
        """SLA attainment table per group (see :func:`~protocol_lab.analytics.sla.sla_summary`),
        the clock paused in ``pausing`` states and stopped at the last ``stopping`` one
        (defaults: :mod:`protocol_lab.analytics.states`)."""
        from protocol_lab.analytics._frames import group_keys
        from protocol_lab.analytics.sla import SlaSummary, sla_summary

        status = self.sla_status(config=config, as_of=as_of, pausing=pausing, stopping=stopping)
        return SlaSummary(sla_summary(status, by=by).collect(engine=ENGINE), by=group_keys(by))

    def sla_status(
        self,
        *,
        config: SlaConfig | None = None,
        as_of: datetime | None = None,
        pausing: Sequence[str] | None = None,
        stopping: Sequence[str] | None = None,
    ) -> pl.LazyFrame:
        """Per-workflow SLA target, state and time to breach (lazy; see
        :func:`~protocol_lab.analytics.sla.sla_status`, given these timelines' events)."""
        from protocol_lab.analytics.sla import sla_status
        from protocol_lab.analytics.states import DEFAULT_PAUSING, DEFAULT_STOPPING

        return sla_status(
            self.workflows,
            config=config,
            as_of=as_of,
            events=self.events,
            pausing=DEFAULT_PAUSING if pausing is None else pausing,
            stopping=DEFAULT_STOPPING if stopping is None else stopping,
        )

    def sla_agreement(
        self,
        *,
        flag: str = "made_sla",
        by: str | Sequence[str] | None = None,
        config: SlaConfig | None = None,
        as_of: datetime | None = None,
        pausing: Sequence[str] | None = None,
        stopping: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """Agreement of computed SLA attainment with the log's own flag (ServiceNow's
        ``made_sla``; see :func:`~protocol_lab.analytics.itsm.sla_agreement`)."""
        from protocol_lab.analytics.itsm import sla_agreement

        status = self.sla_status(config=config, as_of=as_of, pausing=pausing, stopping=stopping)
        return sla_agreement(status, flag=flag, by=by).collect(engine=ENGINE)

    def time_in_state(self, *, by: str | Sequence[str] = "step") -> pl.DataFrame:
        """Time in each state (or step) per case, summarised (see
        :func:`~protocol_lab.analytics.itsm.time_in_state`)."""
        from protocol_lab.analytics.itsm import time_in_state

        return time_in_state(self.steps(), by=by).collect(engine=ENGINE)

    def reassignments(self, *, level: Level = "task_queue") -> pl.DataFrame:
        """Per case: handlers, reassignments, ping-pongs and route, with the case attributes
        (see :func:`~protocol_lab.analytics.itsm.reassignments`)."""
        from protocol_lab.analytics.itsm import reassignments

        return reassignments(self.events, level=level, workflows=self.workflows).collect(
            engine=ENGINE
        )

    def reassignment_summary(
        self, *, by: str | Sequence[str] | None = None, level: Level = "task_queue"
    ) -> pl.DataFrame:
        """Reassigned and ping-pong shares per group (see
        :func:`~protocol_lab.analytics.itsm.reassignment_summary`)."""
        from protocol_lab.analytics.itsm import reassignment_summary, reassignments

        per_case = reassignments(self.events, level=level, workflows=self.workflows)
        return reassignment_summary(per_case, by=by).collect(engine=ENGINE)

    def handovers(self, *, level: Level = "task_queue", matrix: bool = False) -> pl.DataFrame:
        """Handovers between groups (or resources), as pairs or, with ``matrix``, as a
        handover matrix (see :func:`~protocol_lab.analytics.itsm.handovers`)."""
        from protocol_lab.analytics.itsm import handover_matrix, handovers

        pairs = handovers(self.events, level=level).collect(engine=ENGINE)
        return handover_matrix(pairs) if matrix else pairs

    def workload(
        self,
        *,
        level: Level = "actor",
        pausing: Sequence[str] | None = None,
        stopping: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """Cases, time held, backlog and handovers per resource or group (see
        :func:`~protocol_lab.analytics.itsm.workload`)."""
        from protocol_lab.analytics.itsm import workload
        from protocol_lab.analytics.states import DEFAULT_PAUSING, DEFAULT_STOPPING

        return workload(
            self.events,
            level=level,
            pausing=DEFAULT_PAUSING if pausing is None else pausing,
            stopping=DEFAULT_STOPPING if stopping is None else stopping,
        ).collect(engine=ENGINE)

    def reopens(self, *, stopping: Sequence[str] | None = None) -> pl.DataFrame:
        """Per case: resolved or not, and how often reopened, with the case attributes (see
        :func:`~protocol_lab.analytics.itsm.reopens`)."""
        from protocol_lab.analytics.itsm import reopens
        from protocol_lab.analytics.states import DEFAULT_STOPPING

        return reopens(
            self.events,
            stopping=DEFAULT_STOPPING if stopping is None else stopping,
            workflows=self.workflows,
        ).collect(engine=ENGINE)

    def reopen_rate(
        self, *, by: str | Sequence[str] | None = None, stopping: Sequence[str] | None = None
    ) -> pl.DataFrame:
        """Reopened share of resolved cases per group (see
        :func:`~protocol_lab.analytics.itsm.reopen_rate`)."""
        from protocol_lab.analytics.itsm import reopen_rate

        return reopen_rate(self.reopens(stopping=stopping), by=by)

    def process_map(self) -> ProcessMap:
        """The directly-follows graph of states or steps with frequencies and times (see
        :func:`~protocol_lab.analytics.process_map.process_map`); ``.plot()`` draws it."""
        from protocol_lab.analytics.process_map import process_map

        return process_map(self.events)

    def steps(self) -> pl.LazyFrame:
        """Step instances with wait, human wait and active time, and workflow attributes (lazy)."""
        from protocol_lab.analytics.steps import step_durations

        return step_durations(self.events, workflows=self.workflows)

    def bottlenecks(
        self,
        *,
        by: str | Sequence[str] = ("workflow_name", "step"),
        include_human: bool = False,
    ) -> pl.DataFrame:
        """Steps ranked by the time they add, worst first (row 0 is the worst bottleneck)."""
        from protocol_lab.analytics.steps import bottlenecks

        return bottlenecks(self.steps(), by=by, include_human=include_human).collect(engine=ENGINE)

    def throughput(
        self, *, every: str = "1d", by: str | Sequence[str] | None = None
    ) -> pl.DataFrame:
        """Arrivals and departures per period."""
        from protocol_lab.analytics.flow import throughput

        return throughput(self.workflows, every=every, by=by).collect(engine=ENGINE)

    def cumulative_flow(
        self, *, every: str = "1d", by: str | Sequence[str] | None = None
    ) -> pl.DataFrame:
        """Cumulative arrivals, departures by outcome and WIP per period."""
        from protocol_lab.analytics.flow import cumulative_flow

        return cumulative_flow(self.workflows, every=every, by=by).collect(engine=ENGINE)

    def littles_law(self, *, by: str | Sequence[str] | None = None) -> pl.DataFrame:
        """L = lambda W check over the whole span, per group."""
        from protocol_lab.analytics.flow import littles_law

        return littles_law(self.workflows, by=by).collect(engine=ENGINE)

    def failure_rates(self, *, by: str | Sequence[str] | None = "task_queue") -> pl.DataFrame:
        """Outcome counts, failure and cancellation rates per group."""
        from protocol_lab.analytics.outcomes import failure_rates

        return failure_rates(self.workflows, by=by).collect(engine=ENGINE)

    def failure_reasons(self, *, by: str | Sequence[str] | None = None) -> pl.DataFrame:
        """Failed and cancelled workflows by reason."""
        from protocol_lab.analytics.outcomes import failure_reasons

        return failure_reasons(self.workflows, by=by).collect(engine=ENGINE)

    def conformance(self, *, catalog: Catalog | None = None) -> Conformance:
        """Fitness of every case to its plan in the catalog, per workflow, and the deviating
        cases (see :func:`~protocol_lab.analytics.conformance.conformance`)."""
        from protocol_lab.analytics.conformance import conformance

        return conformance(self, catalog=catalog)

    def variants(self) -> pl.DataFrame:
        """Step-sequence variants with frequency and cycle time."""
        from protocol_lab.analytics.outcomes import variants

        return variants(self.events, self.workflows).collect(engine=ENGINE)

    @property
    def plot(self) -> PlotNamespace:
        """Pictures of these timelines: ``tl.plot.cumulative_flow()`` and friends."""
        return PlotNamespace(self)

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        return f"Timelines(workflows={self.workflows.collect_schema().names()!r}, lazy)"

    def _repr_html_(self) -> str:
        from protocol_lab.analytics.reprs import timelines_html

        return timelines_html(self)


class PlotNamespace:
    """``Timelines.plot``: the functions of :mod:`protocol_lab.analytics.plots` bound to data."""

    def __init__(self, timelines: Timelines) -> None:
        self._tl = timelines

    def cumulative_flow(self, *, every: str = "1d") -> Figure:
        """Cumulative flow diagram."""
        from protocol_lab.analytics.plots import cumulative_flow_diagram

        return cumulative_flow_diagram(self._tl, every=every)

    def cycle_time_ecdf(self, *, by: str = "task_queue") -> Figure:
        """Cycle-time ECDF per group with SLA lines."""
        from protocol_lab.analytics.plots import cycle_time_ecdf

        return cycle_time_ecdf(self._tl, by=by)

    def throughput(self, *, every: str = "1d") -> Figure:
        """Throughput run chart."""
        from protocol_lab.analytics.plots import throughput_run_chart

        return throughput_run_chart(self._tl, every=every)

    def arrivals_heatmap(self, *, timezone: str = "UTC") -> Figure:
        """Arrivals by hour and weekday."""
        from protocol_lab.analytics.plots import arrivals_heatmap

        return arrivals_heatmap(self._tl, timezone=timezone)

    def step_durations(self, *, workflow_name: str | None = None) -> Figure:
        """Step-duration box plots."""
        from protocol_lab.analytics.plots import step_duration_boxplots

        return step_duration_boxplots(self._tl, workflow_name=workflow_name)

    def handovers(self, *, level: Level = "task_queue") -> Figure:
        """The handover matrix between groups (or resources) as a heatmap."""
        from protocol_lab.analytics.plots import handover_heatmap

        return handover_heatmap(self._tl, level=level)

    def process_map(self, *, max_edges: int = 40) -> Figure:
        """The process map (directly-follows graph with counts and times)."""
        from protocol_lab.analytics.process_map import draw_process_map, process_map

        return draw_process_map(process_map(self._tl.events), max_edges=max_edges)

    def swimlanes(self, workflow_ids: Sequence[str]) -> Figure:
        """Swimlane timeline of the given workflows."""
        from protocol_lab.analytics.plots import swimlanes

        return swimlanes(self._tl, workflow_ids)
