"""The closed loop's targets, computed from one turn of the loop: met or not, by how much, why.

:func:`loop_targets` reads a :class:`~protocol_lab.replay.pipeline.LoopResult` and checks:

- **cycle time**: the two-sample Kolmogorov-Smirnov statistic between simulation and service
  is at most :data:`CYCLE_KS` (0.10) for every workflow with at least :data:`MIN_CASES` (30)
  cases on both sides;
- **activity steps**: KS at most :data:`STEP_KS` (0.20) for every activity step;
- **calibration from the service's log**: every p50 and p95 of cycle time and signal wait per
  task queue within 10% when the calibrated scenario is simulated, queue waits within 10% or
  1 s (:func:`protocol_lab.sim.calibration.calibration_error`);
- **calibration from the simulator's log** (parameters known): the same table, within 10%.

A row not met says by how much (``excess``: measured less the limit) and why, with what the
run measured: for a KS statistic, the probability that two samples of those sizes drawn from
one distribution would differ by more than the limit (sampling noise alone), the statistic's
p-value and the two sides' p50/p95, how far the platform's latency during the replay (fitted
from its log) drifted from the warm-up's measurement the simulation used
(:func:`platform_drift`), and for a step the service does not emulate (anything but an
integration call runs its real work at once) that its time is the platform's on both sides;
for a calibration error, the observed and simulated values and how many were observed.

An activity-step row also carries ``by_chance``, its probability of missing the limit by
sampling alone (the service and the simulator draw step durations independently);
:func:`exact_model_meets_all` multiplies them into the chance that an exact simulation would
meet every row at these sample sizes, which :func:`target_lines` prints: on one demo day (12-55
real cases a step) it is far below 1%, so a step row missed is evidence of a wrong model only
as far as its distance exceeds its noise. Cycle times are paired by the replay (same arrivals,
same signal times), so independent samples' noise overstates theirs and is not given there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import polars as pl

if TYPE_CHECKING:
    from protocol_lab.domain.catalog import Catalog
    from protocol_lab.replay.pipeline import LoopResult
    from protocol_lab.sim.calibration import Calibration

__all__ = [
    "CYCLE_KS",
    "MIN_CASES",
    "STEP_KS",
    "TARGET_SCHEMA",
    "exact_model_meets_all",
    "latency_by_hour",
    "loop_targets",
    "platform_drift",
    "target_lines",
]

CYCLE_KS: Final = 0.10
STEP_KS: Final = 0.20
MIN_CASES: Final = 30

TARGET_SCHEMA: Final = {
    "target": pl.String,
    "scope": pl.String,
    "n": pl.Int64,
    "measured": pl.Float64,
    "limit": pl.Float64,
    "met": pl.Boolean,
    "excess": pl.Float64,
    "why": pl.String,
    "by_chance": pl.Float64,
}


def _noise(ks_limit: float, n: int, m: int) -> tuple[float, float]:
    """(probability that KS exceeds the limit by sampling alone, 95% critical value)."""
    from scipy import stats

    scale = math.sqrt(n * m / (n + m))
    return float(stats.kstwobign.sf(ks_limit * scale)), 1.358 / scale


def platform_drift(loop: LoopResult) -> pl.DataFrame | None:
    """The platform's latency measured before the replay beside the one fitted from the
    replay's own log: parameter, task_queue, warm_up_ms, replay_ms, ratio (None without
    both)."""
    if loop.platform is None or loop.calibration is None or loop.calibration.platform is None:
        return None
    before = loop.platform.table.select(
        "parameter", "task_queue", pl.col("mean_ms").alias("warm_up_ms")
    )
    during = loop.calibration.platform.select(
        "parameter", "task_queue", pl.col("mean_ms").alias("replay_ms")
    )
    return before.join(
        during, on=["parameter", "task_queue"], how="inner", nulls_equal=True
    ).with_columns(
        pl.when(pl.col("warm_up_ms") > 0)
        .then(pl.col("replay_ms") / pl.col("warm_up_ms"))
        .otherwise(None)
        .alias("ratio")
    )


def latency_by_hour(loop: LoopResult) -> pl.DataFrame | None:
    """The service's workflow task per simulated hour of the replay (wall-clock ms), from its
    log (:func:`protocol_lab.sim.platform_fit.workflow_task_by_hour`); None if unreadable."""
    from protocol_lab.sim.platform_fit import workflow_task_by_hour

    try:
        return workflow_task_by_hour(
            loop.real.events.collect(),
            catalog=loop.simulation.scenario.load_catalog(),
            compression=loop.compression,
        )
    except Exception:  # the table is an explanation; the targets stand without it
        return None


def _drift_note(drift: pl.DataFrame | None, by_hour: pl.DataFrame | None = None) -> str:
    if drift is None:
        return ""
    parts = []
    task = drift.filter(pl.col("parameter") == "workflow_task")
    if task.height:
        parts.append(
            f"workflow task {task['replay_ms'][0]:.0f} ms in the replay vs "
            f"{task['warm_up_ms'][0]:.0f} ms in the warm-up"
        )
    overhead = drift.filter(pl.col("parameter") == "activity_overhead")
    if overhead.height:
        parts.append(
            f"activity overhead {float(overhead['replay_ms'].mean()):.0f} vs "  # type: ignore[arg-type]
            f"{float(overhead['warm_up_ms'].mean()):.0f} ms"  # type: ignore[arg-type]
        )
    if by_hour is not None and by_hour.height:
        busy = by_hour.filter(pl.col("n") >= 5)
        if busy.height:
            peak = busy.sort("p50_ms", descending=True).row(0, named=True)
            calm = float(busy["p50_ms"].min())  # type: ignore[arg-type]
            parts.append(
                f"the replay's workflow task p50 ranged from {calm:.0f} ms to "
                f"{peak['p50_ms']:.0f} ms (hour {peak['hour']:%H:00})"
            )
    return ("; platform latency " + ", ".join(parts)) if parts else ""


def _emulation_note(catalog: Catalog | None, workflow: str, step_id: str) -> str:
    from protocol_lab.domain.catalog import ActivityKind, ActivityStep

    if catalog is None or workflow not in catalog:
        return ""
    try:
        step = catalog[workflow].step(step_id)
    except KeyError:
        return ""
    if not isinstance(step, ActivityStep) or step.activity is ActivityKind.INTEGRATION:
        return ""
    return (
        f"; a {step.activity.value} step: the service does its real work at once, so on both "
        f"sides its time is the platform's (the simulation draws its activity overhead, not "
        f"the catalog's {step.duration.mean():.0f} s)"
    )


def _ks_rows(
    table: pl.DataFrame,
    *,
    target: str,
    label: Any,
    limit: float,
    note: Callable[[dict[str, Any]], str] = lambda _: "",
    paired: bool = False,
) -> list[dict[str, Any]]:
    """One row per compared distribution. ``paired``: the two samples share what the replay
    shares (arrivals, signal times), so two independent samples' noise overstates theirs and
    is given only in the explanation, not as ``by_chance``."""
    rows = []
    for row in table.iter_rows(named=True):
        ks = row["ks"]
        if ks is None:
            continue
        n_sim, n_real = int(row["n_sim"]), int(row["n_real"])
        met = ks <= limit
        why = ""
        chance, critical = _noise(limit, n_sim, n_real)
        if not met:
            why = (
                f"KS {ks:.3f} is {ks - limit:.3f} over {limit:.2f}; with {n_sim} simulated and "
                f"{n_real} real cases, sampling alone exceeds {limit:.2f} with probability "
                f"{'(were they independent; the replay pairs them, so less) ' if paired else ''}"
                f"{chance:.0%} (95% critical value {critical:.2f}, p = {row['ks_pvalue']:.2g}); "
                f"p50 {row['p50_sim_s']:.1f} s simulated vs {row['p50_real_s']:.1f} s real, "
                f"p95 {row['p95_sim_s']:.1f} s vs {row['p95_real_s']:.1f} s" + note(row)
            )
        rows.append(
            {
                "target": target,
                "scope": label(row),
                "n": min(n_sim, n_real),
                "measured": float(ks),
                "limit": limit,
                "met": met,
                "excess": max(0.0, ks - limit),
                "why": why,
                "by_chance": None if paired else chance,
            }
        )
    return rows


def _noise_note(row: dict[str, Any]) -> str:
    """How precisely the observed p50/p95 is known, and whether the error is within that."""
    spread = row.get("observed_spread")
    if spread is None:
        return ""
    if math.isinf(spread):
        return (
            f"; {row.get('n_observed') or 0} values do not pin the observed {row['stat']} down "
            f"(its 90% interval reaches past the sample's extreme values): the error is within "
            f"that sampling noise"
        )
    verdict = (
        "the error is within that sampling noise"
        if row["relative_error"] <= spread
        else "the error is beyond that sampling noise"
    )
    return (
        f"; the observed {row['stat']} itself is known only to +/-{spread:.0%} from that "
        f"sample (90% interval): {verdict}"
    )


def _calibration_rows(calibration: Calibration | None, *, target: str) -> list[dict[str, Any]]:
    from protocol_lab.sim.calibration import TARGET_QUEUE_WAIT_S, TARGET_RELATIVE_ERROR

    if calibration is None or calibration.error is None:
        return []
    rows = []
    for row in calibration.error.iter_rows(named=True):
        if row["simulated_s"] is None:
            met, why, excess = False, "the calibrated scenario produced none of these", None
        else:
            met = bool(row["within_target"])
            excess = max(0.0, row["relative_error"] - TARGET_RELATIVE_ERROR)
            why = ""
            if not met:
                why = (
                    f"{row['relative_error']:.0%} is {excess:.0%} over 10%"
                    + (
                        f" (and {row['absolute_error_s']:.1f} s over {TARGET_QUEUE_WAIT_S:.0f} s)"
                        if row["quantity"] == "queue_wait"
                        else ""
                    )
                    + f": observed {row['observed_s']:.1f} s from {row.get('n_observed') or 0} "
                    f"values, calibrated simulation {row['simulated_s']:.1f} s" + _noise_note(row)
                )
        rows.append(
            {
                "target": target,
                "scope": f"{row['task_queue']} {row['quantity']} {row['stat']}",
                "n": row.get("n_observed"),
                "measured": row["relative_error"],
                "limit": TARGET_RELATIVE_ERROR,
                "met": met,
                "excess": excess,
                "why": why,
                "by_chance": None,
            }
        )
    return rows


def loop_targets(loop: LoopResult) -> pl.DataFrame:
    """The targets of one turn of the loop (see the module docstring), one row each."""
    comparison = loop.comparison
    by = comparison.by
    cycles = comparison.cycle_times.filter(
        (pl.col("n_sim") >= MIN_CASES) & (pl.col("n_real") >= MIN_CASES)
    )
    steps = comparison.steps.filter(pl.col("kind") == "activity")
    drift = _drift_note(platform_drift(loop), latency_by_hour(loop))
    try:
        catalog: Catalog | None = loop.simulation.scenario.load_catalog()
    except Exception:  # the table is still worth having without the catalog's notes
        catalog = None
    rows = _ks_rows(
        cycles,
        target="cycle-time KS <= 0.10 (>= 30 cases)",
        label=lambda r: r[by],
        limit=CYCLE_KS,
        note=lambda _: drift,
        paired=True,
    )
    rows += _ks_rows(
        steps,
        target="activity-step KS <= 0.20",
        label=lambda r: f"{r['workflow_name']} / {r['step']}",
        limit=STEP_KS,
        note=lambda r: _emulation_note(catalog, r["workflow_name"], r["step"]) + drift,
    )
    rows += _calibration_rows(
        loop.calibration, target="calibration from the service's log within 10% (or 1 s)"
    )
    rows += _calibration_rows(
        loop.known_calibration, target="calibration from the simulator's log within 10% (or 1 s)"
    )
    return pl.DataFrame(rows, schema=TARGET_SCHEMA)


def exact_model_meets_all(targets: pl.DataFrame) -> float | None:
    """The probability that a simulation drawing from exactly the service's distributions
    would meet every one of these KS rows at their sample sizes (rows taken as independent;
    ``by_chance`` is each row's chance of missing by sampling alone), None without KS rows."""
    chances = targets["by_chance"].drop_nulls()
    if chances.is_empty():
        return None
    return float((1.0 - chances).product())


def target_lines(targets: pl.DataFrame) -> list[str]:
    """One line per target: how many of its rows are met, the worst row, and for a KS target
    how likely an exact simulation would be to meet all its rows (:func:`exact_model_meets_all`)."""
    lines = []
    for (target,), part in targets.group_by(["target"], maintain_order=True):
        met = int(part["met"].sum())
        worst = part.sort("excess", descending=True, nulls_last=True).row(0, named=True)
        line = f"{target}: {met} of {part.height} met"
        if met < part.height:
            line += f"; worst {worst['scope']} at {worst['measured']:.3f}"
        exact = exact_model_meets_all(part)
        if exact is not None:
            chance = f"{exact * 100:.2g}%" if exact >= 1e-4 else "below 0.01%"
            line += f" (an exact simulation would meet all {part.height} with probability {chance})"
        lines.append(line)
    return lines
