"""What-if for rules: what a rule added, changed or removed would do, before it is enabled.

:func:`compare_rules` simulates the scenario as it is (baseline) and with the rule change
(variant) under the same seeds (common random numbers), and compares, per queue, the load
(workflows or jobs, utilisation), the waits, the cycle times and the SLA attainment, and per rule
the executions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from matplotlib.figure import Figure

from protocol_lab.domain.rules import Rule
from protocol_lab.sim.plots import plot_rule_comparison
from protocol_lab.sim.replications import MAX_PROCESSES, ReplicationRunner, run_replications
from protocol_lab.sim.scenario import Scenario

__all__ = ["RuleComparison", "compare_rules", "compare_scenarios"]

_METRICS = {
    "attempts": 1.0,
    "workflows": 1.0,
    "utilisation": 1.0,
    "mean_wait_s": 1.0,
    "wait_p95_s": 1.0,
    "cycle_p95_s": 1 / 3600,
    "sla_attainment": 1.0,
}
_NAMES = {"cycle_p95_s": "p95_cycle_h"}


@dataclass(frozen=True)
class RuleComparison:
    """Baseline against variant: per queue, per rule, and a picture."""

    queues: pl.DataFrame
    rules: pl.DataFrame
    figure: Figure
    baseline: Scenario
    variant: Scenario


def _mean_rows(summaries: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    names = [row["queue"] for row in summaries[0]["queues"]]
    for name in names:
        rows = [r for s in summaries for r in s["queues"] if r["queue"] == name]
        stats: dict[str, float | None] = {"kind_task": float(rows[0]["kind"] == "task")}
        for key, scale in _METRICS.items():
            values = [float(r[key]) for r in rows if r.get(key) is not None]
            stats[_NAMES.get(key, key)] = sum(values) / len(values) * scale if values else None
        out[name] = stats
    return out


def compare_scenarios(
    baseline: Scenario,
    variant: Scenario,
    *,
    replications: int = 3,
    processes: int = MAX_PROCESSES,
    progress: bool = True,
    runner: ReplicationRunner | None = None,
) -> RuleComparison:
    """Simulate two scenarios with the same seeds and compare them per queue and per rule.

    A ``runner`` (e.g. a ``TemporalRunner``) runs the replications instead of local processes.
    """
    base_runs, var_runs = run_replications(
        [baseline, variant.with_seed(baseline.seed)],
        replications=replications,
        processes=processes,
        progress=progress,
        description="what-if",
        runner=runner,
    )
    base, var = _mean_rows(base_runs), _mean_rows(var_runs)
    rows = []
    for name in base:
        row: dict[str, Any] = {"queue": name, "kind": "task" if base[name]["kind_task"] else "job"}
        for key in (_NAMES.get(k, k) for k in _METRICS):
            b, v = base[name].get(key), var[name].get(key)
            row[f"baseline_{key}"] = b
            row[f"variant_{key}"] = v
            row[f"delta_{key}"] = None if b is None or v is None else v - b
        rows.append(row)
    queues = pl.DataFrame(rows, infer_schema_length=None)
    names = list(dict.fromkeys([*base_runs[0]["rules"], *var_runs[0]["rules"]]))

    def mean_exec(runs: Sequence[dict[str, Any]], rule: str) -> float | None:
        if rule not in runs[0]["rules"]:
            return None
        return float(sum(r["rules"][rule] for r in runs)) / len(runs)

    rules = pl.DataFrame(
        {
            "rule": names,
            "baseline_executions": [mean_exec(base_runs, n) for n in names],
            "variant_executions": [mean_exec(var_runs, n) for n in names],
        },
        schema={
            "rule": pl.String,
            "baseline_executions": pl.Float64,
            "variant_executions": pl.Float64,
        },
    )
    busy = queues.filter((pl.col("baseline_attempts") > 0) | (pl.col("variant_attempts") > 0))
    figure = plot_rule_comparison(busy, metrics=["attempts", "utilisation", "wait_p95_s"])
    return RuleComparison(
        queues=queues, rules=rules, figure=figure, baseline=baseline, variant=variant
    )


def compare_rules(
    scenario: Scenario,
    *,
    add: Iterable[Rule] = (),
    remove: Iterable[str] = (),
    replace: Mapping[str, Rule] | None = None,
    replications: int = 3,
    processes: int = MAX_PROCESSES,
    progress: bool = True,
    runner: ReplicationRunner | None = None,
) -> RuleComparison:
    """Compare the scenario with a rule change (added, removed by name, replaced by name).

    A ``runner`` (e.g. a ``TemporalRunner``) runs the replications instead of local processes.
    """
    variant = scenario.with_rules(add=add, remove=remove, replace=replace)
    return compare_scenarios(
        scenario,
        variant,
        replications=replications,
        processes=processes,
        progress=progress,
        runner=runner,
    )
