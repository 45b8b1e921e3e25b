"""The window walk behind list pages: every row once, the right ones, at a cost that does not
grow with the list (the pages themselves are tested through the API against Temporal)."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import random
import time
from dataclasses import dataclass, field

import pytest

from service.executions.order_windows import (
    ORDER_CEILING,
    WindowHints,
    gather_newer,
    gather_older,
)
from service.temporal.ids import ORDER_PER_SECOND

NOW = int(time.time() * ORDER_PER_SECOND)


@dataclass(frozen=True)
class Row:
    order: int


@dataclass
class Visibility:
    """Rows by order, answering counts and reads of a window like a visibility query; it
    tallies what a count costs on SQLite visibility (the rows in its range)."""

    orders: list[int]
    counted: int = 0
    calls: int = 0
    read: list[tuple[int | None, int | None]] = field(default_factory=list)

    def _span(self, lower: int | None, upper: int | None) -> tuple[int, int]:
        low = 0 if lower is None else bisect.bisect_left(self.orders, lower)
        high = len(self.orders) if upper is None else bisect.bisect_left(self.orders, upper)
        return low, max(low, high)

    async def count(self, lower: int | None, upper: int | None) -> int:
        low, high = self._span(lower, upper)
        self.counted += high - low
        self.calls += 1
        return high - low

    async def fetch(self, lower: int | None, upper: int | None) -> list[Row]:
        self.read.append((lower, upper))
        self.calls += 1
        low, high = self._span(lower, upper)
        return [Row(order) for order in self.orders[low:high]]


def burst(size: int, *, rate: float = 130.0, gap_s: float = 0.0, seed: int = 1) -> list[int]:
    """``size`` orders started at ``rate`` a second, the last ``gap_s`` before now."""
    rng = random.Random(seed)
    at, orders = 0.0, []
    for _ in range(size):
        at += rng.expovariate(rate)
        orders.append(at)
    end = NOW - int(gap_s * ORDER_PER_SECOND)
    return [end - int((at - t) * ORDER_PER_SECOND) for t in orders]


def spread(rng: random.Random) -> list[int]:
    size = rng.choice([0, 1, 3, 50, 700, 3000])
    scale = 10 ** rng.randrange(6, 15)
    shape = rng.random()
    orders = set()
    for _ in range(size):
        if shape < 0.4:
            orders.add(NOW - rng.randrange(scale))
        elif shape < 0.7:  # clusters
            orders.add(NOW - rng.randrange(5) * scale - rng.randrange(scale // 1000 + 1))
        else:
            orders.add(NOW - int(rng.expovariate(1.0) * scale))
    return sorted(orders)


def older_ones(orders: list[int], upper: int | None, floor: int, need: int) -> list[int]:
    kept = [o for o in orders if o >= floor and (upper is None or o < upper)]
    return kept[-need:]


def newer_ones(orders: list[int], lower: int, ceiling: int, need: int) -> list[int]:
    return [o for o in orders if lower < o < ceiling][:need]


def disjoint(windows: list[tuple[int | None, int | None]]) -> bool:
    spans = sorted((lo or 0, ORDER_CEILING if hi is None else hi) for lo, hi in windows)
    return all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_pages_are_exact_and_read_each_row_once_whatever_the_hints() -> None:
    rng = random.Random(11)
    for _ in range(400):
        orders = spread(rng)
        hints = WindowHints()  # kept across this data's pages, as in a running API
        for _ in range(4):
            vis = Visibility(orders)
            need = rng.choice([1, 2, 11, 101])
            pick = orders[rng.randrange(len(orders))] if orders else NOW
            if rng.random() < 0.5:
                upper = rng.choice([None, pick])
                floor = rng.choice([0, pick - rng.randrange(10**12)])
                got = asyncio.run(
                    gather_older(
                        "q", vis.count, vis.fetch, upper=upper, need=need, floor=floor, hints=hints
                    )
                )
                want = older_ones(orders, upper, floor, need)
                assert sorted(r.order for r in got)[-need:] == want
            else:
                ceiling = rng.choice([ORDER_CEILING, pick + rng.randrange(10**12)])
                got = asyncio.run(
                    gather_newer(
                        "q",
                        vis.count,
                        vis.fetch,
                        lower=pick,
                        need=need,
                        ceiling=ceiling,
                        hints=hints,
                    )
                )
                want = newer_ones(orders, pick, ceiling, need)
                assert sorted(r.order for r in got)[:need] == want
            assert len({r.order for r in got}) == len(got)
            assert disjoint(vis.read)


@pytest.mark.parametrize("gap_s", [1.0, 60.0, 3600.0])
def test_a_repeated_first_page_costs_about_a_page_at_100k(gap_s: float) -> None:
    """100x the thousand workflows a desk starts with: once a query has been walked, its next
    first page counts a few hundred rows, however far back the last start was."""
    vis = Visibility(burst(100_000, gap_s=gap_s))
    hints = WindowHints()
    pages = []
    for _ in range(3):
        vis.counted = vis.calls = 0
        got = asyncio.run(
            gather_older("q", vis.count, vis.fetch, upper=None, need=101, hints=hints)
        )
        assert sorted(r.order for r in got)[-101:] == vis.orders[-101:]
        pages.append((vis.counted, vis.calls))
    for counted, calls in pages[1:]:
        assert counted <= 4 * 101
        assert calls <= 4


def test_a_deep_page_costs_about_a_page_at_100k() -> None:
    vis = Visibility(burst(100_000))
    hints = WindowHints()
    cursor = vis.orders[50_000]
    asyncio.run(gather_older("q", vis.count, vis.fetch, upper=cursor, need=101, hints=hints))
    vis.counted = 0
    got = asyncio.run(gather_older("q", vis.count, vis.fetch, upper=cursor, need=101, hints=hints))
    assert sorted(r.order for r in got)[-101:] == vis.orders[49_899:50_000]
    assert vis.counted <= 4 * 101


def test_a_cold_walk_counts_a_bounded_multiple_of_the_rows() -> None:
    """Without hints, a month-old burst of 100k: the windows that widen into it count it a few
    times, not once per window."""
    vis = Visibility(burst(100_000, gap_s=30 * 86_400))
    got = asyncio.run(
        gather_older("q", vis.count, vis.fetch, upper=None, need=101, hints=WindowHints())
    )
    assert sorted(r.order for r in got)[-101:] == vis.orders[-101:]
    assert vis.counted <= 5 * len(vis.orders)
    assert vis.calls <= 80


def test_hints_are_bounded() -> None:
    hints = WindowHints(size=3)
    rows = [Row(1), Row(5)]
    for query in "abcde":
        hints.learn(query, True, rows, first_page=True)
    assert hints.get("a", True) is None
    assert hints.get("e", True) is not None
    assert hints.get("e", False) is None
