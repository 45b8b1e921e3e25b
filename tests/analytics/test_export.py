"""PM4Py-ready frame, XES and OCEL 2.0 JSON, checked by reading them back."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import polars as pl

from protocol_lab.analytics import Timelines, pm4py_frame, to_pm4py, write_ocel2_json, write_xes

from .factory import frame, laptop


def _tl() -> Timelines:
    rows = laptop("wf_1") + laptop("wf_2", start=5, outcome="cancelled")
    attrs = pl.DataFrame({"workflow_id": ["wf_1", "wf_2"], "ticket_id": ["TKT-1", "TKT-2"]})
    return Timelines.from_frame(frame(rows), attributes=attrs)


def test_pm4py_frame_columns_order_and_lifecycle() -> None:
    tl = _tl()
    df = to_pm4py(tl)
    assert isinstance(df, pd.DataFrame)
    for column in ("case:concept:name", "concept:name", "time:timestamp", "lifecycle:transition"):
        assert column in df.columns
    assert str(df["time:timestamp"].dtype) == "datetime64[us, UTC]"
    first = df[df["case:concept:name"] == "wf_1"]
    assert first["concept:name"].tolist()[:3] == [
        "workflow_started",
        "check_asset_availability",
        "check_asset_availability",
    ]
    assert first["lifecycle:transition"].tolist()[:3] == ["complete", "start", "complete"]
    assert set(df["case:ticket_id"]) == {"TKT-1", "TKT-2"}
    assert set(df["case:outcome"]) == {"completed", "cancelled"}
    assert (
        df["time:timestamp"].is_monotonic_increasing
        or df.groupby("case:concept:name")["time:timestamp"]
        .apply(lambda s: s.is_monotonic_increasing)
        .all()
    )
    lazy = pm4py_frame(tl.events)
    assert isinstance(lazy, pl.LazyFrame)


def test_xes_has_a_trace_per_workflow_with_its_events(tmp_path: Path) -> None:
    path = write_xes(_tl(), tmp_path / "log.xes")
    root = ET.parse(path).getroot()
    assert root.tag == "log"
    traces = root.findall("trace")
    assert len(traces) == 2
    names = {t.find("string[@key='concept:name']").get("value") for t in traces}  # type: ignore[union-attr]
    assert names == {"wf_1", "wf_2"}
    wf1 = next(t for t in traces if t.find("string[@key='concept:name']").get("value") == "wf_1")  # type: ignore[union-attr]
    events = wf1.findall("event")
    assert len(events) == 7
    stamp = events[0].find("date[@key='time:timestamp']").get("value")  # type: ignore[union-attr]
    assert stamp == "2026-12-01T09:00:00.000000+00:00"
    assert wf1.find("string[@key='ticket_id']").get("value") == "TKT-1"  # type: ignore[union-attr]


def test_xes_escapes_markup(tmp_path: Path) -> None:
    rows = laptop("wf_<&>")
    rows[0]["detail"] = 'a "quoted" <tag> & more'
    path = write_xes(Timelines.from_frame(frame(rows)), tmp_path / "log.xes")
    root = ET.parse(path).getroot()
    detail = root.find("trace/event/string[@key='detail']")
    assert detail is not None
    assert detail.get("value") == 'a "quoted" <tag> & more'


def test_ocel2_json_objects_events_and_relationships(tmp_path: Path) -> None:
    path = write_ocel2_json(_tl(), tmp_path / "log.json")
    doc = json.loads(path.read_text())
    assert {t["name"] for t in doc["objectTypes"]} == {"workflow", "ticket", "task_queue"}
    objects = {o["id"]: o for o in doc["objects"]}
    assert objects["wf_1"]["type"] == "workflow"
    assert {"objectId": "ticket:TKT-1", "qualifier": "for"} in objects["wf_1"]["relationships"]
    assert objects["queue:itsm-accessories"]["type"] == "task_queue"
    assert len(doc["events"]) == 7 + 6
    first = doc["events"][0]
    assert first["type"] == "workflow_started"
    assert first["time"].startswith("2026-12-01T09:00:00")
    assert {r["qualifier"] for r in first["relationships"]} == {"workflow", "queue", "ticket"}
    event_types = {t["name"] for t in doc["eventTypes"]}
    assert {e["type"] for e in doc["events"]} <= event_types
    assert all(r["objectId"] in objects for e in doc["events"] for r in e["relationships"])
