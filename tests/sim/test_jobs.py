"""BullMQ queues: concurrency, the rate limiter, attempts."""

from __future__ import annotations

import numpy as np
import simpy

from protocol_lab.domain import Fixed, JobQueue
from protocol_lab.sim.jobs import BullQueue, RateLimiter
from protocol_lab.sim.metrics import MetricsTracker
from protocol_lab.sim.sampling import Sampler, UniformSampler
from protocol_lab.sim.scenario import JobQueueConfig, RateLimit


def test_limiter_allows_max_per_window_then_waits_for_the_next() -> None:
    lim = RateLimiter(max_jobs=2, duration_s=1.0)
    assert [lim.reserve(0.0) for _ in range(5)] == [0.0, 0.0, 1.0, 1.0, 2.0]
    assert lim.reserve(10.0) == 0.0


def _queue(env: simpy.Environment, config: JobQueueConfig) -> tuple[BullQueue, MetricsTracker]:
    tracker = MetricsTracker(queues=["email"], kinds=["job"], interval_s=60.0)
    rng = np.random.default_rng(0)
    q = BullQueue(
        env,
        queue=JobQueue.EMAIL,
        config=config,
        code=0,
        tracker=tracker,
        duration=Sampler(config.duration, rng),
        uniform=UniformSampler(rng),
    )
    return q, tracker


def test_rate_limit_spreads_a_burst_over_windows() -> None:
    env = simpy.Environment()
    config = JobQueueConfig(
        concurrency=5, rate_limit=RateLimit(max=10, duration_s=1.0), duration=Fixed(seconds=0.01)
    )
    q, tracker = _queue(env, config)
    for _ in range(100):
        q.submit()
    env.run()
    starts = np.frombuffer(tracker.a_start, dtype=np.float64)
    assert len(starts) == 100
    per_second = np.bincount(starts.astype(int))
    assert per_second.max() == 10
    assert starts.max() >= 9.0


def test_concurrency_bounds_jobs_in_progress() -> None:
    env = simpy.Environment()
    config = JobQueueConfig(concurrency=3, duration=Fixed(seconds=10.0))
    q, _ = _queue(env, config)
    for _ in range(9):
        q.submit()
    env.run()
    assert env.now == 30.0
    assert q.slots.busy == 0


def test_failed_attempts_are_retried_then_counted() -> None:
    env = simpy.Environment()
    config = JobQueueConfig(
        concurrency=1, duration=Fixed(seconds=1.0), failure_probability=1.0, attempts=3, backoff_s=2
    )
    q, tracker = _queue(env, config)
    q.submit()
    env.run()
    assert q.failed == 1
    assert np.frombuffer(tracker.a_start, dtype=np.float64).tolist() == [0.0, 3.0, 8.0]
