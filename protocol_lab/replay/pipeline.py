"""The closed loop in one call: simulate -> replay -> load -> compare -> calibrate.

:func:`run_closed_loop_async` (through a client) and :func:`run_closed_loop` (given the API's
URL and token) take a scenario, or a script with the simulation it came from, and a running
service whose ``TIME_SCALE`` equals ``compression``:

1. **simulate**: :meth:`ReplayScript.from_simulation` (skipped when a script is given) of the
   scenario as the service runs it (:meth:`Scenario.as_the_service_runs`: the steps the service
   does itself take no time of their own there, only the platform's latency); with
   ``measure_platform``, the scenario is first given the platform's latency measured on this
   service at this compression in a warm-up replay of its busiest hours
   (:func:`~protocol_lab.replay.measure.measure_platform`), so the simulation adds what the
   service will add;
2. **replay**: :func:`~protocol_lab.replay.player.replay_async`, optionally after
   :func:`~protocol_lab.replay.player.warm_up`;
3. **load**: :func:`~protocol_lab.replay.readback.load_replayed` (through the API, or from the
   Temporal histories given ``temporal_address``);
4. **compare**: :func:`protocol_lab.compare.compare` of the simulation cut at the script's end
   with the real timelines, as of that instant; the activity steps, which the replay does not
   pair with the simulation, are compared with ``step_replications`` runs of the scenario
   (the replayed one and more seeds) so that the simulated side is the model's distribution;
5. **calibrate**: :func:`protocol_lab.sim.calibration.calibrate` from the real timelines alone,
   with the scenario as base, at the replay's compression; and, as a check of calibration
   itself, from twenty-four weeks simulated with the scenario's own, known, parameters
   (:data:`KNOWN_LOG_HOURS`). A failure is reported
   through ``echo`` and kept in the result, not raised, so what came before is not lost.

:func:`protocol_lab.replay.targets.loop_targets` turns a :class:`LoopResult` into the table of
the loop's targets (distances and calibration errors), each met or not, by how much and why.

``protocol-lab demo`` (which starts the embedded stack first), ``protocol-lab replay`` and
notebook 03 all run the loop through these functions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from protocol_lab.replay.measure import PlatformMeasurement, measure_platform
from protocol_lab.replay.player import ReplayResult, patient_retry, replay_async, warm_up
from protocol_lab.replay.readback import load_replayed, simulated_timelines
from protocol_lab.replay.script import ReplayScript

if TYPE_CHECKING:
    from protocol_lab.analytics import Timelines
    from protocol_lab.client import AsyncClient
    from protocol_lab.compare import Comparison
    from protocol_lab.sim import Scenario, SimulationResult
    from protocol_lab.sim.calibration import Calibration

__all__ = [
    "CALIBRATION_REPLICATIONS",
    "KNOWN_LOG_HOURS",
    "STEP_REPLICATIONS",
    "LoopResult",
    "calibration_line",
    "describe",
    "more_simulations",
    "run_closed_loop",
    "run_closed_loop_async",
]


STEP_REPLICATIONS = 10
"""Simulations of the scenario (the replayed one first) whose activity steps the service's are
compared with: one run gives as few draws of a step as the replay has (13 to 55 on the demo
day), which alone makes the two-sample KS statistic of two identical distributions exceed 0.20
with probability 22% to 96%."""


KNOWN_LOG_HOURS = 24 * 7 * 24.0
"""The simulator log of known parameters that calibration is checked on: twenty-four weeks of
the scenario (with its platform latency). One week is too little: with the scenario's own
parameters, the p95 of the laptop approvals' wait ranged from 100,000 s to 232,000 s over six
seeds of a week (the p95 falls on the few requests that wait over a weekend). Twelve weeks met
all 30 errors in 5 of 7 seeds of the demo day (the misses a signal wait's p50, 11-16%, where a
business-hours wait's p50 falls between the answers and the waits a night times out, and the
sample pins it down only to about +/-12%); twenty-four weeks in 12 of 13 (the miss 13%), for
about 4 s more."""

CALIBRATION_REPLICATIONS = 10
"""Simulations of the scenario calibrated from the service's log that its p50/p95 are read
from: the log is one day, so two runs of it left the simulated quantile as uncertain as the
observed one (on a saved replay, ten runs met 14 of 24 errors where two met 12, for about 2 s
more)."""

KNOWN_REPLICATIONS = 2
"""Simulations of the scenario calibrated from the known log (twenty-four weeks each; one
met all 30 errors in 7 of 10 seeds where two met them in 12 of 13)."""


@dataclass
class LoopResult:
    """One turn of the closed loop: every step's product.

    ``simulated`` is the simulation's timelines cut at the script's end (what ``real`` is
    compared with); ``calibration`` is ``None`` when it was not asked for or failed, and then
    ``calibration_failure`` says why (for a failure). ``platform`` is the latency measured
    before the replay (None when not measured); ``known_calibration`` is calibration from
    :data:`KNOWN_LOG_HOURS` simulated with the scenario's own (known) parameters;
    ``compression`` is the replay's.
    """

    script: ReplayScript
    simulation: SimulationResult
    simulated: Timelines
    replay: ReplayResult
    real: Timelines
    comparison: Comparison
    calibration: Calibration | None = None
    calibration_failure: str | None = None
    wall_s: float = 0.0
    platform: PlatformMeasurement | None = None
    known_calibration: Calibration | None = None
    compression: float = 1.0

    @property
    def as_of(self) -> datetime:
        """The script's cut-off on the simulated clock (the comparison's SLA instant)."""
        return self.script.origin + timedelta(seconds=self.script.end_s)


def describe(script: ReplayScript, simulation: SimulationResult, compression: float) -> str:
    """One line: what was simulated and how long its replay takes at ``compression``."""
    return (
        f"simulated {simulation.scenario.name!r}: {simulation.tickets} tickets, "
        f"{simulation.n_workflows} workflows; replaying {len(script)} calls "
        f"({script.end_s / 3600:.0f} simulated hours) in about "
        f"{script.wall_seconds(compression) / 60:.1f} min"
    )


def calibration_line(calibration: Calibration | None) -> str | None:
    """The calibration's largest p50/p95 error as one line (``None`` without an error table)."""
    if calibration is None or calibration.error is None:
        return None
    worst = calibration.error.sort("relative_error", descending=True).row(0, named=True)
    return (
        f"calibrated from the service's log: largest p50/p95 error "
        f"{worst['relative_error']:.0%} ({worst['task_queue']} {worst['quantity']} "
        f"{worst['stat']})"
    )


