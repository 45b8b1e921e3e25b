"""Importing foreign event logs: ``Timelines.from_log`` on a ServiceNow-shaped CSV and an XES log
of about a million rows, and, when PM4Py is installed (the ``bench`` dependency group), PM4Py
reading the same files (``read_xes``; ``pandas.read_csv`` + ``format_dataframe``) beside it.

The ServiceNow log is generated here (seeded): each incident New -> Active, then with some
chance a reassignment, a wait in Awaiting User Info and a reopening, Resolved, Closed, one row
per update in the export's layout (``29-02-2016 01:16`` dates, ``?`` for missing values). The
XES log is the imported timeline written with :func:`protocol_lab.analytics.write_xes`.
Figures are printed (wall time, rows per second); nothing is asserted.

Run: ``.venv/bin/python benchmarks/foreign_logs.py [--incidents N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from protocol_lab.analytics import Timelines, write_xes

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


def timed(label: str, rows: int, run: Callable[[], Any]) -> Any:
    """Run once, print the wall time and rows per second."""
    start = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - start
    print(f"{label:<48} {elapsed:8.2f} s  {rows / elapsed:12,.0f} rows/s")
    return result


def main() -> None:
    """Generate the logs, import them, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=140_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "incident_event_log.csv"
        log = servicenow_log(args.incidents)
        log.write_csv(csv)
        print(f"ServiceNow CSV: {log.height:,} rows, {args.incidents:,} incidents")
        tl = timed(
            "protocol-lab from_log (servicenow CSV)",
            log.height,
            lambda: Timelines.from_log(csv, preset="servicenow").cache(),
        )
        events = tl.events.select(pl.len()).collect().item()
        timed("protocol-lab time in each state + bottlenecks", events, tl.bottlenecks)
        xes = Path(tmp) / "incidents.xes"
        write_xes(tl, xes)
        print(f"XES: {events:,} events")
        timed("protocol-lab from_log (XES)", events, lambda: Timelines.from_log(xes).cache())
        try:
            import pandas as pd
            import pm4py
        except ImportError:
            print("PM4Py not installed (uv sync --group bench): its side is skipped")
            return
        timed("PM4Py read_xes", events, lambda: pm4py.read_xes(str(xes)))

        def pm4py_csv() -> Any:
            frame = pd.read_csv(csv)
            frame["sys_updated_at"] = pd.to_datetime(
                frame["sys_updated_at"], format="%d-%m-%Y %H:%M"
            )
            return pm4py.format_dataframe(
                frame,
                case_id="number",
                activity_key="incident_state",
                timestamp_key="sys_updated_at",
            )

        timed("PM4Py read_csv + format_dataframe", log.height, pm4py_csv)


if __name__ == "__main__":
    main()
