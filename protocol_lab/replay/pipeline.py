"""The closed loop in one call: simulate -> replay -> load -> compare -> calibrate.

:func:`run_closed_loop_async` (through a client) and :func:`run_closed_loop` (given the API's
URL and token) take a scenario, or a script with the simulation it came from, and a running
service whose ``TIME_SCALE`` equals ``compression``:

1. **simulate**: :meth:`ReplayScript.from_simulation` (skipped when a script is given);
2. **replay**: :func:`~protocol_lab.replay.player.replay_async`, optionally after
   :func:`~protocol_lab.replay.player.warm_up`;
3. **load**: :func:`~protocol_lab.replay.readback.load_replayed` (through the API, or from the
   Temporal histories given ``temporal_address``);
4. **compare**: :func:`protocol_lab.compare.compare` of the simulation cut at the script's end
   with the real timelines, as of that instant;
5. **calibrate**: :func:`protocol_lab.sim.calibration.calibrate` from the real timelines alone,
   with the scenario as base; a failure is reported through ``echo`` and kept in the result,
   not raised, so what came before is not lost.

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
    "LoopResult",
    "calibration_line",
    "describe",
    "run_closed_loop",
    "run_closed_loop_async",
]


@dataclass
class LoopResult:
    """One turn of the closed loop: every step's product.

    ``simulated`` is the simulation's timelines cut at the script's end (what ``real`` is
    compared with); ``calibration`` is ``None`` when it was not asked for or failed, and then
    ``calibration_failure`` says why (for a failure).
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
    replications: int = 2,
    echo: Callable[[str], None] = lambda _: None,
) -> LoopResult:
    """Run the closed loop (see the module docstring) against the service behind ``client``.

    ``source`` is a scenario (simulated here, the script cut at ``until_hours``) or a script
    built from ``simulation``, which must then be given. ``warm`` starts and cancels one
    workflow first so the worker's start-up does not delay the first replayed calls.
    ``by`` groups the comparison; ``replications`` are the calibration's pooled runs.
    ``echo`` receives progress lines.
    """
    from protocol_lab.compare import compare

    began = time.monotonic()
    if isinstance(source, ReplayScript):
        if simulation is None:
            raise ValueError("a script needs the simulation it came from to be compared")
        script = source
    else:
        script, simulation = ReplayScript.from_simulation(source, until_hours=until_hours)
        echo(describe(script, simulation, compression))
    simulated = simulated_timelines(simulation, until_s=script.end_s)
    if warm:
        await warm_up(client)
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
        comparison=compare(
            simulated, real, by=by, as_of=script.origin + timedelta(seconds=script.end_s)
        ),
    )
    if calibrate:
        result.calibration, result.calibration_failure = _calibrate(
            real, simulation.scenario, replications
        )
        if result.calibration_failure is not None:
            echo(f"calibration from the real log failed: {result.calibration_failure}")
    result.wall_s = time.monotonic() - began
    return result


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
    replications: int = 2,
    echo: Callable[[str], None] = lambda _: None,
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
            )

    return asyncio.run(main())


def _calibrate(
    real: Timelines, base: Scenario, replications: int
) -> tuple[Calibration | None, str | None]:
    """Calibrate a scenario from the real log; a failure is returned as text, not raised."""
    from protocol_lab.sim.calibration import calibrate

    try:
        return calibrate(real, base=base, replications=replications), None
    except Exception as exc:  # the loop's other products are still worth keeping
        return None, f"{type(exc).__name__}: {exc}"
