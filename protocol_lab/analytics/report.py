"""A self-contained HTML report (tables + PNG pictures) of SLA and throughput for timelines."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

from protocol_lab.analytics.reprs import frame_html, sla_html
from protocol_lab.analytics.timelines import Timelines

__all__ = ["write_report"]

_PICTURES = (
    ("cumulative_flow.png", "Cumulative flow"),
    ("cycle_time_ecdf.png", "Cycle time against SLA targets"),
    ("throughput.png", "Throughput"),
    ("arrivals_heatmap.png", "Arrivals by hour and weekday"),
    ("step_durations.png", "Step durations"),
)


def write_report(
    timelines: Timelines,
    folder: str | Path,
    *,
    by: str = "task_queue",
    every: str = "1d",
    title: str = "Workflow SLA and throughput",
) -> Path:
    """Write ``index.html`` and its PNG pictures into ``folder``; return the HTML path."""
    from protocol_lab.analytics import plots

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tl = timelines.cache()
    figures = (
        plots.cumulative_flow_diagram(tl, every=every),
        plots.cycle_time_ecdf(tl, by=by),
        plots.throughput_run_chart(tl, every=every),
        plots.arrivals_heatmap(tl),
        plots.step_duration_boxplots(tl),
    )
    for (name, _), figure in zip(_PICTURES, figures, strict=True):
        figure.savefig(out / name, dpi=90)
    sla = tl.sla(by=by)
    sections = [
        tl._repr_html_(),
        sla_html(sla.frame, by=sla.by),
        frame_html(
            tl.bottlenecks()
            .head(10)
            .select(
                "rank",
                "workflow_name",
                "step",
                "kind",
                "n",
                "wait_p50_s",
                "active_p50_s",
                "total_h",
                "share",
            ),
            title="Bottlenecks (queue wait + active time)",
        ),
        frame_html(tl.failure_rates(by=by), title="Outcomes"),
        frame_html(tl.failure_reasons().head(15), title="Failure and cancellation reasons"),
        frame_html(tl.littles_law(by=by), title="Little's law check (L = λW)"),
    ]
    pictures = "".join(
        f"<h3>{html.escape(caption)}</h3><img src='{name}' style='max-width:100%'>"
        for name, caption in _PICTURES
    )
    page = html_page(title, [*sections, pictures])
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def html_page(title: str, sections: list[str]) -> str:
    """A standalone HTML page: title, generation time, then each section in order."""
    stamp = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body style='font-family:sans-serif'>"
        f"<h1>{html.escape(title)}</h1><p>Generated {stamp}.</p>"
        + "".join(f"<section>{s}</section>" for s in sections)
        + "</body></html>"
    )
