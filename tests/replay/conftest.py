"""Fixtures of the replay tests: a whole stack of their own, compressed time, small scripts.

- ``live``: the embedded stack (Temporal dev server, Redis, worker and API as child processes,
  state in a temporary folder) with ``TIME_SCALE`` = :data:`COMPRESSION`, for the session; its
  own Temporal and Redis, so no other test's worker picks up its workflows or jobs;
- ``small_script``: the first :data:`HOURS` simulated hours of ``demo_day`` and its simulation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol_lab.demo import ServiceHandle, embedded_service
from protocol_lab.replay import ReplayScript
from protocol_lab.sim import SimulationResult, load_scenario

COMPRESSION = 3600.0
HOURS = 11.0


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceHandle]:
    """The stack under test (see the module docstring)."""
    state: Path = tmp_path_factory.mktemp("replay-stack")
    with embedded_service(state_dir=state, time_scale=COMPRESSION, ui=False) as service:
        from protocol_lab.demo import _wait_for_api

        _wait_for_api(service.base_url, service.token)
        yield service


@pytest.fixture(scope="session")
def small_script() -> tuple[ReplayScript, SimulationResult]:
    """A short script: the first hours of the demo day."""
    return ReplayScript.from_simulation(load_scenario("demo_day"), until_hours=HOURS)
