"""The metrics tracker: queue lengths, busy slots and waits of every queue, over time.

Each queue (Temporal task queue or BullMQ job queue) keeps running counters of jobs waiting and
slots busy, with their exact time integrals (updated at every change). The tracker records, in
flat arrays:

- one row per attempt on a queue: queue, enqueued, started, ended (seconds);
- one snapshot per queue every ``interval_s``: waiting, busy, capacity and the integrals, from
  which mean length and utilisation over each interval follow exactly;

:meth:`MetricsTracker.queue_metrics` and :meth:`MetricsTracker.attempts_frame` build polars
frames from them.
"""

from __future__ import annotations

from array import array
from collections.abc import Generator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    import simpy

    from protocol_lab.sim.workers import SlotPool

__all__ = ["MetricsTracker"]


class MetricsTracker:
    """Flat records of attempts, periodic queue snapshots and work in progress."""

    def __init__(self, *, queues: Sequence[str], kinds: Sequence[str], interval_s: float) -> None:
        self.queues = list(queues)
        self.kinds = list(kinds)
        self.interval_s = interval_s
        self.pools: list[SlotPool] = []
        self.a_queue = array("b")
        self.a_enq = array("d")
        self.a_start = array("d")
        self.a_end = array("d")
        self.s_time = array("d")
        self.s_queue = array("b")
        self.s_waiting = array("i")
        self.s_busy = array("i")
        self.s_capacity = array("i")
        self.s_area_wait = array("d")
        self.s_area_busy = array("d")
        self.marks: dict[str, tuple[float, list[tuple[float, float]]]] = {}

    def attempt(self, queue: int, enqueued: float, started: float, ended: float) -> None:
        """Record one attempt (activity or job) on a queue."""
        self.a_queue.append(queue)
        self.a_enq.append(enqueued)
        self.a_start.append(started)
        self.a_end.append(ended)

    def mark(self, name: str, now: float) -> None:
        """Remember every queue's time integrals at a named instant (warm-up end, horizon)."""
        for pool in self.pools:
            pool.advance(now)
        self.marks[name] = (now, [(p.area_wait, p.area_busy) for p in self.pools])

    def window(self, start: str, end: str) -> tuple[float, list[tuple[float, float]]]:
        """Length of the window between two marks and each pool's (waiting, busy) integrals."""
        t0, a0 = self.marks[start]
        t1, a1 = self.marks[end]
        return t1 - t0, [(w1 - w0, b1 - b0) for (w0, b0), (w1, b1) in zip(a0, a1, strict=True)]

    def snapshot(self, now: float) -> None:
        """Record every queue's state now."""
        for pool in self.pools:
            pool.advance(now)
            self.s_time.append(now)
            self.s_queue.append(pool.code)
            self.s_waiting.append(pool.waiting)
            self.s_busy.append(pool.busy)
            self.s_capacity.append(pool.capacity)
            self.s_area_wait.append(pool.area_wait)
            self.s_area_busy.append(pool.area_busy)

    def sampler(self, env: simpy.Environment, *, until: float) -> Generator[Any, Any, None]:
        """Process: a snapshot at time 0 and every ``interval_s`` up to ``until``."""
        self.snapshot(env.now)
        while env.now + self.interval_s <= until:
            yield env.timeout(self.interval_s)
            self.snapshot(env.now)

    # -- frames ---------------------------------------------------------------------------

    def attempts_frame(self, *, origin: datetime | None = None) -> pl.DataFrame:
        """One row per attempt: queue, kind, enqueued_s, started_s, ended_s, wait_s, service_s."""
        q = np.frombuffer(self.a_queue, dtype=np.int8)
        enq = np.frombuffer(self.a_enq, dtype=np.float64)
        start = np.frombuffer(self.a_start, dtype=np.float64)
        end = np.frombuffer(self.a_end, dtype=np.float64)
        names = pl.Series(self.queues, dtype=pl.String())
        kinds = pl.Series(self.kinds, dtype=pl.String())
        codes = pl.Series(q.astype(np.int64))
        return pl.DataFrame(
            {
                "queue": names.gather(codes),
                "kind": kinds.gather(codes),
                "enqueued_s": enq,
                "started_s": start,
                "ended_s": end,
                "wait_s": start - enq,
                "service_s": end - start,
            }
        )

    def queue_metrics(self, *, origin: datetime) -> pl.DataFrame:
        """Per queue and interval: length, utilisation, arrivals, starts and waits.

        Columns: queue, kind, interval_start (UTC), interval_s, capacity, length (waiting at the
        end of the interval), busy, mean_length and utilisation (exact time averages over the
        interval), arrivals and started (attempts enqueued / started in it), mean_wait_s,
        p95_wait_s and max_wait_s (of the attempts started in it).
        """
        intervals = self._intervals()
        arrivals, waits = self._attempts_per_interval()
        origin_us = int(origin.timestamp() * 1_000_000)
        names = pl.Series(self.queues, dtype=pl.String())
        kinds = pl.Series(self.kinds, dtype=pl.String())
        out = (
            intervals.join(arrivals, on=["code", "slot"], how="left")
            .join(waits, on=["code", "slot"], how="left")
            .with_columns(
                pl.col("arrivals", "started").fill_null(0).cast(pl.Int64),
                interval_start=((pl.col("t0") * 1e6).round().cast(pl.Int64) + origin_us).cast(
                    pl.Datetime("us", "UTC")
                ),
            )
            .sort("code", "t0")
        )
        return out.select(
            queue=names.gather(out["code"].cast(pl.Int64)),
            kind=kinds.gather(out["code"].cast(pl.Int64)),
            interval_start="interval_start",
            interval_s="dt",
            capacity="capacity",
            length="length",
            busy="busy",
            mean_length="mean_length",
            utilisation="utilisation",
            arrivals="arrivals",
            started="started",
            mean_wait_s="mean_wait_s",
            p95_wait_s="p95_wait_s",
            max_wait_s="max_wait_s",
        )

    def _intervals(self) -> pl.DataFrame:
        """Per queue, the time between consecutive snapshots with its time-averaged length and
        utilisation, and the ``slot`` (interval number) it starts in."""
        snaps = pl.DataFrame(
            {
                "code": np.frombuffer(self.s_queue, dtype=np.int8),
                "t": np.frombuffer(self.s_time, dtype=np.float64),
                "length": np.frombuffer(self.s_waiting, dtype=np.int32),
                "busy": np.frombuffer(self.s_busy, dtype=np.int32),
                "capacity": np.frombuffer(self.s_capacity, dtype=np.int32),
                "aw": np.frombuffer(self.s_area_wait, dtype=np.float64),
                "ab": np.frombuffer(self.s_area_busy, dtype=np.float64),
            }
        ).sort("code", "t")
        by_q = pl.col("code")
        intervals = (
            snaps.with_columns(
                t0=pl.col("t").shift(1).over(by_q),
                dt=(pl.col("t") - pl.col("t").shift(1)).over(by_q),
                daw=(pl.col("aw") - pl.col("aw").shift(1)).over(by_q),
                dab=(pl.col("ab") - pl.col("ab").shift(1)).over(by_q),
            )
            .filter(pl.col("dt") > 0)
            .with_columns(
                mean_length=pl.col("daw") / pl.col("dt"),
                utilisation=pl.col("dab") / (pl.col("dt") * pl.col("capacity")),
                slot=(pl.col("t0") / self.interval_s).round().cast(pl.Int64),
            )
        )
        return intervals

    def _attempts_per_interval(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Per queue and slot: attempts enqueued, and attempts started with their waits."""
        att = pl.DataFrame(
            {
                "code": np.frombuffer(self.a_queue, dtype=np.int8),
                "enq": np.frombuffer(self.a_enq, dtype=np.float64),
                "start": np.frombuffer(self.a_start, dtype=np.float64),
            }
        )
        arrivals = att.group_by(
            "code", slot=(pl.col("enq") / self.interval_s).floor().cast(pl.Int64)
        ).agg(arrivals=pl.len())
        waits = att.group_by(
            "code", slot=(pl.col("start") / self.interval_s).floor().cast(pl.Int64)
        ).agg(
            started=pl.len(),
            mean_wait_s=(pl.col("start") - pl.col("enq")).mean(),
            p95_wait_s=(pl.col("start") - pl.col("enq")).quantile(0.95, "linear"),
            max_wait_s=(pl.col("start") - pl.col("enq")).max(),
        )
        return arrivals, waits
