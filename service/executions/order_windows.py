"""The newest (or oldest) workflows of a visibility query, gathered by ``ProtocolOrder`` windows.

Temporal's SQL visibility cannot sort by a custom search attribute, so a page is gathered from
contiguous, disjoint windows of ``ProtocolOrder`` walked away from where the page starts (the
cursor, or now), each one counted and fetched only when it holds few enough rows. What makes
this fast or slow is that a count costs the rows in its range, whereas an empty window costs an
index probe. So the walk:

- sizes its first window from the density the same query found last time (a hint), and for a
  first page probes the part newer than the newest row the query found last time on its own:
  when nothing was started since, that probe is empty and the next window holds about one page;
- after a window holds too many rows, remembers that count and probes only inside that range,
  with windows sized by its density, instead of widening into it again;
- after a fetch, sizes the next window by the density just seen, for the rows still needed.

The hints only choose where windows are cut: every row of the range is in exactly one window
either way, so a stale hint costs time, never a row.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from service.temporal.ids import ORDER_PER_SECOND

__all__ = [
    "ORDER_CEILING",
    "Ordered",
    "WindowHints",
    "gather_newer",
    "gather_older",
    "walk",
]

# Above every ProtocolOrder (orders are below 2**63).
ORDER_CEILING = 2**63
_FIRST_WIDTH = int(30 * ORDER_PER_SECOND)
_MIN_WIDTH = ORDER_PER_SECOND // 1000
_TOO_MANY = 400
# Visibility hands an order back through a float (off by up to a few hundred): the probe above
# the newest row seen starts this far above it.
_HINT_MARGIN = ORDER_PER_SECOND // 1000
_GROWTH = 4


class Ordered(Protocol):
    """A row of a walk: anything with its ``ProtocolOrder``."""

    @property
    def order(self) -> int: ...


T = TypeVar("T", bound=Ordered)


@dataclass(frozen=True)
class _Hint:
    density: float  # rows per ProtocolOrder unit near where the last page was found
    newest: int | None  # the newest row a first page found


class WindowHints:
    """What recent walks of each query found: its density, and the newest row of a first page.

    Kept per process for the ``size`` most recently walked queries.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._hints: OrderedDict[tuple[str, bool], _Hint] = OrderedDict()

    def get(self, query: str, older: bool) -> _Hint | None:
        """The hint for ``query`` walked in that direction, if any."""
        hint = self._hints.get((query, older))
        if hint is not None:
            self._hints.move_to_end((query, older))
        return hint

    def learn(self, query: str, older: bool, rows: Sequence[Ordered], *, first_page: bool) -> None:
        """Remember what a walk of ``query`` found (nothing is learnt from fewer than 2 rows)."""
        if len(rows) < 2:
            return
        orders = [row.order for row in rows]
        newest, oldest = max(orders), min(orders)
        density = (len(orders) - 1) / max(newest - oldest, 1)
        previous = self._hints.get((query, older))
        kept = previous.newest if previous is not None else None
        self._hints[(query, older)] = _Hint(density, newest if first_page else kept)
        self._hints.move_to_end((query, older))
        while len(self._hints) > self._size:
            self._hints.popitem(last=False)


HINTS = WindowHints()


