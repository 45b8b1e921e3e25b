"""BullMQ job queues: processors with a concurrency, a rate limiter, attempts and backoff.

A job put on a queue waits (first come, first served) for one of ``workers x concurrency``
processor slots, then for the queue's limiter (BullMQ's ``{max, duration}``: at most ``max`` jobs
start in any window of ``duration``; a job that finds the window full waits for the next one),
and runs for a duration drawn from the queue's model. A failed attempt is retried after BullMQ's
exponential backoff until ``attempts`` are spent. Jobs are not workflows: they appear in the
queue metrics, not in timelines.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from protocol_lab.domain.queues import JobQueue
from protocol_lab.sim import flow
from protocol_lab.sim.metrics import MetricsTracker
from protocol_lab.sim.retries import job_backoff_intervals
from protocol_lab.sim.sampling import Sampler, UniformSampler
from protocol_lab.sim.scenario import JobQueueConfig
from protocol_lab.sim.workers import SlotPool

__all__ = ["BullQueue", "RateLimiter"]


class RateLimiter:
    """BullMQ's limiter: at most ``max_jobs`` starts per window of ``duration_s``."""

    __slots__ = ("count", "duration_s", "max_jobs", "window_end", "window_start")

    def __init__(self, *, max_jobs: int, duration_s: float) -> None:
        self.max_jobs = max_jobs
        self.duration_s = duration_s
        self.window_start = float("-inf")
        self.window_end = float("-inf")
        self.count = 0

    def reserve(self, now: float) -> float:
        """Reserve a start; returns how long to wait for it (0 when the window has room)."""
        if now >= self.window_end:
            self.window_start = now
            self.window_end = now + self.duration_s
            self.count = 1
            return 0.0
        if self.count < self.max_jobs:
            self.count += 1
            return max(0.0, self.window_start - now)
        self.window_start = self.window_end
        self.window_end = self.window_start + self.duration_s
        self.count = 1
        return self.window_start - now


class BullQueue:
    """One BullMQ queue and its processors."""

    def __init__(
        self,
        env: simpy.Environment,
        *,
        queue: JobQueue,
        config: JobQueueConfig,
        code: int,
        tracker: MetricsTracker,
        duration: Sampler,
        uniform: UniformSampler,
    ) -> None:
        self.env = env
        self.queue = queue
        self.config = config
        self.slots = SlotPool(
            env, name=queue.value, capacity=config.capacity, code=code, tracker=tracker
        )
        limit = config.rate_limit
        self.limiter = (
            RateLimiter(max_jobs=limit.max, duration_s=limit.duration_s) if limit else None
        )
        self.duration = duration
        self.uniform = uniform
        self.p_fail = config.failure_probability
        self.backoff = job_backoff_intervals(attempts=config.attempts, delay_s=config.backoff_s)
        self.submitted = 0
        self.failed = 0

    def submit(self) -> None:
        """Add a job to the queue."""
        self.submitted += 1
        flow.start(self._job())

    def _job(self) -> Generator[Any, Any, None]:
        env = self.env
        slots = self.slots
        for attempt in range(self.config.attempts):
            enqueued = env.now
            grant = slots.request()
            if grant is not None:
                yield grant
            if self.limiter is not None:
                delay = self.limiter.reserve(env.now)
                if delay > 0:
                    yield env.timeout(delay)
            started = env.now
            yield env.timeout(self.duration())
            slots.release(enqueued, started)
            if not self.p_fail or self.uniform() >= self.p_fail:
                return
            if attempt < len(self.backoff):
                yield env.timeout(self.backoff[attempt])
        self.failed += 1
