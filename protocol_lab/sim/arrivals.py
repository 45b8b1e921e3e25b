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
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import simpy

from protocol_lab.domain.errors import ScenarioError
from protocol_lab.domain.paths import DATA_DIR
from protocol_lab.sim.environment import Wake
from protocol_lab.sim.scenario import Scenario

if TYPE_CHECKING:
    from protocol_lab.sim.tickets import TicketDesk

__all__ = [
    "ArrivalSchedule",
    "generate_arrivals",
    "iter_arrivals",
    "observed_arrivals",
    "ticket_source",
]

_CHUNK = 2048


@dataclass(frozen=True, slots=True)
class ArrivalSchedule:
    """Arrival times (seconds from the scenario start), stream index and title index."""

    times: np.ndarray
    stream: np.ndarray
    title: np.ndarray
    titles: tuple[str, ...] | None = None  # observed arrivals: ``title`` indexes this list

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
    if arrivals.observed is not None:
        yield observed_arrivals(scenario)
        return
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


def observed_arrivals(scenario: Scenario) -> ArrivalSchedule:
    """The recorded arrivals of ``scenario.arrivals.observed`` within the horizon, in order."""
    path = Path(str(scenario.arrivals.observed))
    file = path if path.is_absolute() else DATA_DIR / path
    try:
        frame = pl.read_parquet(file) if file.suffix == ".parquet" else pl.read_csv(file)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ScenarioError(f"{file}: cannot read observed arrivals: {exc}") from exc
    missing = {"created_at", "category", "priority", "title"} - set(frame.columns)
    if missing:
        raise ScenarioError(f"{file}: observed arrivals need columns {sorted(missing)}")
    created = frame["created_at"]
    if created.dtype == pl.String:
        created = created.str.to_datetime(time_zone="UTC")
    elif isinstance(created.dtype, pl.Datetime) and created.dtype.time_zone is None:
        created = created.dt.replace_time_zone("UTC")
    origin_us = int(scenario.start.timestamp() * 1_000_000)
    seconds = (created.dt.epoch("us").to_numpy() - origin_us) / 1e6
    streams = {(s.category, s.priority.value): k for k, s in enumerate(scenario.arrivals.streams)}
    keys = list(zip(frame["category"].to_list(), frame["priority"].to_list(), strict=True))
    unknown = sorted({f"{c}/{p}" for c, p in keys if (c, p) not in streams})
    if unknown:
        raise ScenarioError(f"{file}: no arrival stream for {unknown}; add streams for them")
    titles = list(dict.fromkeys(frame["title"].to_list()))
    index = {t: i for i, t in enumerate(titles)}
    stream = np.array([streams[k] for k in keys], dtype=np.int16)
    title = np.array([index[t] for t in frame["title"].to_list()], dtype=np.int32)
    keep = (seconds >= 0) & (seconds < scenario.horizon_s)
    order = np.argsort(seconds[keep], kind="stable")
    if scenario.max_tickets is not None:
        order = order[: scenario.max_tickets]
    return ArrivalSchedule(
        times=seconds[keep][order],
        stream=stream[keep][order],
        title=title[keep][order],
        titles=tuple(titles),
    )


def generate_arrivals(scenario: Scenario, rng: np.random.Generator) -> ArrivalSchedule:
    """Every arrival of the scenario at once (the blocks of :func:`iter_arrivals`, joined)."""
    blocks = list(iter_arrivals(scenario, rng))
    if len(blocks) == 1:
        return blocks[0]
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
    for block in blocks:
        if block.titles is not None:
            open_ticket = partial(desk.open_ticket_titled, titles=block.titles)
        for a in range(0, len(block), _CHUNK):
            times = block.times[a : a + _CHUNK].tolist()
            streams = block.stream[a : a + _CHUNK].tolist()
            titles = block.title[a : a + _CHUNK].tolist()
            for t, s, title in zip(times, streams, titles, strict=True):
                yield Wake(env, t - env._now)
                open_ticket(s, title)
