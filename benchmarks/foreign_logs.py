"""Importing foreign event logs: ``Timelines.from_log`` on a ServiceNow-shaped CSV of about a
million rows and on the XES log of the same incidents, and, when PM4Py is installed (the
``bench`` dependency group), PM4Py reading the same files (``read_xes``; ``pandas.read_csv`` +
``format_dataframe``) beside it.

The ServiceNow log is generated here (seeded): each incident New -> Active, then with some
chance a reassignment, a wait in Awaiting User Info and a reopening, Resolved, Closed, one row
per update in the export's layout (``29-02-2016 01:16`` dates, ``?`` for missing values). The
XES log is the imported timeline written with :func:`protocol_lab.analytics.write_xes`.

Each measured task runs in its own fresh interpreter (a subprocess), so its peak resident memory
(``VmHWM``) is its own: protocol-lab importing the CSV and then analysing it (time in each state
and bottlenecks, SLA by priority, reassignments, reopens), protocol-lab importing the XES log,
protocol-lab calibrating a simulation from the imported CSV, simulating it and comparing its
resolution times with the log's (:mod:`protocol_lab.sim.log_calibration`), PM4Py reading the
XES log, PM4Py reading the CSV. Figures are printed (wall time, rows per
second, peak memory, and each PM4Py time over protocol-lab's for the same file); nothing is
asserted.

Run: ``.venv/bin/python benchmarks/foreign_logs.py [--incidents N]`` (the default, 190,000
incidents, makes about a million CSV rows).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from protocol_lab.analytics import Timelines, write_xes
from protocol_lab.domain import SlaConfig

SEED = 11


def servicenow_log(incidents: int, *, seed: int = SEED) -> pl.DataFrame:
    """A ServiceNow incident event log with ``incidents`` incidents (about 7 rows each)."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "number",
            "incident_state",
            "sys_mod_count",
            "sys_updated_at",
            "opened_at",
            "assignment_group",
            "assigned_to",
            "priority",
            "category",
            "made_sla",
            "contact_type",
        )
    }
    opened = 1_456_700_000 + np.cumsum(rng.exponential(60.0, incidents)).astype(np.int64)
    priorities = ["1 - Critical", "2 - High", "3 - Moderate", "4 - Low"]
    for i in range(incidents):
        path = ["New", "Active"]
        if rng.random() < 0.3:
            path.append("Active")  # a reassignment: same state, another group
        if rng.random() < 0.4:
            path += ["Awaiting User Info", "Active"]
        path.append("Resolved")
        if rng.random() < 0.1:
            path += ["Active", "Resolved"]  # reopened
        path.append("Closed")
        t = int(opened[i])
        group = f"Group {rng.integers(1, 80)}"
        for k, state in enumerate(path):
            if k:
                t += int(rng.lognormal(8.0, 1.2))
            if k == 2 and path[1] == path[2]:
                group = f"Group {rng.integers(1, 80)}"
            rows["number"].append(f"INC{i:07d}")
            rows["incident_state"].append(state)
            rows["sys_mod_count"].append(str(k))
            rows["sys_updated_at"].append(t)
            rows["opened_at"].append(int(opened[i]))
            rows["assignment_group"].append(group)
            rows["assigned_to"].append("?" if k == 0 else f"Resolver {i % 200}")
            rows["priority"].append(priorities[i % 4])
            rows["category"].append(f"Category {i % 50}")
            rows["made_sla"].append("true" if i % 7 else "false")
            rows["contact_type"].append("Phone" if i % 3 else "Email")
    fmt = "%d-%m-%Y %H:%M"
    return pl.DataFrame(rows).with_columns(
        pl.from_epoch(pl.col(c)).dt.strftime(fmt) for c in ("sys_updated_at", "opened_at")
    )


