"""Validation: Erlang C for M/M/c queues, confidence intervals and Little's law.

- :func:`erlang_c` and :func:`erlang_c_wait`: the probability of waiting and the mean wait in
  queue of an M/M/c queue, computed stably (Erlang B recursion);
- :func:`confidence_interval`: Student-t interval of a mean over independent replications;
- :func:`mmc_scenario`: the shipped M/M/c validation scenario with other servers, utilisation,
  mean service time or horizon.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from protocol_lab.domain.durations import Exponential
from protocol_lab.domain.queues import TaskQueue
from protocol_lab.sim.scenario import Scenario, TaskQueueConfig, load_scenario

__all__ = ["confidence_interval", "erlang_c", "erlang_c_wait", "mmc_scenario"]


def erlang_c(*, servers: int, arrival_rate: float, service_rate: float) -> float:
    """Probability that an arrival waits in an M/M/c queue (requires utilisation < 1)."""
    a = arrival_rate / service_rate
    if a >= servers:
        raise ValueError("the queue is unstable: arrival_rate >= servers * service_rate")
    b = 1.0
    for k in range(1, servers + 1):
        b = a * b / (k + a * b)
    rho = a / servers
    return b / (1 - rho + rho * b)


def erlang_c_wait(*, servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean wait in queue (same time unit as the rates' inverse) of an M/M/c queue."""
    c = erlang_c(servers=servers, arrival_rate=arrival_rate, service_rate=service_rate)
    return c / (servers * service_rate - arrival_rate)


def confidence_interval(
    values: Sequence[float] | np.ndarray, *, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t interval of the mean of independent values."""
    arr = np.asarray(values, dtype=np.float64)
    mean = float(arr.mean())
    if len(arr) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf((1 + level) / 2, len(arr) - 1) * arr.std(ddof=1) / math.sqrt(len(arr)))
    return mean, mean - half, mean + half


def mmc_scenario(
    *,
    servers: int = 8,
    utilisation: float = 0.85,
    mean_service_s: float = 60.0,
    horizon_hours: float = 240.0,
    warmup_hours: float = 2.0,
) -> Scenario:
    """The shipped M/M/c scenario (``mmc_validation``) with the given parameters."""
    base = load_scenario("mmc_validation")
    rate_per_s = utilisation * servers / mean_service_s
    stream = base.arrivals.streams[0].model_copy(update={"tickets_per_week": rate_per_s * 604800})
    arrivals = base.arrivals.model_copy(update={"streams": (stream,)})
    return Scenario.model_validate(
        {
            **base.model_dump(),
            "arrivals": arrivals.model_dump(),
            "horizon_hours": horizon_hours,
            "warmup_hours": warmup_hours,
            "task_queues": {TaskQueue.WORKFLOWS: TaskQueueConfig(workers=servers, slots=1)},
            "durations": {"M/M/c Service": {"serve": Exponential(mean_s=mean_service_s)}},
        }
    )
