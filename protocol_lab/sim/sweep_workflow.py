"""The sweep workflow: one Temporal workflow fans a batch of replications out as activities.

The workflow class is made on first use (:func:`sweep_workflow`), so this module imports without
the ``temporal`` extra; the activity, the worker and the client side are in
:mod:`protocol_lab.sim.sweeps_temporal`. It only awaits activities, so the worker runs it
outside the sandbox.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

__all__ = [
    "SIMULATE_REPLICATION",
    "SWEEP_WORKFLOW",
    "ReplicationInput",
    "ReplicationJob",
    "SweepInput",
    "sweep_workflow",
]

# The activity's registered name: the workflow refers to it by name, never to the simulator.
SIMULATE_REPLICATION = "simulate_replication"
SWEEP_WORKFLOW = "SimulationSweep"


@dataclass(frozen=True)
class ReplicationInput:
    """One replication: a scenario (as JSON) and the seed of its random generator."""

    scenario_json: str
    seed: int


@dataclass(frozen=True)
class ReplicationJob:
    """One replication of a sweep: the index of its scenario in the sweep, and its seed."""

    scenario: int
    seed: int


@dataclass(frozen=True)
class SweepInput:
    """A batch of replications; each scenario's JSON is carried once, however many seeds."""

    scenarios: list[str]
    jobs: list[ReplicationJob]
    heartbeat_timeout_s: float = 30.0
    max_attempts: int = 5


class _SweepWorkflow:
    """Runs every replication of the input as an activity; returns the summaries in job order.

    Summaries travel as JSON text made by the activity, so they come back exactly as the local
    pool returns them (the payload converter would sort their keys).

    A replication whose worker dies is retried (the heartbeat stops, the attempt times out, a
    live worker takes it); one that fails ``max_attempts`` times fails the sweep.
    """

    def __init__(self) -> None:
        """No replication finished yet."""
        self._finished = 0

    async def run(self, sweep: SweepInput) -> list[str]:
        """Fan the replications out and gather their summaries (each as JSON text)."""
        from temporalio import workflow
        from temporalio.common import RetryPolicy

        async def one(job: ReplicationJob) -> str:
            summary: str = await workflow.execute_activity(
                SIMULATE_REPLICATION,
                ReplicationInput(sweep.scenarios[job.scenario], job.seed),
                result_type=str,
                # a replication may take long; a dead worker shows as missing heartbeats
                start_to_close_timeout=timedelta(hours=6),
                heartbeat_timeout=timedelta(seconds=sweep.heartbeat_timeout_s),
                retry_policy=RetryPolicy(
                    maximum_attempts=sweep.max_attempts, maximum_interval=timedelta(seconds=10)
                ),
            )
            self._finished += 1
            return summary

        return list(await asyncio.gather(*(one(job) for job in sweep.jobs)))

    def finished(self) -> int:
        """How many replications have finished (the client's progress bar reads it)."""
        return self._finished


@cache
def sweep_workflow() -> type:
    """The ``SimulationSweep`` workflow class, declared to temporalio on first use."""
    from temporalio import workflow

    # the decorators, applied here so that importing this module needs no temporalio
    _SweepWorkflow.run = workflow.run(_SweepWorkflow.run)  # type: ignore[method-assign]
    _SweepWorkflow.finished = workflow.query(_SweepWorkflow.finished)  # type: ignore[method-assign]
    return workflow.defn(name=SWEEP_WORKFLOW, sandboxed=False)(_SweepWorkflow)
