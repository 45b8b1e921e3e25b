"""Sweeps on Temporal: replications as activities on simulation workers give the local answer.

Each test runs ``protocol-lab worker --sim`` as a subprocess on a task queue of its own, against
the session's Temporal dev server, and compares with the local pool under the same seeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client
from typer.testing import CliRunner
from waiting import eventually

from protocol_lab.cli import app
from protocol_lab.domain import TaskQueue
from protocol_lab.sim import load_scenario
from protocol_lab.sim.planning import QueueTarget, plan_capacity
from protocol_lab.sim.replications import replication_seeds, run_replications
from protocol_lab.sim.scenario import Scenario
from protocol_lab.sim.sweeps_temporal import NoSimulationWorkerError, TemporalRunner
from protocol_lab.sim.validation import mmc_scenario
from protocol_lab.sim.whatif import compare_rules
from service.parent_death import spawn, with_parent_death_signal
from service.stack import EmbeddedTemporal

pytestmark = pytest.mark.temporal


class SimulationWorker:
    """``protocol-lab worker --sim`` in a process group of its own (its pool dies with it)."""

    def __init__(self, address: str, task_queue: str, log: Path) -> None:
        self.log = log.open("ab")
        argv = [
            sys.executable,
            "-m",
            "protocol_lab.cli",
            "worker",
            "--sim",
            "--temporal",
            address,
            "--task-queue",
            task_queue,
            "--processes",
            "1",
        ]
        command = with_parent_death_signal(argv, None)
        self.process = spawn(
            lambda: subprocess.Popen(
                command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    def kill(self) -> None:
        """SIGKILL the worker and its pool: nothing finishes what it was running."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """Stop it as an operator would (SIGTERM), or kill it if it does not go."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        finally:
            self.kill()
            self.log.close()


@pytest.fixture
def worker_factory() -> Iterator[list[SimulationWorker]]:
    """Started workers, stopped after the test."""
    started: list[SimulationWorker] = []
    yield started
    for worker in started:
        worker.stop()


def _start(server: EmbeddedTemporal, queue: str, tmp_path: Path) -> SimulationWorker:
    return SimulationWorker(server.address, queue, tmp_path / f"{queue}.log")


def _small(name: str, hours: float) -> Scenario:
    scenario = load_scenario(name)
    return scenario.with_horizon(hours, warmup_hours=min(scenario.warmup_hours, hours / 4))


def _same(a: Any, b: Any) -> bool:
    """Equal summaries (NaN included), through JSON, which keeps every float exactly."""
    return json.dumps(a) == json.dumps(b)


def test_replications_on_temporal_equal_the_local_pool(
    temporal_server: EmbeddedTemporal,
    worker_factory: list[SimulationWorker],
    tmp_path: Path,
) -> None:
    queue = f"sim-test-equal-{uuid.uuid4()}"
    worker_factory.append(_start(temporal_server, queue, tmp_path))
    scenarios = [_small("demo_day", 6), _small("mmc_validation", 24)]
    runner = TemporalRunner(temporal_server.address, task_queue=queue)

    remote = run_replications(scenarios, replications=3, runner=runner, progress=False)
    local = run_replications(scenarios, replications=3, processes=1, progress=False)

    assert [len(runs) for runs in remote] == [3, 3]
    assert _same(remote, local)
    # the replications really differ from each other: equality is not between constants
    assert not _same(remote[0][0], remote[0][1])

    # in sweeps of at most 3 (two workflows), progress counted as results come
    steps: list[int] = []
    payloads = [(scenarios[0].model_dump_json(), s) for s in replication_seeds(7, 4)]
    batched = TemporalRunner(temporal_server.address, task_queue=queue, sweep_size=3)
    again = batched.run(payloads, on_finished=steps.append)
    assert sum(steps) == 4
    assert _same(again, [run_replications_one(p) for p in payloads])


def run_replications_one(payload: tuple[str, int]) -> dict[str, Any]:
    """The local summary of one (scenario JSON, seed)."""
    from protocol_lab.sim.replications import run_replication

    return run_replication(*payload)


def test_plan_capacity_on_temporal_equals_the_local_plan(
    temporal_server: EmbeddedTemporal,
    worker_factory: list[SimulationWorker],
    tmp_path: Path,
) -> None:
    queue = f"sim-test-plan-{uuid.uuid4()}"
    worker_factory.append(_start(temporal_server, queue, tmp_path))
    scenario = mmc_scenario(servers=8, utilisation=0.85, horizon_hours=6, warmup_hours=1)
    target = QueueTarget(
        task_queue=TaskQueue.WORKFLOWS, max_hours=60 / 3600, percentile=95, metric="queue_wait"
    )
    runner = TemporalRunner(temporal_server.address, task_queue=queue)

    remote = plan_capacity(
        scenario,
        [target],
        replications=3,
        max_workers=20,
        processes=1,
        progress=False,
        runner=runner,
    )
    local = plan_capacity(
        scenario, [target], replications=3, max_workers=20, processes=1, progress=False
    )

    assert remote.workers == local.workers
    assert remote.sweep.equals(local.sweep)
    assert remote.verification.equals(local.verification)


