"""Ticket arrivals: non-homogeneous Poisson streams and the source process that opens tickets.

Each :class:`protocol_lab.sim.scenario.ArrivalStream` is a Poisson process whose rate is
piecewise constant per UTC hour: ``tickets_per_week / 168`` times the hour-of-week profile factor
(times the scenario's forecast ``scale``). Arrival times are drawn vectorised, a week at a time,
into flat arrays (time, stream, title); the source process walks them in order and opens one
ticket per arrival, so no per-ticket object exists before its arrival.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from protocol_lab.sim.scenario import Scenario

if TYPE_CHECKING:
    from protocol_lab.sim.tickets import TicketDesk

__all__ = ["ArrivalSchedule", "generate_arrivals", "iter_arrivals", "ticket_source"]

_CHUNK = 2048


@dataclass(frozen=True, slots=True)
class ArrivalSchedule:
    """Arrival times (seconds from the scenario start), stream index and title index."""

    times: np.ndarray
    stream: np.ndarray
    title: np.ndarray

    def __len__(self) -> int:
        return len(self.times)


def iter_arrivals(
    scenario: Scenario, rng: np.random.Generator, *, block_hours: int = 168
) -> Iterator[ArrivalSchedule]:
    """Draw the scenario's arrivals a block of hours at a time, in time order.

    Only one block is in memory at once, so a run of a million tickets holds a week of arrival
    times, not all of them. At most ``max_tickets`` arrivals are produced.
    """
    arrivals = scenario.arrivals
    horizon_s = scenario.horizon_s
    hours = max(1, math.ceil(scenario.horizon_hours))
    default = arrivals.profile.hourly_factors(scenario.start, hours)
    factors = [
        default if st.profile is None else st.profile.hourly_factors(scenario.start, hours)
        for st in arrivals.streams
    ]
    weights = [np.asarray(list(st.titles.values()), dtype=np.float64) for st in arrivals.streams]
    left = scenario.max_tickets
    for first in range(0, hours, block_hours):
        last = min(hours, first + block_hours)
        hour_start = np.arange(first, last, dtype=np.float64) * 3600.0
        times, streams, titles = [], [], []
        for k, stream in enumerate(arrivals.streams):
            per_hour = arrivals.scale * stream.tickets_per_week / 168.0 * factors[k][first:last]
            counts = rng.poisson(per_hour)
            t = np.repeat(hour_start, counts) + rng.random(int(counts.sum())) * 3600.0
            t = t[t < horizon_s]
            w = weights[k]
            times.append(t)
            streams.append(np.full(len(t), k, dtype=np.int16))
            titles.append(rng.choice(len(w), size=len(t), p=w / w.sum()).astype(np.int16))
        block_t = np.concatenate(times)
        order = np.argsort(block_t, kind="stable")
        if left is not None:
            order = order[:left]
            left -= len(order)
        yield ArrivalSchedule(
            times=block_t[order],
            stream=np.concatenate(streams)[order],
            title=np.concatenate(titles)[order],
        )
        if left is not None and left <= 0:
            return


def generate_arrivals(scenario: Scenario, rng: np.random.Generator) -> ArrivalSchedule:
    """Every arrival of the scenario at once (the blocks of :func:`iter_arrivals`, joined)."""
    blocks = list(iter_arrivals(scenario, rng))
    return ArrivalSchedule(
        times=np.concatenate([b.times for b in blocks]),
        stream=np.concatenate([b.stream for b in blocks]),
        title=np.concatenate([b.title for b in blocks]),
    )


def ticket_source(
    env: simpy.Environment, blocks: Iterable[ArrivalSchedule], desk: TicketDesk
) -> Generator[Any, Any, None]:
    """Process: open each ticket at its arrival time."""
    open_ticket = desk.open_ticket
    timeout = env.timeout
    for block in blocks:
        for a in range(0, len(block), _CHUNK):
            times = block.times[a : a + _CHUNK].tolist()
            streams = block.stream[a : a + _CHUNK].tolist()
            titles = block.title[a : a + _CHUNK].tolist()
            for t, s, title in zip(times, streams, titles, strict=True):
                yield timeout(t - env.now)
                open_ticket(s, title)
