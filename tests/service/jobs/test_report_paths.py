"""The report and export jobs read and write inside the state folder only."""

from __future__ import annotations

import asyncio
import json
import shutil
import stat
import uuid
from pathlib import Path

import pytest
from bullmq import Job
from waiting import eventually

from protocol_lab.domain import DATA_DIR, JobQueue
from service.state import Resources

pytestmark = [pytest.mark.redis]

SAMPLE = DATA_DIR / "samples" / "timelines.parquet"


async def _finished(res: Resources, queue: JobQueue, job_id: str) -> Job:
    async def done() -> Job | None:
        job = await res.jobs.queue(queue).getJob(job_id)
        if job is None or await job.getState() not in ("completed", "failed"):
            return None
        return await res.jobs.queue(queue).getJob(job_id)

    return await eventually(done, within_s=120)


async def _report(res: Resources, timelines: str) -> Job:
    job_id = f"report-{uuid.uuid4().hex[:8]}"
    await res.jobs.enqueue(
        JobQueue.REPORT_GENERATION, "sla", {"timelines": timelines}, job_id=job_id, attempts=1
    )
    return await _finished(res, JobQueue.REPORT_GENERATION, job_id)


@pytest.mark.parametrize("escape", ["../outside.parquet", str(SAMPLE), "in/../../x.parquet"])
async def test_a_timeline_path_outside_the_state_folder_is_refused(
    resources: Resources, escape: str
) -> None:
    job = await _report(resources, escape)
    assert await job.getState() == "failed"
    assert "inside the state folder" in job.failedReason
    assert job.attemptsMade == 1


async def test_a_symlink_out_of_the_state_folder_is_refused(resources: Resources) -> None:
    link = resources.settings.state_dir / f"link-{uuid.uuid4().hex[:6]}.parquet"
    link.symlink_to(SAMPLE)
    job = await _report(resources, link.name)
    assert await job.getState() == "failed"
    assert "inside the state folder" in job.failedReason


async def test_a_timeline_inside_the_state_folder_is_reported_into_private_files(
    resources: Resources,
) -> None:
    inside = resources.settings.state_dir / "uploads" / "timelines.parquet"
    inside.parent.mkdir(exist_ok=True)
    await asyncio.to_thread(shutil.copyfile, SAMPLE, inside)
    job = await _report(resources, "uploads/timelines.parquet")
    assert await job.getState() == "completed", job.failedReason
    result = json.loads(job.returnvalue) if isinstance(job.returnvalue, str) else job.returnvalue
    for written in (Path(result["csv"]), Path(result["markdown"])):
        assert written.resolve().is_relative_to(resources.settings.state_dir.resolve())
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(result["csv"]).parent.stat().st_mode) == 0o700


async def test_a_planted_symlink_in_the_reports_folder_is_not_followed(
    resources: Resources, tmp_path: Path
) -> None:
    reports = resources.settings.state_dir / "reports"
    reports.mkdir(exist_ok=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched", encoding="utf-8")
    job_id = f"report-{uuid.uuid4().hex[:8]}"
    (reports / f"sla-{job_id}.csv").symlink_to(victim)
    await resources.jobs.enqueue(JobQueue.REPORT_GENERATION, "sla", {}, job_id=job_id, attempts=1)
    job = await _finished(resources, JobQueue.REPORT_GENERATION, job_id)
    assert await job.getState() == "failed"
    assert victim.read_text(encoding="utf-8") == "untouched"