def test_a_rule_what_if_on_temporal_equals_the_local_one(
    temporal_server: EmbeddedTemporal,
    worker_factory: list[SimulationWorker],
    tmp_path: Path,
) -> None:
    queue = f"sim-test-whatif-{uuid.uuid4()}"
    worker_factory.append(_start(temporal_server, queue, tmp_path))
    scenario = load_scenario("service_desk_month").with_horizon(6, warmup_hours=0)
    remove = ["Provision laptops for new hires"]
    runner = TemporalRunner(temporal_server.address, task_queue=queue)

    remote = compare_rules(scenario, remove=remove, replications=2, progress=False, runner=runner)
    local = compare_rules(scenario, remove=remove, replications=2, progress=False, processes=1)

    assert remote.queues.equals(local.queues)
    assert remote.rules.equals(local.rules)
    laptops = remote.rules.filter(pl.col("rule") == "Provision laptops for new hires")
    assert laptops["baseline_executions"][0] > 0
    assert laptops["variant_executions"][0] is None


def test_no_simulation_worker_is_one_clear_error(temporal_server: EmbeddedTemporal) -> None:
    runner = TemporalRunner(
        temporal_server.address, task_queue=f"sim-test-nobody-{uuid.uuid4()}", wait_for_worker_s=1.0
    )
    with pytest.raises(NoSimulationWorkerError, match="no simulation worker polls task queue"):
        run_replications([_small("demo_day", 6)], replications=2, runner=runner, progress=False)


async def test_a_worker_dying_mid_sweep_loses_no_replication(
    temporal_server: EmbeddedTemporal,
    temporal_client: Client,
    worker_factory: list[SimulationWorker],
    tmp_path: Path,
) -> None:
    queue = f"sim-test-dying-{uuid.uuid4()}"
    first = _start(temporal_server, queue, tmp_path)
    worker_factory.append(first)
    scenario = _small("mmc_validation", 48)  # about a second a replication
    payloads = [(scenario.model_dump_json(), seed) for seed in replication_seeds(11, 6)]
    runner = TemporalRunner(temporal_server.address, task_queue=queue, heartbeat_timeout_s=2.0)
    sweep = asyncio.create_task(runner.run_async(payloads))

    async def replication_running() -> bool:
        # Temporal's word, not the runner's count of finished runs, which lags behind the worker
        async for wf in temporal_client.list_workflows(f'TaskQueue="{queue}"'):
            described = await temporal_client.get_workflow_handle(wf.id).describe()
            pending = described.raw_description.pending_activities
            if any(a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED for a in pending):
                return True
        return False

    await eventually(replication_running, within_s=120, every_s=0.1)
    first.kill()  # mid-sweep: a replication is running on it
    worker_factory.append(_start(temporal_server, queue, tmp_path))
    summaries = await asyncio.wait_for(sweep, timeout=240)

    local = await asyncio.to_thread(lambda: [run_replications_one(p) for p in payloads])
    assert _same(summaries, local)

    async def attempts() -> list[int]:
        return [
            event.activity_task_started_event_attributes.attempt
            async for wf in temporal_client.list_workflows(f'TaskQueue="{queue}"')
            async for event in temporal_client.get_workflow_handle(wf.id).fetch_history_events()
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        ]

    started = await eventually(attempts, within_s=30)  # the visibility store lags a little
    assert len(started) == len(payloads)
    assert max(started) >= 2  # the replication the dead worker was running ran again


def test_plan_command_on_temporal_prints_the_local_plan(
    temporal_server: EmbeddedTemporal,
    worker_factory: list[SimulationWorker],
    tmp_path: Path,
) -> None:
    queue = f"sim-test-cli-{uuid.uuid4()}"
    worker_factory.append(_start(temporal_server, queue, tmp_path))
    command = [
        "plan",
        "demo_day",
        "--horizon-hours",
        "6",
        "--target",
        "itsm-fleet=48h",
        "--replications",
        "2",
        "--processes",
        "1",
        "--max-workers",
        "10",
        "--figure",
        str(tmp_path / "capacity.png"),
    ]
    env = {"SIMULATION_TASK_QUEUE": queue}
    remote = CliRunner().invoke(app, [*command, "--temporal", temporal_server.address], env=env)
    local = CliRunner().invoke(app, command)

    assert remote.exit_code == 0, remote.output
    assert local.exit_code == 0, local.output
    table = [line for line in remote.stdout.splitlines() if "workers" in line]
    assert table
    assert table == [line for line in local.stdout.splitlines() if "workers" in line]
