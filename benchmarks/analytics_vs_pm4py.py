"""protocol_lab.analytics against PM4Py on the same event log, in the same run.

Covers: loading a Parquet log, case durations, the performance directly-follows graph, variants
and the case arrival rate — by this library and by PM4Py (including its ``format_dataframe``).
Each side runs in its own subprocess so its peak memory (``VmHWM``) and CPU time are its own;
both read the same file. The sides run ``--repeat`` times, alternating, and the medians are
shown (the machine may be shared). The parent checks that the numbers agree and prints each
time, the ratios, CPU time and peak memory.

Scenario: ``N_WORKFLOWS`` workflows from ``data/samples/make_sample.generate`` (seeded), with
``activity_started`` / ``compensation_started`` rows dropped: about 1.3 million events for
200,000 workflows (more than the million events the comparison targets; the larger log is the
harder case).
The activity label of an event is its step id, else its event name.

Both sides import byte-compiled code: the installed packages were compiled when the environment
was built (``uv sync --compile-bytecode``), and this library, installed from its source folder,
is compiled before the runs (a process started with ``PYTHONDONTWRITEBYTECODE`` would otherwise
compile its modules on every import: about 27 ms of its import step).

Run: ``.venv/bin/python benchmarks/analytics_vs_pm4py.py [--workflows N] [--repeat N]`` (needs the
``bench`` dependency group for PM4Py).
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
N_WORKFLOWS = 200_000
SEED = 7
TARGET = 10.0
"""Speed-up over PM4Py aimed at, on every step and in total."""
STEPS = ("import", "load", "case_durations", "performance_dfg", "variants", "arrival_rate")


def make_log(path: Path, *, n_workflows: int) -> int:
    """Write the benchmark log (Parquet) and return its number of events."""
    import importlib.util

    import polars as pl

    spec = importlib.util.spec_from_file_location(
        "make_sample", ROOT / "data" / "samples" / "make_sample.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    events, _ = module.generate(n_workflows=n_workflows, days=120, seed=SEED)
    events = events.filter(
        ~pl.col("event").cast(pl.String).is_in(["activity_started", "compensation_started"])
    )
    events.write_parquet(path)
    return int(events.height)


def _peak_mb() -> float:
    """This process's peak resident memory.

    ``VmHWM`` is the high-water mark of this process's own address space; ``ru_maxrss`` of a
    child also counts the parent's resident size at the fork (here the parent that made the
    log), so it is only the fallback off Linux.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_s() -> float:
    """CPU time (user + system, all threads) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class StepClock:
    """Wall time and CPU time (user + system, all threads of this process) of each step."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._wall0 = 0.0
        self._cpu0 = 0.0

    def start(self) -> None:
        """Begin timing a step."""
        self._cpu0 = _cpu_s()
        self._wall0 = time.perf_counter()

    def stop(self, step: str) -> None:
        """End the step begun last and record its times under ``step``."""
        self.wall[step] = time.perf_counter() - self._wall0
        self.cpu[step] = _cpu_s() - self._cpu0


