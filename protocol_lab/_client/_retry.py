"""Retries, written once as a sans-I/O flow that both client twins drive.

:func:`retry_flow` is a generator that yields :class:`Send` (send this request, reply with the
``httpx.Response`` or the ``httpx.RequestError`` it raised) and :class:`Sleep` (wait, reply
with None) and finally returns the response to hand to the caller. It never performs I/O itself,
so the same code serves ``Client`` (``time.sleep``) and ``AsyncClient`` (``asyncio.sleep``).

What is retried:

- a *replayable* request — GET, HEAD, OPTIONS, PUT, DELETE, or any request carrying an
  ``Idempotency-Key`` (the clients give one to every POST the API deduplicates) — on any
  transport error (connection, timeout, protocol), on 429 and on 5xx except 501;
- any other request (PATCH, a rule toggle) only on errors raised before it could reach the server
  (``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``).

The wait before retry *n* (0-based) is ``min(max_delay, initial_delay * 2**n)`` reduced by a random
fraction of at most ``jitter``; a ``Retry-After`` header (seconds or HTTP date) replaces it, and a
``Retry-After`` beyond ``max_retry_after`` ends the retries (the error is raised instead).
"""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Final

import httpx

from protocol_lab._client._errors import request_error_from

__all__ = [
    "IDEMPOTENCY_HEADER",
    "IDEMPOTENT_METHODS",
    "Outcome",
    "RetryPolicy",
    "Send",
    "Sleep",
    "is_replayable",
    "parse_retry_after",
    "retry_flow",
]

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
_NOT_SENT_ERRORS: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

log = logging.getLogger("protocol_lab.client")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry; ``RetryPolicy(max_retries=0)`` disables retries.

    Times are seconds. ``jitter`` in [0, 1] is the largest fraction of a backoff delay removed
    at random, so that many clients do not retry in step.
    """

    max_retries: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.5
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        """Refuse negative counts and delays and a jitter outside [0, 1]."""
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.initial_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")

    def backoff(self, attempt: int, *, rand: float) -> float:
        """The delay before retry number ``attempt`` (0-based), given a uniform draw in [0, 1)."""
        base = min(self.max_delay, self.initial_delay * math.pow(2.0, attempt))
        return base * (1.0 - self.jitter * rand)


@dataclass(frozen=True)
class Send:
    """Instruction: send ``request``; reply with its response or the ``httpx.RequestError``."""

    request: httpx.Request


@dataclass(frozen=True)
class Sleep:
    """Instruction: wait ``seconds``; reply with None."""

    seconds: float


Outcome = httpx.Response | httpx.RequestError | None


def is_replayable(request: httpx.Request) -> bool:
    """Whether sending ``request`` twice has the effect of sending it once."""
    return request.method in IDEMPOTENT_METHODS or IDEMPOTENCY_HEADER in request.headers


def _retryable_status(status_code: int) -> bool:
    return status_code == 429 or (status_code >= 500 and status_code != 501)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date); None if absent
    or unreadable. ``now`` (Unix seconds) is the clock for the date form."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def retry_flow(
    request: httpx.Request,
    *,
    policy: RetryPolicy,
    random: Callable[[], float],
) -> Generator[Send | Sleep, Outcome, httpx.Response]:
    """Send ``request`` with retries; see the module docstring for the rules.

    Returns the last response (successful or not: the caller maps error statuses); raises the
    mapped :class:`ApiRequestError` when a transport error is not retried or retries ran out.
    """
    replayable = is_replayable(request)
    attempt = 0
    while True:
        outcome = yield Send(request)
        can_retry = attempt < policy.max_retries
        delay: float
        if isinstance(outcome, httpx.RequestError):
            retryable = isinstance(outcome, httpx.TransportError) and (
                replayable or isinstance(outcome, _NOT_SENT_ERRORS)
            )
            if not (can_retry and retryable):
                raise request_error_from(outcome, request=request) from outcome
            delay = policy.backoff(attempt, rand=random())
        elif isinstance(outcome, httpx.Response):
            if not (can_retry and replayable and _retryable_status(outcome.status_code)):
                return outcome
            retry_after = parse_retry_after(outcome.headers.get("Retry-After"))
            if retry_after is None:
                delay = policy.backoff(attempt, rand=random())
            elif retry_after <= policy.max_retry_after:
                delay = retry_after
            else:
                return outcome
        else:
            raise TypeError(f"retry_flow expects a response or transport error, got {outcome!r}")
        log.info(
            "retrying %s %s in %.2fs (retry %d of %d) after %s",
            request.method,
            request.url,
            delay,
            attempt + 1,
            policy.max_retries,
            outcome if isinstance(outcome, httpx.Response) else repr(outcome),
        )
        attempt += 1
        if delay > 0:
            yield Sleep(delay)
