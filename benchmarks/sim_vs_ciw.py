"""Benchmark: protocol_lab.sim against Ciw on M/M/c, and a month of a service desk.

1. M/M/c (c = 8, utilisation 0.85, mean service 60 s, one million customers by default): the
   shipped ``mmc_validation`` scenario run by protocol_lab.sim (the full model: tickets, the rule
   that starts the workflow, the workflow on a task queue with 8 single-slot workers, flat attempt
   records) and the same queue in Ciw, each in a fresh process, one after the other. Printed:
   simulation time, peak memory (growth of the peak resident set over the process's state before
   the run), mean wait in queue with a 95% batch-means interval, and Erlang C's exact value.
2. ``service_desk_month``: about 150,000 tickets and a million timeline events through the shipped
   rules and catalog, on one core: time, events per second, peak memory, and the time to build the
   timeline frame.

Run: ``.venv/bin/python benchmarks/sim_vs_ciw.py [--customers N] [--repeat N] [--skip-ciw]
[--skip-month]``. The M/M/c runs alternate between the engines ``--repeat`` times (3 by default)
and the ratios are of the medians: one pair of runs on a shared machine varied by a fifth.
Seeds and sizes are fixed; the figures vary with the machine's load.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from typing import Any

SERVERS = 8
UTILISATION = 0.85
MEAN_SERVICE_S = 60.0
SEED = 8
TARGET_SPEEDUP = 3.0
"""Ciw's time over ours aimed at, in wall and in CPU time."""
TARGET_MEMORY_SHARE = 0.10
"""Our peak memory growth as a share of Ciw's, at most."""


def _rss_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(field)


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        pass


def _batch_means(values: Any, batches: int = 20) -> tuple[float, float]:
    import numpy as np
    from scipy import stats

    arr = np.asarray(values, dtype=float)
    usable = len(arr) // batches * batches
    means = arr[:usable].reshape(batches, -1).mean(axis=1)
    half = float(stats.t.ppf(0.975, batches - 1) * means.std(ddof=1) / np.sqrt(batches))
    return float(arr.mean()), half


def run_ours(customers: int, record_events: bool, queue: Any) -> None:
    import gc

    import numpy as np

    from protocol_lab.sim import load_scenario, simulate

    scenario = load_scenario("mmc_validation").model_copy(
        update={
            "max_tickets": customers,
            "horizon_hours": customers / 408.0 * 1.2 + 24,
            "warmup_hours": 0.0,
        }
    )
    gc.collect()
    _reset_peak()
    before = _rss_kib("VmRSS")
    cpu0 = time.process_time()
    began = time.perf_counter()
    result = simulate(scenario, rng=np.random.default_rng(SEED), record_events=record_events)
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu0
    peak = _rss_kib("VmHWM") - before
    att = result.tracker
    waits = np.frombuffer(att.a_start, dtype=np.float64) - np.frombuffer(
        att.a_enq, dtype=np.float64
    )
    mean, half = _batch_means(waits)
    queue.put(
        {
            "engine": "protocol_lab.sim" + (" +timelines" if record_events else ""),
            "customers": result.n_workflows,
            "seconds": elapsed,
            "cpu_seconds": cpu,
            "peak_mib": peak / 1024,
            "mean_wait_s": mean,
            "ci_half_s": half,
            "events": result.n_events,
        }
    )


def run_ciw(customers: int, queue: Any) -> None:
    import gc

    import ciw

    lam = UTILISATION * SERVERS / MEAN_SERVICE_S
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(lam)],
        service_distributions=[ciw.dists.Exponential(1.0 / MEAN_SERVICE_S)],
        number_of_servers=[SERVERS],
    )
    ciw.seed(SEED)
    gc.collect()
    _reset_peak()
    before = _rss_kib("VmRSS")
    cpu0 = time.process_time()
    began = time.perf_counter()
    sim = ciw.Simulation(network)
    sim.simulate_until_max_customers(customers, method="Finish")
    records = sim.get_all_records()
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu0
    peak = _rss_kib("VmHWM") - before
    records.sort(key=lambda r: r.arrival_date)
    mean, half = _batch_means([r.waiting_time for r in records])
    queue.put(
        {
            "engine": "ciw " + ciw.__version__,
            "customers": len(records),
            "seconds": elapsed,
            "cpu_seconds": cpu,
            "peak_mib": peak / 1024,
            "mean_wait_s": mean,
            "ci_half_s": half,
        }
    )