def _peak_mb() -> float:
    """This process's peak resident memory (``VmHWM``; ``ru_maxrss`` off Linux)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _ours_csv(csv: Path) -> dict[str, float]:
    start = time.perf_counter()
    tl = Timelines.from_log(csv, preset="servicenow").cache()
    imported = time.perf_counter() - start
    targets = SlaConfig.model_validate(
        {"targets": [{"priority": p, "target_hours": 24} for p in PRIORITIES]}
    )
    tl.bottlenecks()
    tl.sla(by="priority", config=targets)
    tl.reassignment_summary(by="priority")
    tl.reopen_rate(by="priority")
    return {"import_s": imported, "analyse_s": time.perf_counter() - start - imported}


def _ours_calibrate(csv: Path) -> dict[str, float]:
    from protocol_lab.sim.log_calibration import calibrate_from_log, compare_resolution
    from protocol_lab.sim.state_flow import simulate_states

    tl = Timelines.from_log(csv, preset="servicenow").cache()
    start = time.perf_counter()
    fitted = calibrate_from_log(tl, measure=False)
    fitted_s = time.perf_counter() - start
    simulated = simulate_states(fitted.scenario)
    simulated_s = time.perf_counter() - start - fitted_s
    error = compare_resolution(tl, simulated)
    assert fitted.scenario.states is not None
    return {
        "import_s": time.perf_counter() - start,
        "fit_s": fitted_s,
        "simulate_s": simulated_s,
        "compare_s": time.perf_counter() - start - fitted_s - simulated_s,
        "dwell_models": len(fitted.scenario.states.dwells),
        "max_relative_error": float(error["relative_error"].max()),  # type: ignore[arg-type]
    }


def _ours_xes(xes: Path) -> dict[str, float]:
    start = time.perf_counter()
    Timelines.from_log(xes).cache()
    return {"import_s": time.perf_counter() - start}


def _pm4py_xes(xes: Path) -> dict[str, float]:
    import pm4py

    start = time.perf_counter()
    pm4py.read_xes(str(xes))
    return {"import_s": time.perf_counter() - start}


def _pm4py_csv(csv: Path) -> dict[str, float]:
    import pandas as pd
    import pm4py

    start = time.perf_counter()
    frame = pd.read_csv(csv)
    frame["sys_updated_at"] = pd.to_datetime(frame["sys_updated_at"], format="%d-%m-%Y %H:%M")
    pm4py.format_dataframe(
        frame, case_id="number", activity_key="incident_state", timestamp_key="sys_updated_at"
    )
    return {"import_s": time.perf_counter() - start}


TASKS = {
    "ours_csv": ("protocol-lab from_log (servicenow CSV)", "csv", _ours_csv),
    "ours_xes": ("protocol-lab from_log (XES)", "xes", _ours_xes),
    "ours_calibrate": ("protocol-lab calibrate + simulate + compare", "csv", _ours_calibrate),
    "pm4py_xes": ("PM4Py read_xes", "xes", _pm4py_xes),
    "pm4py_csv": ("PM4Py read_csv + format_dataframe", "csv", _pm4py_csv),
}
PRIORITIES = ("1 - Critical", "2 - High", "3 - Moderate", "4 - Low")


def _task(name: str, files: dict[str, Path]) -> dict[str, float]:
    """Run one task in a fresh interpreter; its times and peak memory."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        args = [sys.executable, __file__, "--task", name, "--out", out.name]
        args += ["--csv", str(files["csv"]), "--xes", str(files["xes"])]
        subprocess.run(
            args,
            check=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore", "TQDM_DISABLE": "1"},
            stdout=subprocess.DEVNULL,
        )
        return dict(json.loads(Path(out.name).read_text()))


def main() -> None:
    """Generate the logs, run each task in its own process, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=190_000)
    parser.add_argument("--task", choices=sorted(TASKS), help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--xes", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task:
        _, kind, run = TASKS[args.task]
        figures = run(args.csv if kind == "csv" else args.xes)
        args.out.write_text(json.dumps({**figures, "peak_mb": _peak_mb()}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        files = {"csv": Path(tmp) / "incident_event_log.csv", "xes": Path(tmp) / "incidents.xes"}
        log = servicenow_log(args.incidents)
        log.write_csv(files["csv"])
        rows = {"csv": log.height}
        del log
        write_xes(Timelines.from_log(files["csv"], preset="servicenow"), files["xes"])
        rows["xes"] = Timelines.from_log(files["xes"]).events.select(pl.len()).collect().item()
        print(
            f"ServiceNow CSV: {rows['csv']:,} rows, {args.incidents:,} incidents; "
            f"XES: {rows['xes']:,} events"
        )
        try:
            import pm4py  # noqa: F401
        except ImportError:
            print("PM4Py not installed (uv sync --group bench): its side is skipped")
            names = ["ours_csv", "ours_xes", "ours_calibrate"]
        else:
            names = list(TASKS)
        results = {name: _task(name, files) for name in names}
        print(f"{'':<40} {'wall s':>8} {'rows/s':>12} {'peak MB':>8}")
        for name in names:
            label, kind, _ = TASKS[name]
            r = results[name]
            print(
                f"{label:<40} {r['import_s']:8.2f} {rows[kind] / r['import_s']:12,.0f} "
                f"{r['peak_mb']:8.0f}"
            )
            if "fit_s" in r:
                print(
                    f"{'  fit / simulate / compare':<40} {r['fit_s']:.2f} / {r['simulate_s']:.2f}"
                    f" / {r['compare_s']:.2f} s; {r['dwell_models']:.0f} dwell models; largest"
                    f" p50/p95 error {r['max_relative_error']:.1%}"
                )
            if "analyse_s" in r:
                total = r["import_s"] + r["analyse_s"]
                print(
                    f"{'  then states, SLA, reassignments, reopens':<40} {r['analyse_s']:8.2f}"
                    f" {rows[kind] / total:12,.0f} (with the import)"
                )
        for theirs, ours in (("pm4py_xes", "ours_xes"), ("pm4py_csv", "ours_csv")):
            if theirs in results:
                ratio = results[theirs]["import_s"] / results[ours]["import_s"]
                print(f"{TASKS[theirs][0]} / {TASKS[ours][0]}: {ratio:.1f}x the wall time")


if __name__ == "__main__":
    main()
