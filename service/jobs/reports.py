"""The report-generation and export queues.

report-generation renders an SLA report of workflow timelines with the analytics library
(``protocol_lab.analytics``: SLA status per workflow, summary per task queue) into CSV and
Markdown files under ``STATE_DIR/reports``. export writes every ticket as JSON lines under
``STATE_DIR/exports``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from bullmq import Job, UnrecoverableError
from sqlalchemy import select

from protocol_lab.domain import DATA_DIR
from service.store.tickets import TicketRow, ticket_dict
from service.temporal.resources import WorkerResources

__all__ = ["process_export", "process_report", "render_sla_report"]


def render_sla_report(source: Path, out_dir: Path, *, name: str, by: str) -> dict[str, Any]:
    """SLA summary of the timelines in ``source`` per ``by``; writes ``<name>.csv`` and ``.md``."""
    import polars as pl

    from protocol_lab.analytics import Timelines
    from protocol_lab.analytics.sla import sla_status, sla_summary

    timelines = Timelines.from_file(source)
    summary = sla_summary(sla_status(timelines.workflows), by=by)
    frame = summary.collect() if isinstance(summary, pl.LazyFrame) else summary
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{name}.csv"
    frame.write_csv(csv_path)
    lines = [f"# SLA report ({source.name})", "", "| " + " | ".join(frame.columns) + " |"]
    lines.append("|" + "---|" * len(frame.columns))
    for row in frame.iter_rows():
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    md_path = out_dir / f"{name}.md"
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"csv": str(csv_path), "markdown": str(md_path), "groups": frame.height}


async def process_report(resources: WorkerResources, job: Job) -> dict[str, Any]:
    """Render an SLA report: ``data.timelines`` (a timeline file; default the shipped sample)."""
    data = job.data or {}
    source = Path(data.get("timelines") or DATA_DIR / "samples" / "timelines.parquet")
    if not await asyncio.to_thread(source.exists):
        raise UnrecoverableError(f"no timeline file at {source}")
    by = str(data.get("by") or "task_queue")
    out_dir = resources.settings.state_dir / "reports"
    name = f"sla-{job.id}"
    return await asyncio.to_thread(render_sla_report, source, out_dir, name=name, by=by)


async def process_export(resources: WorkerResources, job: Job) -> dict[str, Any]:
    """Export every ticket as JSON lines; return the file and the count."""
    async with resources.sessionmaker() as session:
        rows = (await session.execute(select(TicketRow).order_by(TicketRow.number))).scalars()
        tickets = [ticket_dict(r) for r in rows]
    out_dir = resources.settings.state_dir / "exports"
    path = out_dir / f"tickets-{job.id}.jsonl"

    def write() -> None:
        """Write the export file (in a thread)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(t) + "\n" for t in tickets), encoding="utf-8")

    await asyncio.to_thread(write)
    return {"path": str(path), "tickets": len(tickets)}