def run_month(queue: Any) -> None:
    import gc

    import numpy as np

    from protocol_lab.sim import load_scenario, simulate

    scenario = load_scenario("service_desk_month")
    gc.collect()
    _reset_peak()
    before = _rss_kib("VmRSS")
    began = time.perf_counter()
    result = simulate(scenario, rng=np.random.default_rng(scenario.seed))
    elapsed = time.perf_counter() - began
    t0 = time.perf_counter()
    events = result.events
    frame_s = time.perf_counter() - t0
    peak = _rss_kib("VmHWM") - before
    queue.put(
        {
            "tickets": result.tickets,
            "workflows": result.n_workflows,
            "events": result.n_events,
            "events_in_frame": events.height,
            "seconds": elapsed,
            "frame_seconds": frame_s,
            "events_per_s": result.n_events / elapsed,
            "peak_mib": peak / 1024,
        }
    )


def _in_process(target: Any, *args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    out: dict[str, Any] = queue.get()
    proc.join()
    return out


def _medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    """The median over runs of each time and memory figure."""
    return {
        key: statistics.median(r[key] for r in runs)
        for key in ("seconds", "cpu_seconds", "peak_mib")
    }


def main() -> None:
    """Run the comparisons and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="M/M/c runs per engine (medians)")
    parser.add_argument("--skip-ciw", action="store_true")
    parser.add_argument("--skip-month", action="store_true")
    parser.add_argument("--timelines", action="store_true", help="also run M/M/c with timelines")
    args = parser.parse_args()

    from protocol_lab.sim.validation import erlang_c_wait

    exact = erlang_c_wait(
        servers=SERVERS,
        arrival_rate=UTILISATION * SERVERS / MEAN_SERVICE_S,
        service_rate=1.0 / MEAN_SERVICE_S,
    )
    print(f"(machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start)")
    print(
        f"M/M/c: c={SERVERS}, utilisation={UTILISATION}, mean service {MEAN_SERVICE_S:.0f} s, "
        f"{args.customers:,} customers; Erlang C mean wait {exact:.3f} s"
    )
    ours_runs: list[dict[str, Any]] = []
    ciw_runs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for _ in range(args.repeat):  # alternating, so that both see the same machine load
        ours_runs.append(_in_process(run_ours, args.customers, False))
        rows.append(ours_runs[-1])
        if not args.skip_ciw:
            ciw_runs.append(_in_process(run_ciw, args.customers))
            rows.append(ciw_runs[-1])
    if args.timelines:
        rows.append(_in_process(run_ours, args.customers, True))
    print(f"  {'engine':<28} {'wall':>9} {'CPU u+s':>9} {'peak':>12}  mean wait in queue")
    for r in rows:
        err = (r["mean_wait_s"] - exact) / exact
        print(
            f"  {r['engine']:<28} {r['seconds']:7.2f} s {r['cpu_seconds']:7.2f} s "
            f"{r['peak_mib']:8.1f} MiB  "
            f"{r['mean_wait_s']:.3f} ± {r['ci_half_s']:.3f} s ({err:+.2%} vs Erlang C)"
        )
    if ciw_runs:
        ours, theirs = _medians(ours_runs), _medians(ciw_runs)
        pairs = [c["seconds"] / o["seconds"] for o, c in zip(ours_runs, ciw_runs, strict=True)]
        print(
            f"  Ciw / ours, medians of {args.repeat} runs each: "
            f"wall {theirs['seconds'] / ours['seconds']:.2f}x "
            f"(run by run {min(pairs):.2f}-{max(pairs):.2f}x), "
            f"CPU {theirs['cpu_seconds'] / ours['cpu_seconds']:.2f}x "
            f"(target >= {TARGET_SPEEDUP:.0f}x each); "
            f"memory {ours['peak_mib'] / max(theirs['peak_mib'], 1e-9):.3f} of Ciw's "
            f"(target <= {TARGET_MEMORY_SHARE:.2f})"
        )
    print(f"  (load average {os.getloadavg()[0]:.1f} after the M/M/c runs)")
    if not args.skip_month:
        m = _in_process(run_month)
        print("Service desk month (service_desk_month.yaml), one core:")
        print(
            f"  {m['tickets']:,} tickets, {m['workflows']:,} workflows, {m['events']:,} events "
            f"in {m['seconds']:.1f} s = {m['events_per_s']:,.0f} events/s; "
            f"timeline frame {m['frame_seconds']:.2f} s; peak {m['peak_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
