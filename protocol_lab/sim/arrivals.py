"""Ticket arrivals: non-homogeneous Poisson streams and the source process that opens tickets.

Each :class:`protocol_lab.sim.scenario.ArrivalStream` is a Poisson process whose rate is
piecewise constant per UTC hour: ``tickets_per_week / 168`` times the hour-of-week profile factor
(times the scenario's forecast ``scale``). Arrival times are drawn vectorised, a week at a time,
into flat arrays (time, stream, title); the source process walks them in order and opens one
ticket per arrival, so no per-ticket object exists before its arrival.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from heapq import heappush
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import simpy
from simpy.events import NORMAL

from protocol_lab.domain.errors import ScenarioError
from protocol_lab.domain.paths import DATA_DIR
from protocol_lab.sim.environment import Wake
from protocol_lab.sim.scenario import Scenario

if TYPE_CHECKING:
    from protocol_lab.sim.tickets import TicketDesk

__all__ = [
    "ArrivalSchedule",
    "TicketSource",
    "generate_arrivals",
    "iter_arrivals",
    "observed_arrivals",
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


_Chunk = tuple[Callable[[int, int], Any], list[float], list[int], list[int]]


def _chunks(blocks: Iterable[ArrivalSchedule], desk: TicketDesk) -> Iterator[_Chunk]:
    """The arrivals as Python lists, a chunk at a time, with the desk method that opens them."""
    open_ticket: Callable[[int, int], Any] = desk.open_ticket
    for block in blocks:
        if block.titles is not None:
            open_ticket = partial(desk.open_ticket_titled, titles=block.titles)
        for a in range(0, len(block), _CHUNK):
            yield (
                open_ticket,
                block.times[a : a + _CHUNK].tolist(),
                block.stream[a : a + _CHUNK].tolist(),
                block.title[a : a + _CHUNK].tolist(),
            )


class TicketSource:
    """Opens each ticket at its arrival time: one timeout per ticket, whose callback opens it.

    A callback rather than a process: a generator resumed for every ticket costs a resume and
    a switch into its frame per arrival. The next arrival's timeout is created once the ticket
    is open, as the process did, so events keep their order. One arrival is pending at a time,
    so one :class:`Wake` serves a whole chunk of arrivals: each arrival pushes it back on the
    event queue with its next time (as a new timeout would be pushed, with the next event id)
    and gives it back its callbacks, which the loop had taken.
    """

    __slots__ = (
        "_callbacks",
        "_chunks",
        "_env",
        "_i",
        "_open",
        "_streams",
        "_times",
        "_titles",
    )

    def __init__(
        self, env: simpy.Environment, blocks: Iterable[ArrivalSchedule], desk: TicketDesk
    ) -> None:
        self._env = env
        self._chunks = _chunks(blocks, desk)
        self._open: Callable[[int, int], Any] = desk.open_ticket
        self._times: list[float] = []
        self._streams: list[int] = []
        self._titles: list[int] = []
        self._i = 0
        self._callbacks: list[Callable[[Wake], None]] | None = [self._arrive]

    def start(self) -> None:
        """Schedule the first arrival."""
        self._schedule()

    def _schedule(self) -> None:
        i = self._i
        if i == len(self._times):
            chunk = next(self._chunks, None)
            if chunk is None:
                return
            self._open, self._times, self._streams, self._titles = chunk
            self._i = i = 0
        env = self._env
        Wake(env, self._times[i] - env._now).callbacks = self._callbacks

    def _arrive(self, event: Wake) -> None:
        i = self._i
        self._open(self._streams[i], self._titles[i])
        i += 1
        self._i = i
        if i == len(self._times):
            self._schedule()  # the next chunk, if any
            return
        # the event back on the queue, not a new Wake: this runs once per ticket
        env = self._env
        now = env._now
        delay = self._times[i] - now
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        # the time as Wake computes it (now + delay), to the last bit
        heappush(env._queue, (now + delay, NORMAL, next(env._eid), event))  # type: ignore[misc]
        event.callbacks = self._callbacks
