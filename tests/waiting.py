"""The one way tests wait: poll a probe until it holds, or fail with what was last seen."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["eventually", "eventually_sync"]


async def eventually(
    probe: Callable[[], Awaitable[T | None] | T | None],
    *,
    within_s: float = 30.0,
    every_s: float = 0.1,
) -> T:
    """Call ``probe`` (sync or async) until it returns something other than None/False.

    Returns that value; raises ``AssertionError`` with the last value after ``within_s``.
    An exception raised by the probe propagates at once (a broken probe is not a wait).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    last: Any = None
    while True:
        last = probe()
        if inspect.isawaitable(last):
            last = await last
        if last is not None and last is not False:
            return last  # type: ignore[no-any-return]
        if loop.time() >= deadline:
            raise AssertionError(f"condition not met within {within_s} s (last: {last!r})")
        await asyncio.sleep(every_s)


def eventually_sync(
    probe: Callable[[], T | None], *, within_s: float = 30.0, every_s: float = 0.1
) -> T:
    """:func:`eventually` for synchronous tests and fixtures."""
    deadline = time.monotonic() + within_s
    while True:
        last = probe()
        if last is not None and last is not False:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {within_s} s (last: {last!r})")
        time.sleep(every_s)
