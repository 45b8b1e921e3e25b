"""The report-generation and export queues.

report-generation renders an SLA report of workflow timelines with the analytics library
(``protocol_lab.analytics``: SLA status per workflow, summary per task queue) into CSV and
Markdown files under ``STATE_DIR/reports``. export writes every ticket as JSON lines under
``STATE_DIR/exports``.

Both stay inside the state folder: a timeline path is taken relative to ``STATE_DIR`` and refused
when it leads out of it (``..``, an absolute path, a symlink); output files are created 0600 in
0700 folders, and a symlink planted where one is to be written is not followed. Only the shipped
sample, the default when no path is given, is read from elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from bullmq import Job, UnrecoverableError
from sqlalchemy import select

from protocol_lab.domain import DATA_DIR
from service.private_files import inside, open_private, private_dir
from service.state import Resources
from service.store.tickets import TicketRow, ticket_dict

__all__ = ["DEFAULT_TIMELINES", "process_export", "process_report", "render_sla_report"]

DEFAULT_TIMELINES = DATA_DIR / "samples" / "timelines.parquet"


def _file_part(job: Job) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(job.id))


def _state_folder(resources: Resources, job: Job, relative: str) -> Path:
    folder = inside(resources.settings.state_dir, relative)
    if folder is None:
        raise UnrecoverableError(f"job {job.id}: {relative} must stay inside the state folder")
    return folder


def render_sla_report(source: Path, out_dir: Path, *, name: str, by: str) -> dict[str, Any]:
    """SLA summary of the timelines in ``source`` per ``by``; writes ``<name>.csv`` and ``.md``."""
    import polars as pl

    from protocol_lab.analytics import Timelines
    from protocol_lab.analytics.sla import sla_status, sla_summary

    timelines = Timelines.from_file(source)
    summary = sla_summary(sla_status(timelines.workflows), by=by)
    frame = summary.collect() if isinstance(summary, pl.LazyFrame) else summary
    private_dir(out_dir)
    csv_path = out_dir / f"{name}.csv"
    with open_private(csv_path, "wb") as handle:
        frame.write_csv(handle)
    lines = [f"# SLA report ({source.name})", "", "| " + " | ".join(frame.columns) + " |"]
    lines.append("|" + "---|" * len(frame.columns))
    for row in frame.iter_rows():
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    md_path = out_dir / f"{name}.md"
    with open_private(md_path, "wb") as handle:
        handle.write(("\n".join(lines) + "\n").encode())
    return {"csv": str(csv_path), "markdown": str(md_path), "groups": frame.height}


async def process_report(resources: Resources, job: Job) -> dict[str, Any]:
    """Render an SLA report of ``data.timelines`` (a timeline file relative to the state folder;
    default the shipped sample)."""
    data = job.data or {}
    given = data.get("timelines")
    source = DEFAULT_TIMELINES
    if given is not None:
        found = inside(resources.settings.state_dir, given) if isinstance(given, str) else None
        if found is None:
            raise UnrecoverableError(
                f"report job {job.id}: timelines must be a file inside the state folder"
            )
        source = found
    if not await asyncio.to_thread(source.is_file):
        raise UnrecoverableError(f"no timeline file at {given or source}")
    by = str(data.get("by") or "task_queue")
    out_dir = _state_folder(resources, job, "reports")
    name = f"sla-{_file_part(job)}"
    try:
        return await asyncio.to_thread(render_sla_report, source, out_dir, name=name, by=by)
    except OSError as exc:
        raise UnrecoverableError(f"report job {job.id}: cannot write the report: {exc}") from exc


async def process_export(resources: Resources, job: Job) -> dict[str, Any]:
    """Export every ticket as JSON lines; return the file and the count."""
    async with resources.sessionmaker() as session:
        rows = (await session.execute(select(TicketRow).order_by(TicketRow.number))).scalars()
        tickets = [ticket_dict(r) for r in rows]
    out_dir = _state_folder(resources, job, "exports")
    path = out_dir / f"tickets-{_file_part(job)}.jsonl"

    def write() -> None:
        """Write the export file (in a thread)."""
        private_dir(out_dir)
        with open_private(path, "wb") as handle:
            handle.write("".join(json.dumps(t) + "\n" for t in tickets).encode())

    try:
        await asyncio.to_thread(write)
    except OSError as exc:
        raise UnrecoverableError(f"export job {job.id}: cannot write the export: {exc}") from exc
    return {"path": str(path), "tickets": len(tickets)}
