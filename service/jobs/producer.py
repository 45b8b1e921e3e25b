"""The producer side of the twelve BullMQ queues: one ``Queue`` per name, opened lazily."""

from __future__ import annotations

from typing import Any

from bullmq import Queue
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from protocol_lab.domain import JobQueue
from service.observability.tracing import continued_span, job_telemetry

__all__ = ["DEFAULT_ATTEMPTS", "JobProducer", "messaging_attributes"]

DEFAULT_ATTEMPTS = 5


def messaging_attributes(
    queue: JobQueue, name: str, job_id: str | None, *, operation: str
) -> dict[str, AttributeValue]:
    """The OpenTelemetry messaging attributes of a job's spans (adding it, running it)."""
    attributes: dict[str, AttributeValue] = {
        "messaging.system": "bullmq",
        "messaging.destination.name": queue.value,
        "messaging.operation.type": operation,
        "bullmq.job.name": name,
    }
    if job_id is not None:
        attributes["messaging.message.id"] = job_id
    return attributes


class JobProducer:
    """Adds jobs to the BullMQ queues on one Redis.

    ``job_id`` makes a job idempotent: BullMQ ignores a second add with the same id, so an
    activity or an event handler that is retried enqueues its job once.
    """

    def __init__(self, redis_url: str, *, prefix: str = "bull") -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self._queues: dict[JobQueue, Queue] = {}

    def queue(self, name: JobQueue | str) -> Queue:
        """The bullmq ``Queue`` for ``name`` (ValueError for an unknown queue)."""
        key = JobQueue(name)
        if key not in self._queues:
            self._queues[key] = Queue(
                key.value, {"connection": self.redis_url, "prefix": self.prefix}
            )
        return self._queues[key]

    async def enqueue(
        self,
        queue: JobQueue | str,
        name: str,
        data: dict[str, Any],
        *,
        job_id: str | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff_ms: int = 1000,
        delay_ms: int = 0,
    ) -> str:
        """Add a job with exponential-backoff retries; return its id."""
        opts: dict[str, Any] = {
            "attempts": attempts,
            "backoff": {"type": "exponential", "delay": backoff_ms},
            "removeOnComplete": {"count": 10_000},
            "removeOnFail": False,
        }
        if job_id is not None:
            opts["jobId"] = job_id
        if delay_ms:
            opts["delay"] = delay_ms
        key = JobQueue(queue)
        with continued_span(
            f"send {key.value}",
            kind=SpanKind.PRODUCER,
            attributes=messaging_attributes(key, name, job_id, operation="send"),
        ) as span:
            telemetry = job_telemetry()
            if telemetry is not None:  # the runner's span continues this trace
                opts["telemetry"] = telemetry
            job = await self.queue(key).add(name, data, opts)  # type: ignore[arg-type]
            span.set_attribute("messaging.message.id", str(job.id))
        return str(job.id)

    async def counts(self) -> dict[str, dict[str, int]]:
        """Job counts per state for each of the twelve queues."""
        states = ["waiting", "active", "completed", "failed", "delayed", "paused"]
        result: dict[str, dict[str, int]] = {}
        for name in JobQueue:
            raw = await self.queue(name).getJobCounts(*states)
            result[name.value] = {state: int(raw.get(state, 0)) for state in states}
        return result

    async def close(self) -> None:
        """Close every opened queue connection."""
        for queue in self._queues.values():
            await queue.close()
        self._queues.clear()
