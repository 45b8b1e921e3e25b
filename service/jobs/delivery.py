"""The webhook-delivery queue: a POST per job; a non-2xx answer fails the attempt, and BullMQ
retries it with exponential backoff (the producer's default). 4xx other than 408/429 cannot
succeed on retry and fail the job at once.

The job's URL came with the job, so the service's own secrets sign it only when that origin has
one of its own in ``SIGNING_SECRETS``; else the job's ``secret`` signs it, or nothing does."""

from __future__ import annotations

from typing import Any

import httpx
from bullmq import Job, UnrecoverableError

from service.jobs.signing import registered_secret, signed_headers
from service.state import Resources

__all__ = ["process_webhook_delivery"]


def _secret(resources: Resources, url: str, own: Any) -> str | None:
    # Never INTEGRATION_SECRET: only a key registered for exactly this origin.
    registered = registered_secret(resources.settings, url)
    if registered is not None:
        return registered
    return own if isinstance(own, str) and own else None


async def process_webhook_delivery(resources: Resources, job: Job) -> dict[str, Any]:
    """POST ``data.payload`` to ``data.url``, signed with its origin's secret or ``data.secret``."""
    data = job.data or {}
    url = data.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise UnrecoverableError(f"webhook job {job.id}: url must be http(s)")
    secret = _secret(resources, url, data.get("secret"))
    content, headers = signed_headers(data.get("payload") or {}, secret=secret)
    headers["Idempotency-Key"] = str(job.id)
    headers["X-Protocol-Attempt"] = str(int(job.attemptsMade) + 1)
    try:
        response = await resources.http.post(url, content=content, headers=headers)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"delivery to {url} failed: {type(exc).__name__}") from exc
    if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
        raise UnrecoverableError(f"{url} refused the delivery: HTTP {response.status_code}")
    if response.status_code >= 300:
        raise RuntimeError(f"{url} answered HTTP {response.status_code}")
    return {"url": url, "status": response.status_code}
