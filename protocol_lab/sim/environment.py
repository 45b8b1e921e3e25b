"""The SimPy event loop, and a timeout, with less Python per event.

A million customers are two million events; per event, ``simpy.Environment.run`` calls
:meth:`~simpy.Environment.step` and ``simpy.Timeout`` calls ``Environment.schedule``.
:class:`LeanEnvironment` runs the loop body of ``step`` in place, and :class:`Wake` is a
timeout that puts itself on the event queue. Events are ordered and processed exactly as SimPy
orders and processes them (time, priority, then creation), with the same handling of a stop
request and of failed events. The per-customer paths read ``env._now``, the attribute behind
the ``now`` property, for the same reason (eight property calls per customer).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any, Final

import simpy
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import NORMAL, URGENT, Event, EventPriority

__all__ = ["LeanEnvironment", "Wake"]


class Wake:
    """``simpy.Timeout(env, delay)`` without the ``schedule`` call: fires ``delay`` from now.

    Not a ``simpy.Event`` subclass, so that it can have slots (no per-instance dict): it has
    the fields SimPy's loop and processes read of an event (``callbacks``, ``_ok``,
    ``_value``), which is all they ask of what a process yields. A timeout always succeeds with
    no value, so ``_ok`` and ``_value`` are class attributes, set by no instance.
    """

    __slots__ = ("callbacks", "env")
    _ok: Final = True
    _value: Final = None

    def __init__(self, env: simpy.Environment, delay: float) -> None:
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        self.env = env
        self.callbacks: list[Callable[[Wake], None]] | None = []
        # the queue is typed for simpy.Event; its loop reads only the fields above
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), self))  # type: ignore[misc]


class LeanEnvironment(simpy.Environment):
    """``simpy.Environment`` with :meth:`run` stepping through events without a call each."""

    def run(self, until: float | Event | None = None) -> Any:
        """Process events until ``until`` (a time or an event) or until none are left.

        The same contract as :meth:`simpy.Environment.run`.
        """
        if until is not None:
            if not isinstance(until, Event):
                at = until if isinstance(until, int) else float(until)
                if at <= self._now:
                    raise ValueError(
                        f"until ({at}) must be greater than the current simulation time"
                    )
                until = Event(self)
                until._ok = True
                until._value = None
                self.schedule(until, URGENT, at - self._now)
            elif until.callbacks is None:
                return until.value
            until.callbacks.append(StopSimulation.callback)
        try:
            self._loop()
        except StopSimulation as exc:
            return exc.args[0]
        except EmptySchedule:
            if until is not None:
                assert not until.triggered
                raise RuntimeError(
                    f'No scheduled events left but "until" event was not triggered: {until}'
                ) from None
        return None

    def _loop(self) -> None:
        """``step`` repeated until it raises (a stop, an empty schedule or a failure)."""
        queue = self._queue
        pop = heappop
        while True:
            try:
                self._now, _, _, event = pop(queue)
            except IndexError:
                raise EmptySchedule from None
            callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
            try:
                for callback in callbacks:  # type: ignore[union-attr]
                    callback(event)
            except StopSimulation:
                event.callbacks = callbacks[callbacks.index(callback) + 1 :]  # type: ignore[index]
                self.schedule(event, EventPriority(-1))
                raise
            if not event._ok and not hasattr(event, "_defused"):
                exc = type(event._value)(*event._value.args)
                exc.__cause__ = event._value
                raise exc
