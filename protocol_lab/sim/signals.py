"""Human and external signals: when an awaited signal arrives, and what it says.

A plan's signal step waits for a named signal (an approval, a user's answer, an incident
acknowledgement) up to its ``timeout_s``. Its response time is drawn from the step's (or the
scenario's) duration model; for people at work it runs on the business calendar (a request made
on Friday evening is answered on Monday), for users, on-call engineers and systems on the wall
clock. Since the arrival time is known when the wait begins, one timer covers the race between
the signal and the timeout. A received decision is a rejection with the configured probability.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import simpy

from protocol_lab.domain.catalog import OnTimeout
from protocol_lab.sim.business_clock import BusinessClock
from protocol_lab.sim.sampling import Sampler, UniformSampler

__all__ = ["SignalOutcome", "SignalSource", "SignalWait"]


class SignalOutcome(IntEnum):
    """How a signal wait ended."""

    RECEIVED = 0
    REJECTED = 1
    TIMED_OUT = 2


@dataclass(slots=True)
class SignalWait:
    """A compiled signal step: its texts, response model, calendar use and timeout."""

    step_id: str
    signal: str
    response: Sampler
    decisions: UniformSampler
    business_hours: bool
    reject_probability: float
    timeout_s: float
    on_timeout: OnTimeout
    started_code: int
    received_code: int
    refusal_code: int  # the signal_received of a rejection
    timeout_code: int
    rejected_code: int  # the workflow_failed after it


class SignalSource:
    """The people and systems that send signals, with their working calendar."""

    def __init__(
        self, env: simpy.Environment, *, clock: BusinessClock, uniform: UniformSampler
    ) -> None:
        self.env = env
        self.clock = clock
        self.uniform = uniform

    def arrival_delay(self, wait: SignalWait) -> float:
        """Seconds from now until the signal arrives (may exceed the timeout)."""
        now = self.env.now
        d = wait.response()
        if wait.business_hours:
            return self.clock.add(now, d) - now
        return d

    def wait(self, wait: SignalWait) -> Generator[Any, Any, SignalOutcome]:
        """Process fragment: wait for the signal or the timeout, whichever comes first."""
        delay = self.arrival_delay(wait)
        if delay >= wait.timeout_s:
            yield self.env.timeout(wait.timeout_s)
            return SignalOutcome.TIMED_OUT
        yield self.env.timeout(delay)
        if wait.reject_probability and wait.decisions() < wait.reject_probability:
            return SignalOutcome.REJECTED
        return SignalOutcome.RECEIVED
