"""Retries: the backoff schedule of a plan's :class:`protocol_lab.domain.RetryPolicy`.

Temporal retries a failed activity after ``initial_interval_s``, multiplying the interval by
``backoff`` each time up to ``max_interval_s``, until ``max_attempts`` attempts were made. An
attempt fails with the step's ``failure_probability`` (independently), or when it outlives its
start-to-close ``timeout_s``.
"""

from __future__ import annotations

from protocol_lab.domain.catalog import RetryPolicy

__all__ = ["backoff_intervals", "job_backoff_intervals"]


def backoff_intervals(policy: RetryPolicy) -> tuple[float, ...]:
    """Seconds to wait after failed attempt 1, 2, ... (one fewer than ``max_attempts``)."""
    out = []
    interval = policy.initial_interval_s
    for _ in range(policy.max_attempts - 1):
        out.append(min(interval, policy.max_interval_s))
        interval *= policy.backoff
    return tuple(out)


def job_backoff_intervals(*, attempts: int, delay_s: float) -> tuple[float, ...]:
    """BullMQ exponential backoff: ``delay_s * 2**(k-1)`` after failed attempt ``k``."""
    return tuple(delay_s * 2**k for k in range(attempts - 1))