def run_ours(log: Path, out: Path) -> dict[str, Any]:
    """This library's side: lazy scan, per-workflow frame, frame functions.

    Lazy results are collected with the engine the library is tuned for (``ENGINE``, the
    in-memory one), as its own collecting methods do.
    """
    clock = StepClock()
    clock.start()
    import polars as pl

    from protocol_lab.analytics import (
        ENGINE,
        Timelines,
        arrival_stats,
        directly_follows,
        variants,
    )

    clock.stop("import")

    clock.start()
    tl = Timelines.from_file(log).cache()
    clock.stop("load")

    clock.start()
    durations = (
        tl.workflows.select(
            ((pl.col("last_event_at") - pl.col("started_at")).dt.total_microseconds() / 1e6)
            .sort()
            .alias("d")
        )
        .collect(engine=ENGINE)
        .to_series()
        .to_list()
    )
    clock.stop("case_durations")

    clock.start()
    dfg = directly_follows(tl.events).collect(engine=ENGINE)
    clock.stop("performance_dfg")

    clock.start()
    var = variants(tl.events, steps_only=False).collect(engine=ENGINE)
    clock.stop("variants")

    clock.start()
    arrival = arrival_stats(tl.workflows).collect(engine=ENGINE)["mean_interarrival_s"][0]
    clock.stop("arrival_rate")

    result = {
        "times": clock.wall,
        "cpu": clock.cpu,
        "cpu_s": _cpu_s(),
        "peak_mb": _peak_mb(),
        "durations": durations,
        "dfg": {
            f"{s}\t{d}": [n, m]
            for s, d, n, m in dfg.select("source", "target", "n", "mean_s").iter_rows()
        },
        "variants": {v.replace(" > ", ","): n for v, n in var.select("variant", "n").iter_rows()},
        "arrival": float(arrival),
    }
    out.write_text(json.dumps(result))
    return result


def run_pm4py(log: Path, out: Path) -> dict[str, Any]:
    """PM4Py's side: pandas read, format_dataframe, the simplified-interface functions."""
    import warnings

    warnings.filterwarnings("ignore")
    clock = StepClock()
    clock.start()
    import pandas as pd
    import pm4py

    clock.stop("import")

    clock.start()
    df = pd.read_parquet(log)
    df["label"] = df["step"].astype(object).where(df["step"].notna(), df["event"].astype(str))
    df = pm4py.format_dataframe(
        df, case_id="workflow_id", activity_key="label", timestamp_key="timestamp"
    )
    clock.stop("load")

    clock.start()
    durations = sorted(pm4py.get_all_case_durations(df))
    clock.stop("case_durations")

    clock.start()
    dfg, _, _ = pm4py.discover_performance_dfg(df)
    clock.stop("performance_dfg")

    clock.start()
    var = pm4py.get_variants(df)
    clock.stop("variants")

    clock.start()
    arrival = pm4py.get_case_arrival_average(df)
    clock.stop("arrival_rate")

    result = {
        "times": clock.wall,
        "cpu": clock.cpu,
        "cpu_s": _cpu_s(),
        "peak_mb": _peak_mb(),
        "durations": [float(d) for d in durations],
        "dfg": {f"{a}\t{b}": [None, float(v["mean"])] for (a, b), v in dfg.items()},
        "variants": {",".join(k): int(v if isinstance(v, int) else len(v)) for k, v in var.items()},
        "arrival": float(arrival),
    }
    out.write_text(json.dumps(result))
    return result