async def run_closed_loop_async(
    source: Scenario | ReplayScript,
    client: AsyncClient,
    *,
    compression: float,
    simulation: SimulationResult | None = None,
    until_hours: float | None = None,
    concurrency: int = 16,
    progress: bool = True,
    warm: bool = False,
    temporal_address: str | None = None,
    temporal_namespace: str = "default",
    by: str = "workflow_name",
    calibrate: bool = True,
    replications: int = CALIBRATION_REPLICATIONS,
    echo: Callable[[str], None] = lambda _: None,
    measure: bool = False,
    measure_hours: float = 3.0,
    step_replications: int = STEP_REPLICATIONS,
) -> LoopResult:
    """Run the closed loop (see the module docstring) against the service behind ``client``.

    ``source`` is a scenario (simulated here, the script cut at ``until_hours``) or a script
    built from ``simulation``, which must then be given. ``warm`` starts and cancels one
    workflow first so the worker's start-up does not delay the first replayed calls.
    ``measure`` (a scenario only) measures the platform's latency in a warm-up replay of the
    scenario's busiest ``measure_hours`` and simulates with it.
    ``by`` groups the comparison; ``replications`` are the calibration's pooled runs;
    ``step_replications`` the simulations the activity steps are compared with.
    ``echo`` receives progress lines.
    """
    began = time.monotonic()
    if warm:
        await warm_up(client)
    script, simulation, platform = await _script_to_play(
        source,
        client,
        simulation=simulation,
        until_hours=until_hours,
        compression=compression,
        concurrency=concurrency,
        measure=measure,
        measure_hours=measure_hours,
        temporal_address=temporal_address,
        temporal_namespace=temporal_namespace,
        echo=echo,
    )
    simulated = simulated_timelines(simulation, until_s=script.end_s)
    played = await replay_async(
        script, client, compression=compression, concurrency=concurrency, progress=progress
    )
    real = await load_replayed(
        played,
        client,
        temporal_address=temporal_address,
        temporal_namespace=temporal_namespace,
    )
    result = LoopResult(
        script=script,
        simulation=simulation,
        simulated=simulated,
        replay=played,
        real=real,
        comparison=_comparison(
            simulated, real, simulation, script, by=by, step_replications=step_replications
        ),
        platform=platform,
        compression=compression,
    )
    if calibrate:
        _add_calibrations(
            result, real, replications=replications, compression=compression, echo=echo
        )
    result.wall_s = time.monotonic() - began
    return result


def _comparison(
    simulated: Timelines,
    real: Timelines,
    simulation: SimulationResult,
    script: ReplayScript,
    *,
    by: str,
    step_replications: int,
) -> Comparison:
    """Simulated against real at the script's cut-off, steps against more simulations."""
    from protocol_lab.compare import compare

    return compare(
        simulated,
        real,
        by=by,
        as_of=script.origin + timedelta(seconds=script.end_s),
        more_simulations=more_simulations(simulation, script.end_s, step_replications - 1),
    )


