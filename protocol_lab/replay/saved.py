"""One turn of the closed loop kept in a folder, and judged again from it without a service.

:func:`save_loop` writes what a turn measured on the service: the replayed timelines
(``replay.parquet`` with its ``replay.workflows.parquet`` sidecar), the warm-up's timelines
(``warm_up.parquet``), the platform measured from them (``platform.json``) and the scenario
exactly as it was simulated for the replay, with that platform (``loop.json``, with the
compression and the script's cut-off). :func:`load_loop` rebuilds the turn from the folder: the
simulation again (it is deterministic, given the scenario and its seed), the comparison, the
calibrations and so the targets, in seconds instead of a replay's minutes, so that the
simulator, the platform fit and the calibration can be changed and judged on the same log.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from protocol_lab.analytics import Timelines
    from protocol_lab.replay.measure import PlatformMeasurement
    from protocol_lab.replay.pipeline import LoopResult
    from protocol_lab.sim import Scenario

__all__ = ["load_loop", "load_warm_up", "save_loop"]

_LOOP = "loop.json"
_REPLAY = "replay.parquet"
_WARM_UP = "warm_up.parquet"
_PLATFORM = "platform.json"


def save_loop(loop: LoopResult, folder: str | Path) -> Path:
    """Write the turn's logs and the simulated scenario into ``folder`` (see the module
    docstring); returns the folder."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    loop.real.cache().write_parquet(out / _REPLAY)
    scenario = loop.simulation.scenario
    meta = {
        "scenario": json.loads(scenario.model_dump_json()),
        "compression": loop.compression,
        "until_s": loop.script.end_s,
        "origin": loop.script.origin.isoformat(),
    }
    (out / _LOOP).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    if loop.platform is not None:
        (out / _PLATFORM).write_text(loop.platform.config.model_dump_json(indent=1), "utf-8")
        if loop.platform.events is not None:
            loop.platform.events.write_parquet(out / _WARM_UP)
    return out


def load_warm_up(folder: str | Path) -> pl.DataFrame | None:
    """The saved warm-up's timeline events (None if the turn had no warm-up)."""
    path = Path(folder) / _WARM_UP
    return pl.read_parquet(path) if path.exists() else None


def _scenario(folder: Path) -> tuple[Scenario, float, float]:
    from protocol_lab.sim import Scenario

    meta = json.loads((folder / _LOOP).read_text(encoding="utf-8"))
    scenario = Scenario.model_validate(meta["scenario"])
    return scenario, float(meta["compression"]), float(meta["until_s"])


def _measurement(path: Path, events: pl.DataFrame | None) -> PlatformMeasurement:
    from protocol_lab.replay.measure import PlatformMeasurement
    from protocol_lab.sim.platform import PlatformConfig
    from protocol_lab.sim.platform_fit import platform_rows

    config = PlatformConfig.model_validate_json(path.read_text(encoding="utf-8"))
    workflows = 0 if events is None else events["workflow_id"].n_unique()
    return PlatformMeasurement(
        config=config, table=platform_rows(config), workflows=workflows, wall_s=0.0, events=events
    )


def load_loop(
    folder: str | Path,
    *,
    scenario: Scenario | None = None,
    real: Timelines | None = None,
    calibrate: bool = True,
    replications: int | None = None,
) -> LoopResult:
    """The turn saved in ``folder`` judged again: simulated (``scenario`` instead of the saved
    one, to try another model on the same log), compared and calibrated as
    :func:`~protocol_lab.replay.pipeline.run_closed_loop` does; ``real`` replaces the saved
    replay's timelines. The result's ``replay`` holds the script and no calls."""
    from protocol_lab.analytics import Timelines
    from protocol_lab.replay.pipeline import (
        CALIBRATION_REPLICATIONS,
        STEP_REPLICATIONS,
        LoopResult,
        _add_calibrations,
        _comparison,
    )
    from protocol_lab.replay.player import ReplayResult
    from protocol_lab.replay.readback import simulated_timelines
    from protocol_lab.replay.script import ReplayScript

    path = Path(folder)
    saved, compression, until_s = _scenario(path)
    source = scenario if scenario is not None else saved
    script, simulation = ReplayScript.from_simulation(source, until_hours=until_s / 3600)
    simulated = simulated_timelines(simulation, until_s=script.end_s)
    if real is None:
        real = Timelines.from_file(path / _REPLAY).cache()
    played = ReplayResult(
        script=script,
        run_id="saved",
        compression=compression,
        started_at=datetime.fromtimestamp(0).astimezone(),
    )
    result = LoopResult(
        script=script,
        simulation=simulation,
        simulated=simulated,
        replay=played,
        real=real,
        comparison=_comparison(
            simulated,
            real,
            simulation,
            script,
            by="workflow_name",
            step_replications=STEP_REPLICATIONS,
        ),
        compression=compression,
    )
    platform = path / _PLATFORM
    if platform.exists():
        result.platform = _measurement(platform, load_warm_up(path))
    if calibrate:
        _add_calibrations(
            result,
            real,
            replications=CALIBRATION_REPLICATIONS if replications is None else replications,
            compression=compression,
            echo=print,
        )
    return result
