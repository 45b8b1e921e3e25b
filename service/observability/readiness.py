"""Readiness: can this API process serve requests? The database, Temporal and Redis are each
asked once, all at the same time, each within ``CHECK_WAIT_S``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from service.state import Resources

__all__ = ["CHECK_WAIT_S", "check_readiness"]

CHECK_WAIT_S: Final = 2.0


async def check_readiness(state: Resources) -> dict[str, str]:
    """``{"database": "ok", "temporal": "ok", "redis": "ok"}``, or what went wrong for each part
    that did not answer in time (``"timed out after 2.0 s"``, or the error's type)."""
    checks: dict[str, Callable[[], Awaitable[object]]] = {
        "database": lambda: _database(state),
        "temporal": lambda: state.temporal.service_client.check_health(
            timeout=timedelta(seconds=CHECK_WAIT_S)
        ),
        "redis": lambda: _redis(state.jobs.redis_url),
    }
    answers = await asyncio.gather(*(_bounded(check) for check in checks.values()))
    return dict(zip(checks, answers, strict=True))


async def _bounded(check: Callable[[], Awaitable[object]]) -> str:
    try:
        await asyncio.wait_for(check(), CHECK_WAIT_S)
    except TimeoutError:
        return f"timed out after {CHECK_WAIT_S} s"
    except Exception as exc:  # any failure reads "down", named by its type, never its text
        return f"unavailable ({type(exc).__name__})"
    return "ok"


async def _database(state: Resources) -> None:
    from sqlalchemy import text

    async with state.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _redis(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=CHECK_WAIT_S, socket_timeout=CHECK_WAIT_S)
    try:
        await client.ping()
    finally:
        await client.aclose()
