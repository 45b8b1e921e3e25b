"""The audit queue: every job appends one entry to the append-only audit trail (once per job)."""

from __future__ import annotations

from typing import Any

from bullmq import Job

from service.state import Resources
from service.store.notifications import add_audit

__all__ = ["process_audit"]


async def process_audit(resources: Resources, job: Job) -> dict[str, Any]:
    """Append the job's data to the audit trail (a retried job appends nothing more)."""
    data = dict(job.data or {})
    async with resources.sessionmaker() as session:
        added = await add_audit(
            session,
            job_id=str(job.id),
            kind=str(data.get("kind") or job.name),
            subject=data.get("subject"),
            data=data,
        )
    return {"appended": added}
