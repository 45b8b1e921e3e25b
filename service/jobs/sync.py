"""The synchronisation and housekeeping queues: sync, asset-sync, fleet-sync, maintenance.

A sync job sends its records to the integration named for its queue (``INTEGRATION_URLS``),
signed like every outbound call; with no integration configured the job records that it had
nowhere to go. Maintenance prunes processed outbox events past their retention and expired
idempotency keys, and moves closed workflows older than ``ARCHIVE_AFTER_S`` to the timeline
archive.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from bullmq import Job
from sqlalchemy import delete

from service.jobs.signing import destination_secret, signed_headers
from service.store.idempotency import prune_expired_keys
from service.store.notifications import add_audit
from service.store.outbox import OutboxRow
from service.temporal.resources import WorkerResources

__all__ = ["INTEGRATION_OF_QUEUE", "process_maintenance", "process_sync"]

log = logging.getLogger("service.jobs")

INTEGRATION_OF_QUEUE: Final = {"sync": "directory", "asset-sync": "logistics", "fleet-sync": "mdm"}


async def process_sync(resources: WorkerResources, job: Job, *, queue: str) -> dict[str, Any]:
    """Send a sync job to its integration (``data.integration`` or the queue's default)."""
    data = dict(job.data or {})
    integration = str(data.get("integration") or INTEGRATION_OF_QUEUE.get(queue, queue))
    base = resources.settings.integration_urls.get(integration)
    if base is None:
        async with resources.sessionmaker() as session:
            await add_audit(
                session,
                job_id=str(job.id),
                kind="sync_skipped",
                subject=data.get("ticket_id"),
                data={"queue": queue, "integration": integration, "job": job.name},
            )
        return {"integration": integration, "sent": False, "reason": "not configured"}
    payload = {"job": job.name, "queue": queue, "data": data}
    url = base.rstrip("/") + "/sync"
    content, headers = signed_headers(payload, secret=destination_secret(resources.settings, url))
    headers["Idempotency-Key"] = str(job.id)
    response = await resources.http.post(url, content=content, headers=headers)
    response.raise_for_status()
    return {"integration": integration, "sent": True, "status": response.status_code}


async def process_maintenance(resources: WorkerResources, job: Job) -> dict[str, Any]:
    """Delete processed outbox events older than ``data.retention_days`` (default 7) and
    idempotency keys older than ``IDEMPOTENCY_TTL_S``; archive workflows closed more than
    ``ARCHIVE_AFTER_S`` ago (when the worker has a Temporal client)."""
    days = float((job.data or {}).get("retention_days", 7))
    cutoff = time.time() - days * 86400
    async with resources.sessionmaker() as session:
        result = await session.execute(
            delete(OutboxRow).where(OutboxRow.status == "done", OutboxRow.created_at < cutoff)
        )
        await session.commit()
    outcome: dict[str, Any] = {"pruned_events": int(getattr(result, "rowcount", 0) or 0)}
    async with resources.sessionmaker() as session:
        outcome["pruned_idempotency_keys"] = await prune_expired_keys(
            session, ttl_s=resources.settings.idempotency_ttl_s
        )
    if resources.temporal is not None:
        from service.api.errors import ApiError
        from service.workflows.archive import archive_closed_workflows

        try:
            outcome["archived_workflows"] = await archive_closed_workflows(
                resources, older_than_s=resources.settings.archive_after_s
            )
        except ApiError as exc:
            log.warning("archiving closed workflows failed: %s", exc.message)
            outcome["archive_error"] = exc.message
    return outcome
