"""The timeline schema: one definition, validation naming row and field."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from protocol_lab.domain import (
    TIMELINE_COLUMNS,
    TIMELINE_SCHEMA,
    EventType,
    TimelineEvent,
    TimelineSchemaError,
    events_to_frame,
    validate_frame,
    validate_record,
    wire_events,
)


def _row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "workflow_id": "wf_1",
        "workflow_name": "Password Reset",
        "task_queue": "itsm-workflows",
        "trigger_type": "manual",
        "event": "workflow_started",
        "timestamp": 1708732800,
        "detail": "Manually initiated",
        "step": None,
    }
    row.update(overrides)
    return row


def test_schema_has_the_design_columns_and_vocabulary() -> None:
    assert tuple(TIMELINE_SCHEMA.names()) == TIMELINE_COLUMNS
    assert set(TIMELINE_SCHEMA["event"].categories.to_list()) == {e.value for e in EventType}
    assert len(EventType) == 12


def test_records_become_a_typed_frame() -> None:
    frame = events_to_frame([_row(), _row(event="workflow_completed", timestamp=1708733800.5)])
    assert frame.schema == TIMELINE_SCHEMA
    assert frame["timestamp"][1] == datetime(2024, 2, 24, 0, 16, 40, 500000, tzinfo=UTC)


def test_dataclass_rows_and_iso_timestamps_are_accepted() -> None:
    event = TimelineEvent(
        "wf_2",
        "P1 Incident Response",
        "itsm-high-priority",
        "automatic",
        "activity_started",
        1708732800.0,
        "Paging on-call engineer",
        "page",
    )
    frame = events_to_frame([event, _row(timestamp="2024-02-24T00:00:00Z")])
    assert frame["workflow_id"].to_list() == ["wf_2", "wf_1"]
    assert frame["timestamp"][1] == datetime(2024, 2, 24, tzinfo=UTC)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"event": "workflow_exploded"}, "event"),
        ({"task_queue": "itsm-nowhere"}, "task_queue"),
        ({"trigger_type": "psychic"}, "trigger_type"),
        ({"workflow_id": ""}, "workflow_id"),
        ({"workflow_name": 42}, "workflow_name"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": float("nan")}, "timestamp"),
        ({"timestamp": None}, "timestamp"),
    ],
)
def test_bad_rows_name_row_and_field(bad: dict[str, object], field: str) -> None:
    with pytest.raises(TimelineSchemaError) as info:
        events_to_frame([_row(), _row(), _row(**bad)])
    assert info.value.row == 2
    assert info.value.field == field
    assert f"row 2, field '{field}'" in str(info.value)


def test_non_mapping_row_is_rejected() -> None:
    with pytest.raises(TimelineSchemaError, match="row 0"):
        validate_record(["not", "a", "row"])  # type: ignore[arg-type]


def test_frames_from_other_sources_are_cast_lazily() -> None:
    raw = pl.DataFrame(
        {
            "workflow_id": ["wf_1"],
            "workflow_name": ["x"],
            "task_queue": ["itsm-fleet"],
            "trigger_type": ["scheduled"],
            "event": ["workflow_started"],
            "timestamp": [1708732800],
        }
    )
    lazy = validate_frame(raw)
    assert isinstance(lazy, pl.LazyFrame)
    out = lazy.collect()
    assert out.schema == TIMELINE_SCHEMA
    assert out["detail"].to_list() == [None]


def test_frame_missing_a_column_is_refused() -> None:
    with pytest.raises(TimelineSchemaError, match="missing columns"):
        validate_frame(pl.DataFrame({"workflow_id": ["wf_1"]}))


def test_frame_with_unknown_event_fails_on_collect() -> None:
    raw = events_to_frame([_row()]).with_columns(pl.lit("nope").alias("event"))
    with pytest.raises(pl.exceptions.InvalidOperationError):
        validate_frame(raw).collect()


def test_wire_form_uses_unix_seconds() -> None:
    event = TimelineEvent(
        "wf_1", "x", "itsm-fleet", "manual", "workflow_started", 1708819200.7, "Manually initiated"
    )
    nulls = {"step": None, "attempt": None, "outcome": None, "actor": None}
    assert wire_events([event]) == [
        {
            "event": "workflow_started",
            "timestamp": 1708819200,
            "detail": "Manually initiated",
            **nulls,
        }
    ]
    failed = TimelineEvent(
        "wf_1",
        "x",
        "itsm-fleet",
        "manual",
        "activity_failed",
        1708819201.25,
        "Checking failed: directory failed (emulated)",
        step="check",
        attempt=3,
        outcome="failed",
    )
    assert wire_events([failed], precise=True)[0] == {
        "event": "activity_failed",
        "timestamp": 1708819201.25,
        "detail": "Checking failed: directory failed (emulated)",
        "step": "check",
        "attempt": 3,
        "outcome": "failed",
        "actor": None,
    }


def test_structured_fields_are_validated() -> None:
    row = {
        "workflow_id": "wf_1",
        "workflow_name": "x",
        "task_queue": "itsm-fleet",
        "trigger_type": "manual",
        "event": "activity_completed",
        "timestamp": 1708819200,
    }
    assert validate_record({**row, "attempt": 2, "outcome": "completed"})["attempt"] == 2
    with pytest.raises(TimelineSchemaError, match="attempt"):
        validate_record({**row, "attempt": 0})
    with pytest.raises(TimelineSchemaError, match="attempt"):
        validate_record({**row, "attempt": "2"})
    with pytest.raises(TimelineSchemaError, match="outcome"):
        validate_record({**row, "outcome": "exploded"})
    frame = events_to_frame([{**row, "attempt": 2, "outcome": "timed_out", "actor": "alice"}])
    assert frame.select("attempt", "outcome", "actor").row(0) == (2, "timed_out", "alice")
