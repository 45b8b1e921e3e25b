"""Rich HTML representations for Jupyter: timelines and SLA summaries."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from protocol_lab.analytics.timelines import Timelines

__all__ = ["frame_html", "sla_html", "timelines_html"]

_STYLE = (
    "<style>.pl-card{font-family:system-ui,sans-serif;font-size:13px}"
    ".pl-card table{border-collapse:collapse;margin:4px 0}"
    ".pl-card td,.pl-card th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
    ".pl-card th{background:#f4f4f4}.pl-card td:first-child,.pl-card th:first-child"
    "{text-align:left}.pl-bar{display:inline-block;height:9px;background:#4c78a8}"
    ".pl-bad{color:#b00020;font-weight:600}.pl-ok{color:#1b7f3b}</style>"
)


def _cell(value: object) -> str:
    if value is None:
        return "<td>–</td>"
    if isinstance(value, float):
        return f"<td>{value:,.3g}</td>" if abs(value) < 1000 else f"<td>{value:,.0f}</td>"
    if isinstance(value, int):
        return f"<td>{value:,}</td>"
    return f"<td>{html.escape(str(value))}</td>"


def frame_html(frame: pl.DataFrame, *, title: str = "", max_rows: int = 20) -> str:
    """A compact HTML table of a small frame, with a title."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(_cell(v) for v in row) + "</tr>"
        for row in frame.head(max_rows).iter_rows()
    )
    more = f"<div>… {frame.height - max_rows} more rows</div>" if frame.height > max_rows else ""
    caption = f"<b>{html.escape(title)}</b>" if title else ""
    return f"{_STYLE}<div class='pl-card'>{caption}<table><tr>{head}</tr>{body}</table>{more}</div>"


def timelines_html(timelines: Timelines) -> str:
    """A card: counts, time span, outcomes and workflows per queue."""
    events, workflows = pl.collect_all(
        [
            timelines.events.select(
                pl.len().alias("events"),
                pl.col("timestamp").min().alias("first"),
                pl.col("timestamp").max().alias("last"),
            ),
            timelines.workflows.group_by("task_queue")
            .agg(
                pl.len().alias("workflows"),
                (pl.col("outcome") == "completed").sum().alias("completed"),
                (pl.col("outcome") == "failed").sum().alias("failed"),
                (pl.col("outcome") == "cancelled").sum().alias("cancelled"),
                (pl.col("outcome") == "open").sum().alias("open"),
                pl.col("cycle_time_s").median().truediv(3600).alias("median_cycle_h"),
            )
            .sort("task_queue"),
        ]
    )
    info = events.row(0, named=True)
    total = int(workflows["workflows"].sum()) if workflows.height else 0
    span = f"{info['first']:%Y-%m-%d %H:%M} → {info['last']:%Y-%m-%d %H:%M} UTC" if total else ""
    rejected = (
        f"<div class='pl-bad'>{timelines.rejected.height} rows set aside (see .rejected)</div>"
        if timelines.rejected.height
        else ""
    )
    header = (
        f"<div><b>Timelines</b>: {total:,} workflows, {info['events']:,} events. {span}</div>"
        + rejected
    )
    return header + frame_html(workflows)


def sla_html(frame: pl.DataFrame, *, by: list[str], goal: float = 0.95) -> str:
    """The SLA table with an attainment bar per group; attainment under ``goal`` in red."""
    cols = [
        *by,
        "workflows",
        "met",
        "breached",
        "attainment",
        "open",
        "at_risk",
        "open_breached",
        "target_h",
        "p50_h",
        "p90_h",
    ]
    cols = [c for c in cols if c in frame.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = []
    for row in frame.iter_rows(named=True):
        cells = []
        for c in cols:
            value = row[c]
            if c == "attainment" and value is not None:
                css = "pl-ok" if value >= goal else "pl-bad"
                width = round(float(value) * 80)
                cells.append(
                    f"<td class='{css}'><span class='pl-bar' style='width:{width}px'></span>"
                    f" {value:.1%}</td>"
                )
            elif c == "at_risk" and value:
                cells.append(f"<td class='pl-bad'>{value:,}</td>")
            else:
                cells.append(_cell(value))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    title = "SLA attainment" + (f" by {', '.join(by)}" if by else "")
    return (
        f"{_STYLE}<div class='pl-card'><b>{html.escape(title)}</b> "
        f"(goal {goal:.0%}; times in hours)<table><tr>{head}</tr>{''.join(rows)}</table></div>"
    )
