"""Lean processes: drive a generator on SimPy events without a ``simpy.Process``.

``simpy.Process`` costs two scheduler events per process (its start and its end) plus
bookkeeping on every resume. For the high-volume entities (a workflow per ticket, a job per
notification) that is a third of a run. :func:`start` drives the same kind of generator — it
yields SimPy events (timeouts, resource grants) and is resumed with their values — by hooking
the events' callbacks directly: it starts at once, inside the caller's step, and leaves no end
event. Nobody can wait for or interrupt such a process; the model never needs to.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

__all__ = ["start"]


class _Flow:
    __slots__ = ("_generator",)

    def __init__(self, generator: Generator[simpy.Event, Any, Any]) -> None:
        self._generator = generator

    def resume(self, event: simpy.Event) -> None:
        # the private fields, as Environment.step reads them: this runs once per wait, and
        # holds the loop itself rather than calling a step method (one call fewer per wait)
        if not event._ok:
            raise RuntimeError(f"an awaited event failed: {event._value!r}")
        generator = self._generator
        value = event._value
        while True:
            if value is None:
                # next() with a default ends without raising StopIteration (the common case:
                # every timeout and slot grant resumes with None)
                following = next(generator, None)
                if following is None:
                    return
                event = following
            else:
                try:
                    event = generator.send(value)
                except StopIteration:
                    return
            callbacks = event.callbacks
            if callbacks is not None:
                callbacks.append(self.resume)
                return
            value = event._value  # already processed: continue at once


def start(generator: Generator[simpy.Event, Any, Any]) -> None:
    """Run ``generator`` now until its first wait, then on each awaited event."""
    event: simpy.Event | None = next(generator, None)
    while event is not None:
        callbacks = event.callbacks
        if callbacks is not None:
            callbacks.append(_Flow(generator).resume)
            return
        value = event._value  # already processed: continue at once
        if value is None:
            event = next(generator, None)
        else:
            try:
                event = generator.send(value)
            except StopIteration:
                return