async def walk(
    count: Callable[[int, int], Awaitable[int]],
    fetch: Callable[[int, int], Awaitable[list[T]]],
    *,
    length: int,
    need: int,
    width: int = _FIRST_WIDTH,
    first: int | None = None,
) -> list[T]:
    """At least ``need`` rows nearest the start (all there are, if fewer), by windows of
    distance from it: ``count(near, far)`` and ``fetch(near, far)`` read ``near <= d < far``.

    ``length`` is how far rows may lie, ``width`` the first window's, ``first`` where to cut
    the first window instead (a hint). Every distance below ``length`` is read at most once.
    """
    too_many = max(_TOO_MANY, need * 4)
    if first is not None and not 0 < first < length:
        first = None
    near, rows = 0, list[T]()
    dense_end, dense_rows = 0, 0  # [near, dense_end) holds dense_rows > too_many, if > near
    while near < length and len(rows) < need:
        if dense_end > near and dense_rows <= too_many:
            far, found = dense_end, dense_rows
        else:
            far = first if first is not None else min(near + width, length)
            if dense_end > near:
                far = min(far, near + max((dense_end - near) // 2, _MIN_WIDTH))
            found = await count(near, far)
            if found > too_many and far - near > _MIN_WIDTH:
                dense_end, dense_rows = far, found
                width = max(_MIN_WIDTH, (far - near) * 2 * need // found)
                first = None
                continue
        if found:
            rows += await fetch(near, far)
        dense_rows -= found if dense_end > near else 0
        width = _next_width(width, far - near, found, need - len(rows), hinted=first is not None)
        near, first = far, None
    return rows


def _next_width(width: int, span: int, found: int, still_needed: int, *, hinted: bool) -> int:
    if hinted and not found:
        return width  # the hint's probe was empty: the density hint sizes the next one
    if not found:
        return span * _GROWTH
    return max(_MIN_WIDTH, min(span * _GROWTH**2, span * max(still_needed, 1) * 3 // (2 * found)))


def _first_width(hint: _Hint | None, need: int) -> int:
    if hint is None or hint.density <= 0:
        return _FIRST_WIDTH
    return max(_MIN_WIDTH, min(int(2 * need / hint.density), ORDER_CEILING))


async def gather_older(
    query: str,
    window_rows: Callable[[int | None, int | None], Awaitable[int]],
    window_fetch: Callable[[int | None, int | None], Awaitable[list[T]]],
    *,
    upper: int | None,
    need: int,
    floor: int = 0,
    hints: WindowHints = HINTS,
) -> list[T]:
    """At least ``need`` rows of ``query`` with ``floor`` <= order < ``upper`` (``None``: no
    bound), the newest ones (all there are, if fewer).

    ``window_rows(lower, upper)`` counts and ``window_fetch(lower, upper)`` reads the rows of a
    window (bounds as above, ``None``: unbounded).
    """
    start = upper if upper is not None else int(time.time() * ORDER_PER_SECOND)
    hint = hints.get(query, older=True)
    first = None
    if upper is None and hint is not None and hint.newest is not None:
        first = start - (hint.newest + _HINT_MARGIN)

    def bounds(near: int, far: int) -> tuple[int, int | None]:
        top = None if near == 0 and upper is None else start - near
        return start - far, top

    rows = await walk(
        lambda near, far: window_rows(*bounds(near, far)),
        lambda near, far: window_fetch(*bounds(near, far)),
        length=start - floor,
        need=need,
        width=_first_width(hint, need),
        first=first,
    )
    hints.learn(query, True, rows, first_page=upper is None)
    return rows


async def gather_newer(
    query: str,
    window_rows: Callable[[int | None, int | None], Awaitable[int]],
    window_fetch: Callable[[int | None, int | None], Awaitable[list[T]]],
    *,
    lower: int,
    need: int,
    ceiling: int = ORDER_CEILING,
    hints: WindowHints = HINTS,
) -> list[T]:
    """At least ``need`` rows of ``query`` with ``lower`` < order < ``ceiling``, the oldest
    ones (all there are, if fewer); the callables as in :func:`gather_older`."""
    start = lower + 1

    def bounds(near: int, far: int) -> tuple[int, int | None]:
        top = start + far
        # No bound at the very top: visibility's integers stop below it.
        return start + near, None if top >= ORDER_CEILING else top

    rows = await walk(
        lambda near, far: window_rows(*bounds(near, far)),
        lambda near, far: window_fetch(*bounds(near, far)),
        length=ceiling - start,
        need=need,
        width=_first_width(hints.get(query, older=False), need),
    )
    hints.learn(query, False, rows, first_page=False)
    return rows
