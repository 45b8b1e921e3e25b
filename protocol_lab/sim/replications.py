"""Replications: run a scenario under several seeds, in parallel processes, and summarise.

A replication returns only small summaries (per-queue statistics, rule executions), never
timelines, so running dozens of them across processes stays cheap. Seeds come from the
scenario's seed through :class:`numpy.random.SeedSequence`, and the same replication index gets
the same seed in every configuration (common random numbers), which makes differences between
configurations sharper than their separate noise.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from datetime import timedelta
from typing import Any, Protocol

import numpy as np
import polars as pl
from tqdm import tqdm

from protocol_lab.domain.queues import TaskQueue
from protocol_lab.domain.sla import SlaConfig, load_sla_config
from protocol_lab.sim.model import simulate
from protocol_lab.sim.results import SimulationResult
from protocol_lab.sim.scenario import Scenario

__all__ = [
    "MAX_PROCESSES",
    "ReplicationRunner",
    "process_pool",
    "replication_seeds",
    "run_replication",
    "run_replications",
    "summarise",
]

MAX_PROCESSES = 2
_PERCENTILES = (50.0, 90.0, 95.0, 99.0)


def replication_seeds(seed: int, replications: int) -> list[int]:
    """One integer seed per replication, derived from ``seed``."""
    children = np.random.SeedSequence(seed).spawn(replications)
    return [int(c.generate_state(1, dtype=np.uint64)[0] >> 1) for c in children]


def summarise(result: SimulationResult, *, sla: SlaConfig | None = None) -> dict[str, Any]:
    """The per-queue figures of one run: load, waits, cycle-time percentiles, SLA attainment."""
    sla = sla if sla is not None else load_sla_config()
    queues = result.queue_summary().to_dicts()
    cycles = result.cycle_times()
    t = result.tracker
    q = np.frombuffer(t.a_queue, dtype=np.int8)
    enq = np.frombuffer(t.a_enq, dtype=np.float64)
    start = np.frombuffer(t.a_start, dtype=np.float64)
    warm = result.scenario.warmup_s
    targets = {tg.task_queue.value: tg.target_seconds for tg in sla.targets if tg.task_queue}
    peaks = _peak_busy(result)
    for row in queues:
        code = result.tracker.queues.index(row["queue"])
        row["peak_busy"] = peaks.get(row["queue"], 0.0)
        sel = (q == code) & (enq >= warm)
        waits = start[sel] - enq[sel]
        for p in _PERCENTILES:
            row[f"wait_p{p:g}_s"] = float(np.percentile(waits, p)) if len(waits) else 0.0
        if row["kind"] == "task":
            cycle = cycles[row["queue"]]
            for p in _PERCENTILES:
                row[f"cycle_p{p:g}_s"] = float(np.percentile(cycle, p)) if len(cycle) else None
            target = targets.get(row["queue"])
            row["sla_target_s"] = target
            row["sla_attainment"] = (
                float(np.mean(cycle <= target)) if target is not None and len(cycle) else None
            )
    return {
        "queues": queues,
        "rules": dict(zip([r.name for r in result.rules], result.rule_counts, strict=True)),
        "tickets": result.tickets,
        "workflows": result.n_workflows,
        "events": result.n_events,
    }


def _peak_busy(result: SimulationResult) -> dict[str, float]:
    """Each queue's highest mean busy slots over a metrics interval, between warm-up and horizon."""
    scenario = result.scenario
    frame = result.queue_metrics.filter(
        pl.col("interval_start") >= scenario.start + timedelta(seconds=scenario.warmup_s),
        pl.col("interval_start") < scenario.start + timedelta(seconds=scenario.horizon_s),
    )
    peaks = frame.group_by("queue").agg(peak=(pl.col("utilisation") * pl.col("capacity")).max())
    return {str(q): float(v or 0.0) for q, v in peaks.iter_rows()}


def run_replication(scenario_json: str, seed: int) -> dict[str, Any]:
    """Simulate one replication of a scenario (given as JSON) and return its summary."""
    scenario = Scenario.model_validate_json(scenario_json)
    result = simulate(scenario, rng=np.random.default_rng(seed), record_events=False)
    return summarise(result)


def _run(payload: tuple[str, int]) -> dict[str, Any]:
    return run_replication(*payload)


class ReplicationRunner(Protocol):
    """Runs replications elsewhere than the local pool (e.g. ``TemporalRunner`` on Temporal)."""

    def run(
        self,
        payloads: Sequence[tuple[str, int]],
        *,
        on_finished: Callable[[int], object] | None = None,
    ) -> list[dict[str, Any]]:
        """The summary of each (scenario JSON, seed) in order; ``on_finished(n)`` as runs end."""
        ...


def run_replications(
    scenarios: Sequence[Scenario],
    *,
    replications: int,
    processes: int = MAX_PROCESSES,
    progress: bool = True,
    description: str = "simulating",
    pool: ProcessPoolExecutor | None = None,
    runner: ReplicationRunner | None = None,
) -> list[list[dict[str, Any]]]:
    """Run every scenario ``replications`` times; returns summaries per scenario, per seed.

    ``processes`` > 1 runs them in that many worker processes (at most :data:`MAX_PROCESSES`),
    in ``pool`` when given (see :func:`process_pool`, to pay the start-up once for many calls);
    a progress bar counts finished runs. With a ``runner`` (e.g. a ``TemporalRunner``) the runs
    go to it instead, with the same seeds, and come back in the same order.
    """
    jobs = [
        (k, r, (s.model_dump_json(), seed))
        for k, s in enumerate(scenarios)
        for r, seed in enumerate(replication_seeds(s.seed, replications))
    ]
    out: list[list[dict[str, Any]]] = [[{} for _ in range(replications)] for _ in scenarios]
    bar = tqdm(total=len(jobs), desc=description, disable=not progress, leave=False)
    try:
        if runner is not None:
            summaries = runner.run([payload for _, _, payload in jobs], on_finished=bar.update)
            for (k, r, _), summary in zip(jobs, summaries, strict=True):
                out[k][r] = summary
            return out
        workers = max(1, min(processes, MAX_PROCESSES, len(jobs)))
        if workers == 1:
            for k, r, payload in jobs:
                out[k][r] = _run(payload)
                bar.update()
            return out
        with contextlib.ExitStack() as stack:
            if pool is None:
                pool = stack.enter_context(process_pool(workers))
            futures: dict[Future[dict[str, Any]], tuple[int, int]] = {
                pool.submit(_run, payload): (k, r) for k, r, payload in jobs
            }
            for future in as_completed(futures):
                k, r = futures[future]
                out[k][r] = future.result()
                bar.update()
        return out
    finally:
        bar.close()


@contextlib.contextmanager
def process_pool(processes: int = MAX_PROCESSES) -> Iterator[ProcessPoolExecutor]:
    """A pool of at most :data:`MAX_PROCESSES` fresh ("spawn") worker processes."""
    ctx = mp.get_context("spawn")
    workers = max(1, min(processes, MAX_PROCESSES))
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        yield pool


def queue_values(
    summaries: Sequence[dict[str, Any]], *, queue: TaskQueue | str, key: str
) -> list[float]:
    """One figure of one queue across replications (None values dropped)."""
    name = TaskQueue(queue).value if isinstance(queue, TaskQueue) else queue
    out = []
    for s in summaries:
        for row in s["queues"]:
            if row["queue"] == name and row.get(key) is not None:
                out.append(float(row[key]))
    return out
