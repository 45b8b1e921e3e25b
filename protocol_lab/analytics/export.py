"""Exports for other process-mining tools, written here (PM4Py is not a dependency).

- :func:`pm4py_frame` / :func:`to_pm4py`: the event table PM4Py expects
  (``case:concept:name``, ``concept:name``, ``time:timestamp``, ``lifecycle:transition``,
  case attributes as ``case:<name>``); pass it to PM4Py's functions without
  ``format_dataframe``.
- :func:`write_xes`: an IEEE 1849 XES file (one trace per workflow), built with vectorised
  string expressions.
- :func:`write_ocel2_json`: an OCEL 2.0 JSON log with workflow, ticket and task-queue objects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from protocol_lab.analytics._frames import FrameT, same_kind
from protocol_lab.analytics.steps import activity_label
from protocol_lab.analytics.timelines import WORKFLOW_SCHEMA, Timelines

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["pm4py_frame", "to_pm4py", "write_ocel2_json", "write_xes"]

_LIFECYCLE = pl.when(
    pl.col("event").cast(pl.String).is_in(["activity_started", "compensation_started"])
).then(pl.lit("start"))
_CASE_COLUMNS = ("workflow_name", "task_queue", "trigger_type", "outcome")


def pm4py_frame(events: FrameT, workflows: pl.DataFrame | pl.LazyFrame | None = None) -> FrameT:
    """Events in PM4Py's column names, sorted by case and time (same frame kind as given).

    ``concept:name`` is the step id (or the event name for workflow-level events);
    ``lifecycle:transition`` is ``start`` for activity and compensation starts, ``complete``
    otherwise.
    With ``workflows``, its outcome and attribute columns become ``case:`` columns.
    """
    lf = events.lazy().select(
        pl.col("workflow_id").alias("case:concept:name"),
        activity_label().alias("concept:name"),
        pl.col("timestamp").alias("time:timestamp"),
        _LIFECYCLE.otherwise(pl.lit("complete")).alias("lifecycle:transition"),
        pl.col("event").cast(pl.String).alias("event"),
        pl.col("detail"),
        pl.col("workflow_name").alias("case:workflow_name"),
        pl.col("task_queue").cast(pl.String).alias("case:task_queue"),
        pl.col("trigger_type").cast(pl.String).alias("case:trigger_type"),
    )
    if workflows is not None:
        wf = workflows.lazy()
        names: list[str] = wf.collect_schema().names()
        extra = ["outcome", *[c for c in names if c not in WORKFLOW_SCHEMA]]
        lf = lf.join(
            wf.select(
                pl.col("workflow_id").alias("case:concept:name"),
                *[pl.col(c).cast(pl.String).alias(f"case:{c}") for c in extra],
            ),
            on="case:concept:name",
            how="left",
        )
    out = lf.sort("case:concept:name", "time:timestamp", maintain_order=True)
    return same_kind(events, out)


def to_pm4py(timelines: Timelines) -> pd.DataFrame:
    """The PM4Py-ready event table of ``timelines`` as a pandas DataFrame."""
    return pm4py_frame(timelines.events, timelines.workflows).collect().to_pandas()


def _xml(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String).str.replace_many(
        ["&", "<", ">", '"'], ["&amp;", "&lt;", "&gt;", "&quot;"]
    )


def _attr(kind: str, key: str, value: pl.Expr) -> pl.Expr:
    return (
        pl.when(value.is_not_null())
        .then(pl.concat_str([pl.lit(f'<{kind} key="{key}" value="'), _xml(value), pl.lit('"/>')]))
        .otherwise(pl.lit(""))
    )


def write_xes(timelines: Timelines, path: str | Path) -> Path:
    """Write an XES log: one trace per workflow with its case attributes, events in order."""
    file = Path(path)
    frame = pm4py_frame(timelines.events, timelines.workflows)
    case_cols = [c for c in frame.collect_schema().names() if c.startswith("case:")]
    case_cols = [c for c in case_cols if c != "case:concept:name"]
    iso = pl.col("time:timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
    event_xml = pl.concat_str(
        [
            pl.lit("<event>"),
            _attr("string", "concept:name", pl.col("concept:name")),
            _attr("string", "lifecycle:transition", pl.col("lifecycle:transition")),
            _attr("date", "time:timestamp", iso),
            _attr("string", "event", pl.col("event")),
            _attr("string", "detail", pl.col("detail")),
            pl.lit("</event>"),
        ]
    )
    trace_head = pl.concat_str(
        [
            pl.lit("<trace>"),
            _attr("string", "concept:name", pl.col("case:concept:name")),
            *[_attr("string", c.removeprefix("case:"), pl.col(c)) for c in case_cols],
        ]
    )
    traces = (
        frame.with_columns(event_xml.alias("__event"), trace_head.alias("__head"))
        .group_by("case:concept:name", maintain_order=True)
        .agg(pl.col("__head").first(), pl.col("__event").str.join(""))
        .select(pl.concat_str([pl.col("__head"), pl.col("__event"), pl.lit("</trace>")]))
        .collect()
        .to_series()
    )
    with file.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        out.write('<log xes.version="1849-2016" xes.features="nested-attributes">\n')
        out.write(
            '<extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>\n'
        )
        out.write(
            '<extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>\n'
        )
        out.write(
            '<extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>\n'
        )
        for trace in traces:
            out.write(trace)
            out.write("\n")
        out.write("</log>\n")
    return file


def _iso(value: Any) -> str:
    return str(value.isoformat()) if value is not None else ""


def write_ocel2_json(timelines: Timelines, path: str | Path) -> Path:
    """Write an OCEL 2.0 JSON log.

    Objects: each ``workflow`` (attributes name, trigger type, outcome, priority when known),
    each ``ticket`` (when a ``ticket_id`` attribute is present) and each ``task_queue``.
    Events: one per timeline row, typed by its event name, with ``step`` and ``detail``
    attributes, related to its workflow (``workflow``), queue (``queue``) and ticket
    (``ticket``). Workflows relate to their ticket (``for``) and queue (``runs on``).
    """
    file = Path(path)
    events, workflows = timelines.collect()
    events = events.sort("workflow_id", "timestamp", maintain_order=True)
    tickets: dict[str, str] = (
        dict(workflows.select("workflow_id", "ticket_id").drop_nulls().iter_rows())
        if "ticket_id" in workflows.columns
        else {}
    )
    has_priority = "priority" in workflows.columns
    document = {
        "objectTypes": _ocel_object_types(has_priority=has_priority),
        "eventTypes": _ocel_event_types(events),
        "objects": _ocel_objects(workflows, tickets, has_priority=has_priority),
        "events": _ocel_events(events, tickets),
    }
    with file.open("w", encoding="utf-8") as out:
        json.dump(document, out)
    return file


def _ocel_object_types(*, has_priority: bool) -> list[dict[str, Any]]:
    """The object types: workflow (with its attributes), ticket and task queue."""
    wf_attrs = [
        {"name": "workflow_name", "type": "string"},
        {"name": "trigger_type", "type": "string"},
        {"name": "outcome", "type": "string"},
    ]
    if has_priority:
        wf_attrs.append({"name": "priority", "type": "string"})
    return [
        {"name": "workflow", "attributes": wf_attrs},
        {"name": "ticket", "attributes": []},
        {"name": "task_queue", "attributes": []},
    ]


def _ocel_event_types(events: pl.DataFrame) -> list[dict[str, Any]]:
    """One event type per event name, each with ``step`` and ``detail`` attributes."""
    return [
        {
            "name": str(name),
            "attributes": [
                {"name": "step", "type": "string"},
                {"name": "detail", "type": "string"},
            ],
        }
        for name in events["event"].cast(pl.String).unique().sort()
    ]


def _ocel_objects(
    workflows: pl.DataFrame, tickets: dict[str, str], *, has_priority: bool
) -> list[dict[str, Any]]:
    """The queues, then the tickets, then the workflows related to both."""
    objects: list[dict[str, Any]] = []
    for queue in sorted({str(q) for q in workflows["task_queue"].cast(pl.String)}):
        objects.append({"id": f"queue:{queue}", "type": "task_queue", "attributes": []})
    for ticket in sorted(set(tickets.values())):
        objects.append({"id": f"ticket:{ticket}", "type": "ticket", "attributes": []})
    for row in workflows.iter_rows(named=True):
        objects.append(_ocel_workflow(row, tickets, has_priority=has_priority))
    return objects


def _ocel_workflow(
    row: dict[str, Any], tickets: dict[str, str], *, has_priority: bool
) -> dict[str, Any]:
    """One workflow object, its attributes timed at its start."""
    started = _iso(row["started_at"])
    attrs = [
        {"name": "workflow_name", "value": row["workflow_name"], "time": started},
        {"name": "trigger_type", "value": str(row["trigger_type"]), "time": started},
        {"name": "outcome", "value": str(row["outcome"]), "time": started},
    ]
    if has_priority and row["priority"] is not None:
        attrs.append({"name": "priority", "value": row["priority"], "time": started})
    rels = [{"objectId": f"queue:{row['task_queue']}", "qualifier": "runs on"}]
    if row["workflow_id"] in tickets:
        rels.append({"objectId": f"ticket:{tickets[row['workflow_id']]}", "qualifier": "for"})
    return {
        "id": row["workflow_id"],
        "type": "workflow",
        "attributes": attrs,
        "relationships": rels,
    }


def _ocel_events(events: pl.DataFrame, tickets: dict[str, str]) -> list[dict[str, Any]]:
    """One event per timeline row, related to its workflow, queue and ticket."""
    ocel_events: list[dict[str, Any]] = []
    for i, row in enumerate(events.iter_rows(named=True)):
        wid = row["workflow_id"]
        rels = [
            {"objectId": wid, "qualifier": "workflow"},
            {"objectId": f"queue:{row['task_queue']}", "qualifier": "queue"},
        ]
        if wid in tickets:
            rels.append({"objectId": f"ticket:{tickets[wid]}", "qualifier": "ticket"})
        ocel_events.append(
            {
                "id": f"e{i}",
                "type": str(row["event"]),
                "time": _iso(row["timestamp"]),
                "attributes": [
                    {"name": "step", "value": row["step"] or ""},
                    {"name": "detail", "value": row["detail"] or ""},
                ],
                "relationships": rels,
            }
        )
    return ocel_events
