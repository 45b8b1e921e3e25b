"""Ticket arrivals: non-homogeneous Poisson streams and the source process that opens tickets.

Each :class:`protocol_lab.sim.scenario.ArrivalStream` is a Poisson process whose rate is
piecewise constant per UTC hour: ``tickets_per_week / 168`` times the hour-of-week profile factor
(times the scenario's forecast ``scale``). All arrival times are drawn up front, vectorised, into
flat arrays (time, stream, title); the source process walks them in order and opens one ticket
per arrival, so no per-ticket object exists before its arrival.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from protocol_lab.sim.scenario import Scenario

if TYPE_CHECKING:
    from protocol_lab.sim.tickets import TicketDesk

__all__ = ["ArrivalSchedule", "generate_arrivals", "ticket_source"]

_CHUNK = 2048


@dataclass(frozen=True, slots=True)
class ArrivalSchedule:
    """Arrival times (seconds from the scenario start), stream index and title index."""

    times: np.ndarray
    stream: np.ndarray
    title: np.ndarray

    def __len__(self) -> int:
        return len(self.times)


def generate_arrivals(scenario: Scenario, rng: np.random.Generator) -> ArrivalSchedule:
    """Draw every ticket arrival of the scenario's horizon (and at most ``max_tickets``)."""
    arrivals = scenario.arrivals
    horizon_s = scenario.horizon_s
    hours = max(1, math.ceil(scenario.horizon_hours))
    hour_start = np.arange(hours, dtype=np.float64) * 3600.0
    default = arrivals.profile.hourly_factors(scenario.start, hours)
    times, streams, titles = [], [], []
    for k, stream in enumerate(arrivals.streams):
        factors = (
            default
            if stream.profile is None
            else stream.profile.hourly_factors(scenario.start, hours)
        )
        per_hour = arrivals.scale * stream.tickets_per_week / 168.0 * factors
        counts = rng.poisson(per_hour)
        t = np.repeat(hour_start, counts) + rng.random(int(counts.sum())) * 3600.0
        t = t[t < horizon_s]
        weights = np.asarray(list(stream.titles.values()), dtype=np.float64)
        times.append(t)
        streams.append(np.full(len(t), k, dtype=np.int16))
        titles.append(
            rng.choice(len(weights), size=len(t), p=weights / weights.sum()).astype(np.int16)
        )
    all_t = np.concatenate(times)
    order = np.argsort(all_t, kind="stable")
    if scenario.max_tickets is not None:
        order = order[: scenario.max_tickets]
    return ArrivalSchedule(
        times=all_t[order],
        stream=np.concatenate(streams)[order],
        title=np.concatenate(titles)[order],
    )


def ticket_source(
    env: simpy.Environment, schedule: ArrivalSchedule, desk: TicketDesk
) -> Generator[Any, Any, None]:
    """Process: open each ticket at its arrival time."""
    n = len(schedule)
    for a in range(0, n, _CHUNK):
        times = schedule.times[a : a + _CHUNK].tolist()
        streams = schedule.stream[a : a + _CHUNK].tolist()
        titles = schedule.title[a : a + _CHUNK].tolist()
        for t, s, title in zip(times, streams, titles, strict=True):
            yield env.timeout(t - env.now)
            desk.open_ticket(s, title)