def _side(name: str, log: Path, folder: Path) -> dict[str, Any]:
    out = folder / f"{name}.json"
    subprocess.run(
        [sys.executable, __file__, "--side", name, "--log", str(log), "--out", str(out)],
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return dict(json.loads(out.read_text()))


def _median_run(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The first run's results with every wall, CPU and memory figure the median over runs."""
    out = dict(results[0])
    for kind in ("times", "cpu"):
        out[kind] = {step: statistics.median(r[kind][step] for r in results) for step in STEPS}
        out[kind]["end to end"] = statistics.median(sum(r[kind].values()) for r in results)
        out[kind]["without import"] = statistics.median(
            sum(r[kind].values()) - r[kind]["import"] for r in results
        )
    for key in ("cpu_s", "peak_mb"):
        out[key] = statistics.median(r[key] for r in results)
    return out


def agree(ours: dict[str, Any], theirs: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(check, passed, note) for each result both sides computed."""
    checks = []
    a, b = ours["durations"], theirs["durations"]
    worst = (
        max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0)
        if len(a) == len(b)
        else math.inf
    )
    checks.append(("case durations", worst < 1e-3, f"{len(a)} cases, max diff {worst:.2e} s"))
    keys = set(ours["dfg"]) | set(theirs["dfg"])
    diffs = [
        abs(ours["dfg"][k][1] - theirs["dfg"][k][1])
        for k in keys
        if k in ours["dfg"] and k in theirs["dfg"]
    ]
    same_edges = set(ours["dfg"]) == set(theirs["dfg"])
    worst_dfg = max(diffs, default=0.0)
    checks.append(
        (
            "performance DFG",
            same_edges and worst_dfg < 1e-3,
            f"{len(keys)} edges, same edges: {same_edges}, max mean diff {worst_dfg:.2e} s",
        )
    )
    checks.append(
        (
            "variants",
            ours["variants"] == theirs["variants"],
            f"{len(ours['variants'])} vs {len(theirs['variants'])} variants",
        )
    )
    diff = abs(ours["arrival"] - theirs["arrival"])
    checks.append(("arrival rate", diff < 1e-6 * max(1.0, theirs["arrival"]), f"diff {diff:.2e} s"))
    return checks


def main() -> None:
    """Make the log, run both sides in subprocesses, compare and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=N_WORKFLOWS)
    parser.add_argument("--repeat", type=int, default=3, help="runs per side (medians shown)")
    parser.add_argument("--side", choices=["ours", "pm4py"])
    parser.add_argument("--log", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.side == "ours":
        run_ours(args.log, args.out)
        return
    if args.side == "pm4py":
        run_pm4py(args.log, args.out)
        return
    print(f"(machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start)")
    if not compileall.compile_dir(ROOT / "protocol_lab", quiet=1):
        raise SystemExit("protocol_lab could not be byte-compiled")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        log = folder / "log.parquet"
        t = time.perf_counter()
        n_events = make_log(log, n_workflows=args.workflows)
        print(
            f"log: {args.workflows:,} workflows, {n_events:,} events "
            f"(made in {time.perf_counter() - t:.1f} s)"
        )
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "pm4py": []}
        for _ in range(args.repeat):  # alternate the sides so both see the same machine load
            for name, results in runs.items():
                results.append(_side(name, log, folder))
    ours = _median_run(runs["ours"])
    theirs = _median_run(runs["pm4py"])
    print(f"(medians of {args.repeat} runs per side, alternating)")
    print(
        f"\n{'':<16}{'wall time (s)':^30}{'CPU time, user+sys (s)':^30}"
        f"\n{'step':<16}{'ours':>9}{'pm4py':>9}{'ratio':>8}  {'ours':>9}{'pm4py':>9}{'ratio':>8}"
        f"  {'target':>7}"
    )
    for step in (*STEPS, "end to end", "without import"):
        wa, wb = ours["times"][step], theirs["times"][step]
        ca, cb = ours["cpu"][step], theirs["cpu"][step]
        print(
            f"{step:<16}{wa:>9.3f}{wb:>9.3f}{wb / wa:>7.1f}x  {ca:>9.3f}{cb:>9.3f}"
            f"{cb / max(ca, 1e-9):>7.1f}x  {TARGET:>6.0f}x"
        )
    print(
        f"{'CPU, whole side':<16}{'':>26}  {ours['cpu_s']:>9.3f}{theirs['cpu_s']:>9.3f}"
        f"{theirs['cpu_s'] / ours['cpu_s']:>7.1f}x"
    )
    print(
        f"{'peak memory, MB':<16}{ours['peak_mb']:>9.0f}{theirs['peak_mb']:>9.0f}"
        f"{theirs['peak_mb'] / ours['peak_mb']:>7.1f}x"
    )
    load = os.getloadavg()[0]
    print(f"(machine: {os.cpu_count()} CPUs, load average {load:.1f} at the end)")
    print("\nagreement:")
    for name, ok, note in agree(ours, theirs):
        print(f"  {'OK  ' if ok else 'DIFF'} {name}: {note}")


if __name__ == "__main__":
    main()