async def _script_to_play(
    source: Scenario | ReplayScript,
    client: AsyncClient,
    *,
    simulation: SimulationResult | None,
    until_hours: float | None,
    compression: float,
    concurrency: int,
    measure: bool,
    measure_hours: float,
    temporal_address: str | None,
    temporal_namespace: str,
    echo: Callable[[str], None],
) -> tuple[ReplayScript, SimulationResult, PlatformMeasurement | None]:
    """The script to replay, the simulation it came from and the platform measured for it.

    A scenario is simulated as the service runs it (with the measured platform when
    ``measure``) and cut at ``until_hours``; a script comes with its ``simulation``.
    """
    if isinstance(source, ReplayScript):
        if simulation is None:
            raise ValueError("a script needs the simulation it came from to be compared")
        if measure:
            raise ValueError("the platform can be measured only for a scenario, not a script")
        return source, simulation, None
    platform: PlatformMeasurement | None = None
    source = source.as_the_service_runs()
    if measure:
        platform = await measure_platform(
            source,
            client,
            compression=compression,
            hours=measure_hours,
            concurrency=concurrency,
            temporal_address=temporal_address,
            temporal_namespace=temporal_namespace,
        )
        echo(platform.line())
        source = source.with_platform(platform.config, compression=compression)
    script, simulation = ReplayScript.from_simulation(source, until_hours=until_hours)
    echo(describe(script, simulation, compression))
    return script, simulation, platform


def _add_calibrations(
    result: LoopResult,
    real: Timelines,
    *,
    replications: int,
    compression: float,
    echo: Callable[[str], None],
) -> None:
    """Calibrate from the real log and, as a yardstick, from the simulated one, into ``result``."""
    scenario = result.simulation.scenario
    result.calibration, result.calibration_failure = _calibrate(
        real, scenario, replications, compression
    )
    if result.calibration_failure is not None:
        echo(f"calibration from the real log failed: {result.calibration_failure}")
    known, failure = _calibrate_known(scenario, KNOWN_REPLICATIONS)
    result.known_calibration = known
    if failure is not None:
        echo(f"calibration from the simulated log failed: {failure}")


def run_closed_loop(
    source: Scenario | ReplayScript,
    base_url: str,
    token: str | None,
    *,
    compression: float,
    simulation: SimulationResult | None = None,
    until_hours: float | None = None,
    concurrency: int = 16,
    progress: bool = True,
    warm: bool = False,
    temporal_address: str | None = None,
    temporal_namespace: str = "default",
    by: str = "workflow_name",
    calibrate: bool = True,
    replications: int = CALIBRATION_REPLICATIONS,
    echo: Callable[[str], None] = lambda _: None,
    measure: bool = False,
    measure_hours: float = 3.0,
    step_replications: int = STEP_REPLICATIONS,
) -> LoopResult:
    """:func:`run_closed_loop_async` against the API at ``base_url``, outside an event loop.

    The client retries patiently (:func:`~protocol_lab.replay.player.patient_retry`), so a
    restart of the API during the replay is ridden out.
    """
    from protocol_lab.client import AsyncClient

    async def main() -> LoopResult:
        async with AsyncClient(
            base_url=base_url, token=token, retry=patient_retry(), timeout=30.0
        ) as client:
            return await run_closed_loop_async(
                source,
                client,
                compression=compression,
                simulation=simulation,
                until_hours=until_hours,
                concurrency=concurrency,
                progress=progress,
                warm=warm,
                temporal_address=temporal_address,
                temporal_namespace=temporal_namespace,
                by=by,
                calibrate=calibrate,
                replications=replications,
                echo=echo,
                measure=measure,
                measure_hours=measure_hours,
                step_replications=step_replications,
            )

    return asyncio.run(main())


def more_simulations(
    simulation: SimulationResult, until_s: float, replications: int
) -> list[Timelines]:
    """``replications`` more runs of ``simulation``'s scenario under derived seeds, cut at
    ``until_s`` like the replayed one."""
    from protocol_lab.sim import simulate
    from protocol_lab.sim.replications import replication_seeds

    scenario = simulation.scenario
    seeds = replication_seeds(scenario.seed, replications + 1)[1:]
    return [
        simulated_timelines(simulate(scenario.model_copy(update={"seed": seed})), until_s=until_s)
        for seed in seeds
    ]


def _calibrate_known(
    scenario: Scenario, replications: int
) -> tuple[Calibration | None, str | None]:
    """Calibrate from :data:`KNOWN_LOG_HOURS` simulated with the scenario's own (known)
    parameters."""
    from protocol_lab.sim import simulate

    try:
        week = scenario.with_horizon(max(scenario.horizon_hours, KNOWN_LOG_HOURS), warmup_hours=0)
        log = simulate(week).timelines
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return _calibrate(log, scenario, replications, scenario.platform.compression)


def _calibrate(
    log: Timelines, base: Scenario, replications: int, compression: float
) -> tuple[Calibration | None, str | None]:
    """Calibrate a scenario from a log; a failure is returned as text, not raised."""
    from protocol_lab.sim.calibration import calibrate

    try:
        return calibrate(log, base=base, replications=replications, compression=compression), None
    except Exception as exc:  # the loop's other products are still worth keeping
        return None, f"{type(exc).__name__}: {exc}"
