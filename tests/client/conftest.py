"""Fixtures for the client tests: the fake API, both twins wired to it without real sleeps,
and real sockets that refuse connections or never answer."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from protocol_lab.client import AsyncClient, Client, RetryPolicy
from service.stack import free_port

from .fake_api import GOOD_TOKEN, FakeApi

# Deterministic backoff: initial 0.5 s doubling up to 4 s, no jitter (random() is pinned to 0).
POLICY = RetryPolicy(max_retries=3, initial_delay=0.5, max_delay=4.0, jitter=0.5)


@pytest.fixture
def fake() -> FakeApi:
    """A fresh fake service."""
    return FakeApi()


@pytest.fixture
def sleeps() -> list[float]:
    """The pauses the client asked for, in order (nothing really sleeps)."""
    return []


@pytest.fixture
def client(fake: FakeApi, sleeps: list[float]) -> Iterator[Client]:
    """A Client on the fake, recording its sleeps."""
    with Client(
        base_url="http://api.test",
        token=GOOD_TOKEN,
        transport=fake.transport,
        retry=POLICY,
        sleep=sleeps.append,
        random=lambda: 0.0,
    ) as api:
        yield api


@pytest.fixture
async def aclient(fake: FakeApi, sleeps: list[float]) -> AsyncIterator[AsyncClient]:
    """An AsyncClient on the fake, recording its sleeps."""

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    async with AsyncClient(
        base_url="http://api.test",
        token=GOOD_TOKEN,
        transport=fake.transport,
        retry=POLICY,
        sleep=record,
        random=lambda: 0.0,
    ) as api:
        yield api


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens: connecting is refused."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback URL whose server accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
