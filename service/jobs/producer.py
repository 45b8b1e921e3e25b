"""The producer side of the twelve BullMQ queues: one ``Queue`` per name, opened lazily."""

from __future__ import annotations

from typing import Any

from bullmq import Queue

from protocol_lab.domain import JobQueue

__all__ = ["DEFAULT_ATTEMPTS", "JobProducer"]

DEFAULT_ATTEMPTS = 5


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
        job = await self.queue(queue).add(name, data, opts)  # type: ignore[arg-type]
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
