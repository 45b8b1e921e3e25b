"""The simulator's fast paths read and set two private fields of SimPy's events (``_ok`` and
``_value``, in ``protocol_lab.sim.flow``), as SimPy's own ``Environment.step`` does, and
the simulator's own events (``Wake``, a slot's ``Grant``) stand in for SimPy's with the same
fields. pyproject pins the SimPy range these tests pass on; a SimPy that
renames or reinterprets the fields fails here, by name, before any simulation goes subtly wrong.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from protocol_lab.sim.environment import LeanEnvironment, Wake
from protocol_lab.sim.flow import start
from protocol_lab.sim.metrics import MetricsTracker
from protocol_lab.sim.workers import Grant, SlotPool


def test_a_processed_event_keeps_its_outcome_in_ok_and_value() -> None:
    env = simpy.Environment()
    done = env.timeout(5, value="five")
    failed = env.event()
    failed.fail(ValueError("no"))
    failed.defused = True
    env.run()
    assert done.processed
    assert done._ok is True
    assert done._value == "five"
    assert done.value == "five"
    assert failed._ok is False
    assert isinstance(failed._value, ValueError)
    # a processed event has no callbacks list left, which is how flow.start sees it
    assert done.callbacks is None


def test_an_untriggered_event_is_pending_in_value() -> None:
    env = simpy.Environment()
    event = env.event()
    assert event._value is simpy.events.PENDING
    assert not event.triggered
    assert event.callbacks == []


def test_a_lean_process_resumes_with_each_value_and_at_once_on_a_processed_event() -> None:
    env = simpy.Environment()
    seen: list[tuple[float, Any]] = []
    early = env.timeout(0, value="early")
    env.run()  # processed before the flow waits on it

    def flow() -> Generator[simpy.Event, Any, None]:
        for wait in (
            lambda: early,
            lambda: env.timeout(3, value="three"),
            lambda: env.timeout(2, value="two"),
        ):
            value = yield wait()
            seen.append((env.now, value))

    start(flow())
    env.run()
    assert seen == [(0, "early"), (3, "three"), (5, "two")]


def test_a_slot_handed_over_resumes_the_waiter_as_a_processed_event_would() -> None:
    env = LeanEnvironment()
    pool = SlotPool(
        env,
        name="q",
        capacity=1,
        code=0,
        tracker=MetricsTracker(queues=["q"], kinds=["task"], interval_s=3600),
    )
    seen: list[tuple[str, float, Any]] = []
    grants: list[Grant] = []

    def holder() -> Generator[Any, Any, None]:
        assert pool.request() is None  # the free slot, at once
        yield Wake(env, 5)
        pool.release(0.0, 0.0)

    def waiter() -> Generator[Any, Any, None]:
        grant = pool.request()
        assert grant is not None
        grants.append(grant)
        value = yield grant
        seen.append(("granted", env.now, value))
        yield Wake(env, 2)
        seen.append(("done", env.now, None))

    start(holder())
    start(waiter())
    env.run()
    assert seen == [("granted", 5, None), ("done", 7, None)]
    # handed over as Environment.step processes an event: succeeded, no value, no callbacks
    assert grants[0]._ok is True
    assert grants[0]._value is None
    assert grants[0].callbacks is None


def test_a_lean_process_ends_on_return_whether_resumed_with_none_or_a_value() -> None:
    env = simpy.Environment()
    ended: list[str] = []

    def flow(value: object) -> Generator[simpy.Event, Any, None]:
        got = yield env.timeout(1, value=value)
        assert got == value
        ended.append(repr(value))

    start(flow(None))
    start(flow("x"))
    env.run()
    assert sorted(ended) == ["'x'", "None"]
