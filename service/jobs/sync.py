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
from collections.abc import Mapping
from typing import Any, Final

from bullmq import Job, UnrecoverableError

from service.jobs.signing import destination_secret, signed_headers
from service.state import Resources
from service.store.idempotency import prune_expired_keys
from service.store.notifications import add_audit
from service.store.outbox import prune_events

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "INTEGRATION_OF_QUEUE",
    "MAX_RETENTION_DAYS",
    "process_maintenance",
    "process_sync",
    "retention_days",
]

log = logging.getLogger("service.jobs")

INTEGRATION_OF_QUEUE: Final = {"sync": "directory", "asset-sync": "logistics", "fleet-sync": "mdm"}
DEFAULT_RETENTION_DAYS: Final = 7
MAX_RETENTION_DAYS: Final = 3650  # ten years


async def process_sync(resources: Resources, job: Job, *, queue: str) -> dict[str, Any]:
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


def retention_days(data: Any) -> float:
    """The ``retention_days`` of a maintenance job's data (default 7).

    A number of days from 0 (prune every processed event) to :data:`MAX_RETENTION_DAYS`;
    anything else (a negative or non-finite number, a string, a boolean) fails the job at once
    with an :class:`~bullmq.UnrecoverableError` saying so, before anything is deleted.
    """
    if not isinstance(data, Mapping):
        raise UnrecoverableError(f"maintenance job: data must be an object, not {data!r}")
    raw = data.get("retention_days", DEFAULT_RETENTION_DAYS)
    # NaN and the infinities fail the range check too.
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | float)
        or not (0 <= raw <= MAX_RETENTION_DAYS)
    ):
        raise UnrecoverableError(
            "maintenance job: retention_days must be a number of days from 0 to "
            f"{MAX_RETENTION_DAYS}, got {raw!r}"
        )
    return float(raw)


async def process_maintenance(resources: Resources, job: Job) -> dict[str, Any]:
    """Delete processed outbox events older than ``data.retention_days`` (default 7) and
    idempotency keys older than ``IDEMPOTENCY_TTL_S``; archive workflows closed more than
    ``ARCHIVE_AFTER_S`` ago (when the worker has a Temporal client)."""
    days = retention_days(job.data if job.data is not None else {})
    async with resources.sessionmaker() as session:
        pruned = await prune_events(session, older_than=time.time() - days * 86400)
    outcome: dict[str, Any] = {"pruned_events": pruned}
    async with resources.sessionmaker() as session:
        outcome["pruned_idempotency_keys"] = await prune_expired_keys(
            session, ttl_s=resources.settings.idempotency_ttl_s
        )
    if resources.temporal is not None:
        from service.errors import ServiceError
        from service.executions.archive import archive_closed_workflows

        try:
            outcome["archived_workflows"] = await archive_closed_workflows(
                resources, older_than_s=resources.settings.archive_after_s
            )
        except ServiceError as exc:
            log.warning("archiving closed workflows failed: %s", exc.message)
            outcome["archive_error"] = exc.message
    return outcome
