"""The simulator's fast paths read and set two private fields of SimPy's events (``_ok`` and
``_value``, in ``protocol_lab.sim.flow`` and ``protocol_lab.sim.workers``), as SimPy's own
``Environment.step`` does. pyproject pins the SimPy range these tests pass on; a SimPy that
renames or reinterprets the fields fails here, by name, before any simulation goes subtly wrong.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from protocol_lab.sim.flow import start
from protocol_lab.sim.workers import _hand_over


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


def test_a_hand_over_triggers_and_processes_a_grant_as_the_environment_would() -> None:
    env = simpy.Environment()
    grant = env.event()
    woken: list[Any] = []
    grant.callbacks.append(lambda event: woken.append(event.value))
    _hand_over(grant)
    assert grant.triggered
    assert grant.ok
    assert grant.processed
    assert woken == [None]
