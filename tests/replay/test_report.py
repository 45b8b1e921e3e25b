"""The demo's report: every section and picture, written from one turn of the loop.

The service side here is another seed of the simulation (no stack is needed to check that the
report is complete); the demo itself writes it from a real replay.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

from protocol_lab.compare import compare
from protocol_lab.demo import _PICTURES, write_demo_report
from protocol_lab.replay import ReplayScript
from protocol_lab.replay.pipeline import LoopResult, more_simulations
from protocol_lab.replay.player import ReplayResult
from protocol_lab.replay.readback import simulated_timelines
from protocol_lab.replay.targets import loop_targets, target_lines
from protocol_lab.sim import load_scenario, simulate
from protocol_lab.sim.calibration import calibrate


def test_the_report_has_every_section_and_picture(tmp_path: Path) -> None:
    scenario = load_scenario("demo_day").as_the_service_runs()
    script, simulation = ReplayScript.from_simulation(scenario, until_hours=30)
    simulated = simulated_timelines(simulation, until_s=script.end_s)
    other = simulated_timelines(
        simulate(scenario.model_copy(update={"seed": scenario.seed + 1})), until_s=script.end_s
    )
    played = ReplayResult(
        script=script, run_id="report", compression=600.0, started_at=datetime.now(UTC)
    )
    comparison = compare(
        simulated,
        other,
        as_of=script.origin,
        more_simulations=more_simulations(simulation, script.end_s, 2),
    )
    calibration = calibrate(other, base=simulation.scenario, replications=1)
    loop = LoopResult(
        script=script,
        simulation=simulation,
        simulated=simulated,
        replay=played,
        real=other,
        comparison=comparison,
        calibration=calibration,
        known_calibration=calibration,
        compression=600.0,
    )
    targets = loop_targets(loop)
    report = write_demo_report(
        out=tmp_path,
        real=other,
        comparison=comparison,
        replay_result=played,
        simulation=simulation,
        title="Report check",
        calibration=calibration,
        targets=targets,
        known_calibration=calibration,
    )
    text = report.read_text(encoding="utf-8")
    for heading in (
        "Targets of this run",
        "The service",
        "Step-duration distances",
        "A scenario calibrated from the service's log",
        "Calibration from the simulator's own log",
    ):
        assert heading in text, heading
    assert f"{int(targets['met'].sum())} of {targets.height} target rows met" in text
    # every target row is in the report, each with its scope, and each target's line above it
    assert targets.height > 20
    table = text[text.index("Targets of this run") :]
    table = table[: table.index("</table>")]
    for scope, rows in targets.group_by("scope").len().iter_rows():
        assert table.count(f"<td>{html.escape(scope)}</td>") == rows, scope
    for line in target_lines(targets):
        assert f"<li>{html.escape(line)}</li>" in text
    for name, _ in _PICTURES:
        assert (tmp_path / name).stat().st_size > 1000, name
