"""Task-queue workers: a pool of activity slots per Temporal task queue.

A Temporal worker polls its task queue and runs up to ``slots`` activities at once; ``workers``
of them give the queue ``workers x slots`` slots. An activity waits in the queue (first come,
first served) until a slot is free and holds it while it runs. Workflow tasks and timers hold
no slot (a workflow waiting for a signal costs a worker nothing). A pool may carry the
platform's latency on its queue (:mod:`protocol_lab.sim.platform`): ``schedule_to_start``
after the slot is granted, ``activity_overhead`` added to the time it is held (None: none).

:class:`SlotPool` is the lean resource under both task queues and BullMQ queues: a free-slot
counter and a FIFO of waiting events, with a slot handed straight to the next waiter on release.
The slot passes to the next waiter within the releasing step, without a trip through the
event queue. It keeps the counts of waiting and busy and their exact time integrals for the
metrics tracker.
Use it as::

    grant = pool.request()
    if grant is not None:
        yield grant          # queued: wait for a slot
    ...                      # run while holding the slot
    pool.release(enqueued, started)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

import simpy

from protocol_lab.domain.queues import TaskQueue
from protocol_lab.sim.metrics import MetricsTracker
from protocol_lab.sim.sampling import Sampler

__all__ = ["Grant", "SlotPool", "TaskQueueWorkers"]


class Grant:
    """A slot handed to a waiting activity: the fields a lean process reads of an event.

    Not a ``simpy.Event`` (whose constructor sets four fields and whose trigger sets two more):
    a grant only ever succeeds with no value, so ``_ok`` and ``_value`` are class attributes,
    and ``callbacks`` turns None once it is handed over, as a processed event's do.
    """

    __slots__ = ("callbacks",)
    _ok: Final = True
    _value: Final = None

    def __init__(self) -> None:
        self.callbacks: list[Callable[[Grant], None]] | None = []


def _hand_over(grant: Grant) -> None:
    """Process a grant at once, as ``Environment.step`` would when popping it.

    Scheduling the grant would cost a trip through the event queue for every queued activity;
    the waiter resumes at the same simulated time either way.
    """
    callbacks, grant.callbacks = grant.callbacks, None
    for callback in callbacks or ():
        callback(grant)


class SlotPool:
    """``capacity`` slots served first come, first served, with time-integrated counts."""

    __slots__ = (
        "_end_append",
        "_enq_append",
        "_q_append",
        "_start_append",
        "_waiters",
        "activity_overhead",
        "area_busy",
        "area_wait",
        "busy",
        "capacity",
        "code",
        "env",
        "free",
        "last",
        "name",
        "schedule_to_start",
        "tracker",
        "waiting",
    )

    def __init__(
        self,
        env: simpy.Environment,
        *,
        name: str,
        capacity: int,
        code: int,
        tracker: MetricsTracker,
    ) -> None:
        if capacity < 1:
            raise ValueError("a pool needs at least one slot")
        self.env = env
        self.name = name
        self.capacity = capacity
        self.code = code
        self.tracker = tracker
        self.free = capacity
        self.busy = 0
        self.waiting = 0
        self.area_wait = 0.0
        self.area_busy = 0.0
        self.last = 0.0
        self._waiters: deque[Grant] = deque()
        # the platform's latency on this queue, in simulated seconds (None: none)
        self.schedule_to_start: Sampler | None = None
        self.activity_overhead: Sampler | None = None
        # the tracker's attempt columns, appended to directly (once per attempt)
        self._q_append = tracker.a_queue.append
        self._enq_append = tracker.a_enq.append
        self._start_append = tracker.a_start.append
        self._end_append = tracker.a_end.append
        tracker.pools.append(self)

    def advance(self, now: float) -> None:
        """Bring the time integrals up to ``now``."""
        dt = now - self.last
        if dt:
            self.area_wait += self.waiting * dt
            self.area_busy += self.busy * dt
            self.last = now

    def request(self) -> Grant | None:
        """Take a slot now (returns None) or get an event that fires when one is handed over."""
        now = self.env._now  # the attribute behind ``now``: no property call per attempt
        dt = now - self.last
        if dt:
            self.area_wait += self.waiting * dt
            self.area_busy += self.busy * dt
            self.last = now
        if self.free:
            self.free -= 1
            self.busy += 1
            return None
        grant = Grant()
        self._waiters.append(grant)
        self.waiting += 1
        return grant

    def release(self, enqueued: float, started: float) -> None:
        """Give the slot back (to the next waiter, if any) and record the attempt."""
        now = self.env._now
        dt = now - self.last
        if dt:
            self.area_wait += self.waiting * dt
            self.area_busy += self.busy * dt
            self.last = now
        self._q_append(self.code)
        self._enq_append(enqueued)
        self._start_append(started)
        self._end_append(now)
        if self._waiters:
            self.waiting -= 1
            _hand_over(self._waiters.popleft())
        else:
            self.busy -= 1
            self.free += 1


class TaskQueueWorkers(SlotPool):
    """The activity slots of one Temporal task queue: ``workers`` x ``slots``."""

    __slots__ = ("queue", "slots", "workers")

    def __init__(
        self,
        env: simpy.Environment,
        *,
        queue: TaskQueue,
        workers: int,
        slots: int,
        code: int,
        tracker: MetricsTracker,
    ) -> None:
        super().__init__(
            env, name=queue.value, capacity=workers * slots, code=code, tracker=tracker
        )
        self.queue = queue
        self.workers = workers
        self.slots = slots
