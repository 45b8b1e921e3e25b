"""Which failures of the rule engine pass by themselves, and so are worth retrying.

A dependency that is down or slow fails transiently: a connection refused or reset, a timeout,
Temporal answering ``UNAVAILABLE`` / ``DEADLINE_EXCEEDED`` / ``RESOURCE_EXHAUSTED`` (or a lazy
client that cannot connect yet), Redis ``ConnectionError`` / ``TimeoutError`` (``BusyLoadingError``
while it reloads its append-only file is one), the store's connection failing or being locked.
Anything else is permanent: an :class:`~service.automation.starting.ActionError`, bad data, a
refusal; retrying it cannot help.

The whole chain of causes is looked at, since the workflow service re-raises Temporal's errors as
its own errors (``raise UnavailableError(...) from None`` keeps the original as the context).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from temporalio.service import RPCError, RPCStatusCode

__all__ = ["TRANSIENT_RPC_STATUSES", "is_temporal_outage", "is_transient"]

TRANSIENT_RPC_STATUSES: Final = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)

_TRANSIENT_TYPES: Final = (
    OSError,  # ConnectionError, TimeoutError (asyncio's too), socket errors
    RedisConnectionError,
    RedisTimeoutError,
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
)


def _temporal_outage_itself(exc: BaseException) -> bool | None:
    """True or False when this exception says whether Temporal is unavailable; None to look at
    its cause."""
    if isinstance(exc, RPCError):
        return exc.status in TRANSIENT_RPC_STATUSES
    if isinstance(exc, RuntimeError) and str(exc).startswith("Failed client connect"):
        return True  # temporalio's lazy client, before its first successful connection
    return None


def _transient_itself(exc: BaseException) -> bool | None:
    """True or False when this exception decides it; None to look at its cause."""
    temporal = _temporal_outage_itself(exc)
    if temporal is not None:
        return temporal
    if isinstance(exc, _TRANSIENT_TYPES):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return None


def _first_verdict(exc: BaseException, verdict_of: Callable[[BaseException], bool | None]) -> bool:
    """The first verdict along the chain of causes of ``exc``, False when none decides."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        verdict = verdict_of(current)
        if verdict is not None:
            return verdict
        current = current.__cause__ or current.__context__
    return False


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a dependency being unavailable."""
    return _first_verdict(exc, _transient_itself)


def is_temporal_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is Temporal being unavailable, rather
    than the store or Redis."""
    return _first_verdict(exc, _temporal_outage_itself)
