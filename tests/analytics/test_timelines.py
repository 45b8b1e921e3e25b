"""Timelines: loaders (frames, records, files, the API), row checks, the per-workflow frame."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import polars as pl
import pytest

from protocol_lab.analytics import REJECTED_SCHEMA, WORKFLOW_SCHEMA, Timelines
from protocol_lab.client import Client
from protocol_lab.domain import TIMELINE_SCHEMA, TimelineEvent, TimelineSchemaError

from .factory import T0, at, frame, laptop, row


def _mixed() -> list[dict[str, Any]]:
    return [
        *laptop("wf_done"),
        *laptop("wf_failed", start=100, outcome="failed"),
        *laptop("wf_cancelled", start=200, outcome="cancelled"),
        row("wf_open", "workflow_started", 10),
        row("wf_paused", "workflow_started", 5),
        row("wf_paused", "workflow_paused", 6),
    ]


def _by_id(tl: Timelines) -> dict[str, dict[str, Any]]:
    return {r["workflow_id"]: r for r in tl.workflows.collect().iter_rows(named=True)}


def test_one_row_per_workflow_with_outcome_status_and_cycle_time() -> None:
    tl = Timelines.from_frame(frame(_mixed()))
    rows = _by_id(tl)
    assert set(rows) == {"wf_done", "wf_failed", "wf_cancelled", "wf_open", "wf_paused"}
    done = rows["wf_done"]
    assert (done["outcome"], done["status"]) == ("completed", "completed")
    assert done["cycle_time_s"] == pytest.approx(64 * 60)
    assert done["started_at"] == T0
    assert done["completed_at"] == at(64)
    assert done["n_events"] == 7
    failed = rows["wf_failed"]
    assert (failed["outcome"], failed["status"]) == ("failed", "failed")
    assert failed["end_detail"] == "Provisioning asset failed: HTTP 503"
    assert failed["cycle_time_s"] == pytest.approx(63 * 60)
    cancelled = rows["wf_cancelled"]
    assert (cancelled["outcome"], cancelled["status"]) == ("cancelled", "failed")
    assert cancelled["completed_at"] == at(220)
    assert cancelled["last_event_at"] == at(221.5)
    assert (rows["wf_open"]["outcome"], rows["wf_open"]["status"]) == ("open", "active")
    assert rows["wf_open"]["cycle_time_s"] is None
    assert rows["wf_paused"]["status"] == "paused"
    assert tl.workflows.collect_schema() == WORKFLOW_SCHEMA
    assert tl.events.collect_schema() == TIMELINE_SCHEMA


def test_frames_stay_lazy_and_convert_to_pandas() -> None:
    tl = Timelines.from_frame(frame(_mixed()))
    assert isinstance(tl.events, pl.LazyFrame)
    assert isinstance(tl.workflows, pl.LazyFrame)
    events, workflows = tl.to_pandas()
    assert isinstance(events, pd.DataFrame)
    assert len(events) == frame(_mixed()).height
    assert len(workflows) == 5


def test_pandas_input_is_accepted() -> None:
    tl = Timelines.from_frame(frame(laptop("wf_1")).to_pandas())
    assert tl.workflows.collect()["outcome"].to_list() == ["completed"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"task_queue": "itsm-nowhere"}, "task_queue"),
        ({"event": "workflow_exploded"}, "event"),
        ({"trigger_type": "telepathy"}, "trigger_type"),
        ({"workflow_id": None}, "workflow_id"),
        ({"workflow_name": ""}, "workflow_name"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": None}, "timestamp"),
    ],
)
def test_bad_row_error_names_row_and_field(change: dict[str, Any], field: str) -> None:
    rows = [
        {**r, "timestamp": r["timestamp"].isoformat()} for r in laptop("wf_1")
    ]  # strings, as read from a text file
    rows[3] = {**rows[3], **change}
    raw = pl.DataFrame(rows, schema={c: pl.String for c in rows[0]})
    with pytest.raises(TimelineSchemaError) as info:
        Timelines.from_frame(raw)
    assert info.value.row == 3
    assert info.value.field == field
    assert "row 3" in str(info.value)
    assert field in str(info.value)


def test_set_aside_keeps_good_rows_and_reports_the_bad_ones() -> None:
    rows = [{**r, "timestamp": r["timestamp"].timestamp()} for r in laptop("wf_1")]
    rows[2] = {**rows[2], "task_queue": "itsm-nowhere"}
    rows[5] = {**rows[5], "timestamp": None}
    raw = pl.DataFrame(rows)
    tl = Timelines.from_frame(raw, on_error="set_aside")
    assert tl.rejected.schema == REJECTED_SCHEMA
    assert tl.rejected.select("row", "field").rows() == [(2, "task_queue"), (5, "timestamp")]
    assert tl.events.collect().height == len(rows) - 2
    assert "set aside" in tl._repr_html_()


def test_missing_column_is_reported() -> None:
    with pytest.raises(TimelineSchemaError, match="missing columns"):
        Timelines.from_frame(frame(laptop("wf_1")).drop("event"))


def test_from_records_takes_dicts_and_timeline_events() -> None:
    base = laptop("wf_1")
    records: list[Any] = [
        TimelineEvent(**{**r, "timestamp": r["timestamp"].timestamp()}) for r in base[:3]
    ]
    records += base[3:]
    tl = Timelines.from_records(records)
    assert tl.workflows.collect()["cycle_time_s"].to_list() == [pytest.approx(64 * 60)]


def test_from_records_errors_and_set_aside() -> None:
    records = laptop("wf_1")
    records[4] = {**records[4], "event": "nope"}
    with pytest.raises(TimelineSchemaError) as info:
        Timelines.from_records(records)
    assert (info.value.row, info.value.field) == (4, "event")
    tl = Timelines.from_records(records, on_error="set_aside")
    assert tl.rejected.rows() == [(4, "event", info.value.args[0].split(": ", 1)[1])]
    assert tl.events.collect().height == len(records) - 1


def _api_workflow(wid: str, start: int) -> dict[str, Any]:
    return {
        "id": wid,
        "name": "Laptop Provisioning - New Hire",
        "status": "completed",
        "trigger_type": "automatic",
        "task_queue": "itsm-accessories",
        "started_at": start,
        "completed_at": start + 600,
        "timeline": [
            {
                "event": "workflow_started",
                "timestamp": start,
                "detail": "Triggered by ticket TKT-4829",
            },
            {
                "event": "activity_completed",
                "timestamp": start + 60,
                "detail": "Asset availability checked",
            },
            {
                "event": "signal_received",
                "timestamp": start + 300,
                "detail": "Manager approval received",
            },
            {
                "event": "workflow_completed",
                "timestamp": start + 600,
                "detail": "Workflow completed",
            },
        ],
    }


def test_api_workflow_objects_are_flattened_with_steps_and_ticket() -> None:
    tl = Timelines.from_records([_api_workflow("wf_a", 1708732800)])
    events, workflows = tl.collect()
    assert events["step"].to_list() == [None, "check_asset_availability", "manager_approval", None]
    wf = workflows.row(0, named=True)
    assert wf["ticket_id"] == "TKT-4829"
    assert wf["api_status"] == "completed"
    assert wf["cycle_time_s"] == 600


def _write(tmp_path: Path, fmt: str, rows: list[dict[str, Any]]) -> Path:
    wire = [{**r, "timestamp": r["timestamp"].timestamp()} for r in rows]
    path = tmp_path / f"timelines.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(wire))
    elif fmt == "ndjson":
        path.write_text("\n".join(json.dumps(r) for r in wire) + "\n")
    elif fmt == "parquet":
        frame(rows).write_parquet(path)
    else:
        frame(rows).with_columns(pl.col("timestamp").dt.to_string()).write_csv(path)
    return path


@pytest.mark.parametrize("fmt", ["json", "ndjson", "parquet", "csv"])
def test_files_load_to_the_same_timelines(tmp_path: Path, fmt: str) -> None:
    rows = _mixed()
    expected = Timelines.from_frame(frame(rows)).workflows.collect().sort("workflow_id")
    loaded = Timelines.from_file(_write(tmp_path, fmt, rows)).workflows.collect()
    assert loaded.sort("workflow_id").equals(expected)


def test_json_api_page_loads(tmp_path: Path) -> None:
    path = tmp_path / "page.json"
    path.write_text(json.dumps({"has_more": False, "data": [_api_workflow("wf_a", 1708732800)]}))
    assert Timelines.from_file(path).workflows.collect()["workflow_id"].to_list() == ["wf_a"]


def test_ndjson_bad_line_names_the_row(tmp_path: Path) -> None:
    path = _write(tmp_path, "ndjson", laptop("wf_1"))
    lines = path.read_text().splitlines()
    lines[2] = "{not json"
    path.write_text("\n".join(lines))
    with pytest.raises(TimelineSchemaError, match="row 2"):
        Timelines.from_file(path)
    tl = Timelines.from_file(path, on_error="set_aside")
    assert tl.rejected.select("row", "field").rows() == [(2, None)]
    assert tl.rejected["error"][0].startswith("not valid JSON")
    assert tl.events.collect().height == len(lines) - 1


def test_csv_bad_value_names_row_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "csv", laptop("wf_1"))
    text = path.read_text().replace("itsm-accessories", "itsm-attic", 1)
    path.write_text(text)
    with pytest.raises(TimelineSchemaError) as info:
        Timelines.from_file(path)
    assert (info.value.row, info.value.field) == (0, "task_queue")


@pytest.mark.parametrize(
    ("column", "value", "field"),
    [
        ("workflow_id", "", "workflow_id"),
        ("timestamp", None, "timestamp"),
        ("attempt", 0, "attempt"),
    ],
)
def test_parquet_bad_value_names_row_and_field(
    tmp_path: Path, column: str, value: Any, field: str
) -> None:
    path = tmp_path / "bad.parquet"
    typed = frame(laptop("wf_1") + laptop("wf_2"))
    bad = pl.int_range(pl.len()) == 5
    typed.with_columns(
        pl.when(bad)
        .then(pl.lit(value))
        .otherwise(pl.col(column))
        .cast(typed.schema[column])
        .alias(column)
    ).write_parquet(path, row_group_size=4)
    with pytest.raises(TimelineSchemaError) as info:
        Timelines.from_file(path)
    assert (info.value.row, info.value.field) == (5, field)
    tl = Timelines.from_file(path, on_error="set_aside")
    assert tl.rejected.select("row", "field").rows() == [(5, field)]
    assert tl.events.collect().height == typed.height - 1


def test_unsupported_file_type(tmp_path: Path) -> None:
    path = tmp_path / "timelines.xlsx"
    path.write_bytes(b"")
    with pytest.raises(TimelineSchemaError, match="unsupported"):
        Timelines.from_file(path)


def test_attributes_join_and_survive_a_parquet_round_trip(tmp_path: Path) -> None:
    attrs = pl.DataFrame({"workflow_id": ["wf_1", "wf_2"], "priority": ["P1", "P3"]})
    tl = Timelines.from_frame(frame(laptop("wf_1") + laptop("wf_2", start=5)), attributes=attrs)
    assert dict(tl.workflows.select("workflow_id", "priority").collect().iter_rows()) == {
        "wf_1": "P1",
        "wf_2": "P3",
    }
    path = tl.write_parquet(tmp_path / "t.parquet")
    again = Timelines.from_file(path)
    assert (
        again.workflows.collect()
        .sort("workflow_id")
        .equals(tl.workflows.collect().sort("workflow_id"))
    )


def test_filter_keeps_matching_workflows_and_their_events() -> None:
    tl = Timelines.from_frame(frame(_mixed())).filter(pl.col("outcome") == "failed")
    events, workflows = tl.collect()
    assert workflows["workflow_id"].to_list() == ["wf_failed"]
    assert set(events["workflow_id"]) == {"wf_failed"}


def test_from_api_follows_every_page() -> None:
    items = [_api_workflow(f"wf_{i}", 1708732800 + i * 1000) for i in range(5)]
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        seen.append(params)
        assert request.url.path == "/v1/workflows"
        assert request.headers["authorization"] == "Bearer tok"
        after = params.get("starting_after")
        start = 0 if after is None else [w["id"] for w in items].index(after) + 1
        page = items[start : start + 2]
        return httpx.Response(200, json={"has_more": start + 2 < len(items), "data": page})

    with Client(
        base_url="http://api.test", token="tok", transport=httpx.MockTransport(handler)
    ) as api:
        tl = Timelines.from_api(api, status="completed", progress=False)
    assert len(seen) == 3
    assert all(p.get("status") == "completed" for p in seen)
    workflows = tl.workflows.collect()
    assert sorted(workflows["workflow_id"]) == [f"wf_{i}" for i in range(5)]
    assert set(workflows["ticket_id"]) == {"TKT-4829"}


def test_rich_html_repr_counts_workflows() -> None:
    html = Timelines.from_frame(frame(_mixed()))._repr_html_()
    assert "5 workflows" in html
    assert "itsm-accessories" in html
