"""Measuring the platform's latency on this machine, at the replay's compression, before a replay.

The simulator can only match a compressed replay if it adds the latency the service will add
(:mod:`protocol_lab.sim.platform`): at 600x, the 10-50 ms of a workflow task or an activity's
completion become 6-30 simulated seconds per step, and how many depends on this machine and
its load. :func:`measure_platform` measures them on the service itself, in a warm-up before the
replay that is compared:

1. the scenario's busiest ``hours`` of its first day (by its arrival profile), with another
   seed, are simulated and replayed at the same compression against the same service;
2. the warm-up's timelines are read back and the latencies fitted by the same code calibration
   uses (:func:`protocol_lab.sim.platform_fit.fit_platform`): workflow tasks, schedule-to-start
   and activity overhead per task queue. The workflows started in the warm-up's first
   :data:`SETTLE_HOURS` (at most its first half) do not count: they warm the worker up (imports,
   connections, the sandbox of each workflow type), which a replay pays once; unless the rest
   completed too few activities to fit (:data:`MIN_WARM_ACTIVITIES`), when all count. A
   measured latency is kept as the sample itself
   (:func:`~protocol_lab.sim.platform_fit.empirical_model`): its tail (a stall while another
   process holds the cores) is what the replay will meet, and no family fits it;
3. what a timeline cannot show comes from the warm-up's own calls: ``workflow_start`` (a
   ticket's creation, as scheduled, to its workflow's start) and ``signal_delivery`` (a signal,
   as scheduled, to its ``signal_received``).

The replay that follows is then simulated with these latencies: the simulation is fixed before
the replay it is compared with, and nothing of that replay's log goes into it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from protocol_lab.domain.catalog import SignalStep

if TYPE_CHECKING:
    from protocol_lab.client import AsyncClient
    from protocol_lab.domain.catalog import Catalog
    from protocol_lab.replay.player import ReplayResult
    from protocol_lab.sim import Scenario
    from protocol_lab.sim.platform import PlatformConfig

__all__ = [
    "MIN_WARM_ACTIVITIES",
    "SETTLE_HOURS",
    "PlatformMeasurement",
    "busiest_slice",
    "measure_platform",
    "sent_to_seen",
]


SETTLE_HOURS = 1.0
"""Simulated hours at the warm-up's start whose workflows are not fitted (at most half of it):
they warm the worker up. A fixed period rather than a fraction, so that a longer warm-up
measures more workflows: the sample, not the worker's warming, is what limits the measurement
(three warm-ups in a row on one stack scatter as much as fresh stacks do)."""

MIN_WARM_ACTIVITIES = 20
"""Completed activities the warm-up's settled part must hold to be fitted alone. On a machine
at load 10 (a full test suite beside the demo) its 17 workflows had completed 7 steps when
read back, every latency was fitted as zero, and the simulation compared had none."""


@dataclass(frozen=True)
class PlatformMeasurement:
    """The platform's latency measured in a warm-up replay.

    ``config`` is ready for :meth:`Scenario.with_platform`; ``table`` lists each parameter
    (parameter, task_queue, n, model, mean_ms, source); ``workflows`` counts the warm-up's
    workflows and ``wall_s`` its wall-clock time; ``events`` are the warm-up's timeline events
    (every workflow, on its script's simulated clock), kept to be saved and studied.
    """

    config: PlatformConfig
    table: pl.DataFrame
    workflows: int
    wall_s: float
    events: pl.DataFrame | None = None

    def line(self) -> str:
        """One line for a terminal: the main latencies in wall-clock milliseconds."""
        by = {
            (r["parameter"], r["task_queue"]): r["mean_ms"]
            for r in self.table.iter_rows(named=True)
        }
        overhead = [v for (p, _), v in by.items() if p == "activity_overhead"]
        parts = [
            f"start {by.get(('workflow_start', None), 0.0):.0f} ms",
            f"workflow task {by.get(('workflow_task', None), 0.0):.0f} ms",
            f"first task {by.get(('first_workflow_task', None), 0.0):.0f} ms",
            f"signal {by.get(('signal_delivery', None), 0.0):.0f} ms",
            f"activity overhead {float(np.mean(overhead)) if overhead else 0.0:.0f} ms",
        ]
        return (
            f"platform latency measured on {self.workflows} warm-up workflows "
            f"({self.wall_s:.0f} s): " + ", ".join(parts)
        )


def busiest_slice(scenario: Scenario, hours: float) -> Scenario:
    """The scenario's busiest ``hours`` of its first day (by the arrival profile), with
    another seed, no drain and no platform latency of its own."""
    from protocol_lab.sim.platform import PlatformConfig

    window = max(1, math.ceil(hours))
    factors = scenario.arrivals.profile.hourly_factors(scenario.start, 24 + window)
    sums = [float(factors[h : h + window].sum()) for h in range(24)]
    best = int(np.argmax(sums))
    return scenario.model_copy(
        update={
            "name": f"{scenario.name} (warm-up)",
            "start": scenario.start + timedelta(hours=best),
            "horizon_hours": float(hours),
            "warmup_hours": 0.0,
            "drain": False,
            "seed": scenario.seed + 1,
            "platform": PlatformConfig(),
        }
    )


def sent_to_seen(
    played: ReplayResult, events: pl.DataFrame, catalog: Catalog
) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock seconds from the scripted call to what it caused on the service.

    Returns (workflow starts: a ticket's creation to its workflow's ``workflow_started``,
    signals: a signal to the ``signal_received`` of the wait it answered), both from the due
    time of the call, as the simulator's script sends it; ``events`` are on the script's
    simulated clock. A signal counts only if its wait had begun on the service when it was
    sent: one sent earlier is taken when the wait begins, which is not delivery.
    """
    script = played.script
    c = played.compression
    origin = script.origin
    created = {a.ticket: a.at_s for a in script.actions if a.kind == "create_ticket"}
    seconds = (pl.col("timestamp") - pl.lit(origin)).dt.total_microseconds() / 1e6
    frame = events.with_columns(seconds.alias("at_s"), pl.col("event").cast(pl.String))
    started = dict(
        frame.filter(pl.col("event") == "workflow_started")
        .select("workflow_id", "at_s")
        .iter_rows()
    )
    starts = []
    for spec in script.workflows:
        real = played.workflows.get(spec.workflow)
        if real in started and spec.ticket in created:
            starts.append((started[real] - created[spec.ticket]) / c)
    # (workflow, signal name) -> [(wait began, signal received)]
    waits: dict[tuple[str, str], list[tuple[float, float]]] = {}
    began: dict[tuple[str, str], float] = {}
    rows = frame.filter(pl.col("event").is_in(["activity_started", "signal_received"])).sort(
        "workflow_id", "at_s"
    )
    for workflow_id, name, step_id, event, at_s in rows.select(
        "workflow_id", "workflow_name", "step", "event", "at_s"
    ).iter_rows():
        plan = catalog.get(name)
        if plan is None or step_id is None:
            continue
        try:
            step = plan.step(step_id)
        except KeyError:
            continue
        if not isinstance(step, SignalStep):
            continue
        if event == "activity_started":
            began[(workflow_id, step_id)] = at_s
        elif (workflow_id, step_id) in began:
            pair = (began.pop((workflow_id, step_id)), at_s)
            waits.setdefault((workflow_id, step.signal), []).append(pair)
    signals = []
    for action in script.actions:
        real = played.workflows.get(action.workflow or "")
        if action.kind != "signal" or real is None or action.signal_name is None:
            continue
        for start, seen in waits.get((real, action.signal_name), []):
            if start <= action.at_s <= seen:
                signals.append((seen - action.at_s) / c)
                break
    return np.asarray(starts, dtype=np.float64), np.asarray(signals, dtype=np.float64)


async def measure_platform(
    scenario: Scenario,
    client: AsyncClient,
    *,
    compression: float,
    hours: float = 3.0,
    concurrency: int = 16,
    temporal_address: str | None = None,
    temporal_namespace: str = "default",
) -> PlatformMeasurement:
    """Replay the scenario's busiest ``hours`` against the service and fit the platform's
    latency at ``compression`` (see the module docstring)."""
    from protocol_lab.domain.queues import TaskQueue
    from protocol_lab.sim.platform_fit import (
        empirical_model,
        fit_platform,
        known_fixed_durations,
        latency_row,
    )

    began = time.monotonic()
    played, events, steps, everything = await _warm_up_log(
        scenario,
        client,
        compression=compression,
        hours=hours,
        concurrency=concurrency,
        temporal_address=temporal_address,
        temporal_namespace=temporal_namespace,
    )
    catalog = scenario.load_catalog()
    starts, signals = sent_to_seen(played, events, catalog)
    start_model = empirical_model(starts)
    fitted = fit_platform(
        events,
        steps,
        catalog=catalog,
        compression=compression,
        known_durations=known_fixed_durations(catalog, scenario.durations),
        capacities={q: scenario.task_queue(q).capacity for q in TaskQueue},
        workflow_start=start_model,
        fit=empirical_model,
    )
    config = fitted.config
    extra = [
        latency_row(
            "workflow_start",
            None,
            len(starts),
            start_model,
            "ticket created (as scheduled) to workflow started",
        )
    ]
    if len(signals) >= 3:
        delivery = empirical_model(signals)
        config = config.model_copy(update={"signal_delivery": delivery})
        extra.append(
            latency_row(
                "signal_delivery",
                None,
                len(signals),
                delivery,
                "signal sent (as scheduled, its wait begun) to signal received",
            )
        )
    table = pl.concat(
        [
            pl.DataFrame(extra, schema=fitted.rows.schema),
            fitted.rows.filter(~pl.col("parameter").is_in([r["parameter"] for r in extra])),
        ]
    )
    return PlatformMeasurement(
        config=config,
        table=table,
        workflows=events["workflow_id"].n_unique(),
        wall_s=time.monotonic() - began,
        events=everything,
    )


async def _warm_up_log(
    scenario: Scenario,
    client: AsyncClient,
    *,
    compression: float,
    hours: float,
    concurrency: int,
    temporal_address: str | None,
    temporal_namespace: str,
) -> tuple[ReplayResult, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Replay the busiest ``hours`` and read them back: the played script, the events and
    steps of the workflows started after its first :data:`SETTLE_HOURS` (those warm the worker
    up; every workflow's where the rest completed fewer than :data:`MIN_WARM_ACTIVITIES`
    activities), and every workflow's events."""
    from protocol_lab.replay.player import replay_async
    from protocol_lab.replay.readback import load_replayed
    from protocol_lab.replay.script import ReplayScript

    warm = busiest_slice(scenario, hours)
    script, _ = ReplayScript.from_simulation(warm, until_hours=hours)
    played = await replay_async(
        script, client, compression=compression, concurrency=concurrency, progress=False
    )
    real = await load_replayed(
        played,
        client,
        temporal_address=temporal_address,
        temporal_namespace=temporal_namespace,
        cut=False,
    )
    late = _settled_workflows(real.workflows.collect(), script.origin, hours)
    everything = real.events.collect()
    all_steps = real.steps().collect()
    steps = all_steps.filter(pl.col("workflow_id").is_in(late))
    if _completed_activities(steps) < MIN_WARM_ACTIVITIES:
        # a loaded machine left the late workflows too little done to fit: all of them count
        return played, everything, all_steps, everything
    events = everything.filter(pl.col("workflow_id").is_in(late))
    return played, events, steps, everything


def _settled_workflows(workflows: pl.DataFrame, origin: datetime, hours: float) -> list[str]:
    """The workflows a warm-up of ``hours`` from ``origin`` is fitted from: those started
    after its first :data:`SETTLE_HOURS`, or after its first half if it is shorter."""
    settled = origin + timedelta(hours=min(SETTLE_HOURS, hours / 2))
    return workflows.filter(pl.col("started_at") >= settled)["workflow_id"].to_list()


def _completed_activities(steps: pl.DataFrame) -> int:
    return steps.filter(
        (pl.col("kind").cast(pl.String) == "activity") & (pl.col("outcome") == "completed")
    ).height
