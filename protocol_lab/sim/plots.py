"""Pictures of simulation outputs; every function returns its matplotlib Figure.

- :func:`plot_capacity`: the planner's statistic against workers per queue, with confidence
  intervals, the target line and the chosen worker count;
- :func:`plot_queue_metrics`: a queue metric (length, utilisation, waits) over time;
- :func:`plot_rule_comparison`: baseline against variant per queue, for rule what-ifs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

if TYPE_CHECKING:
    from protocol_lab.sim.planning import QueueTarget

__all__ = ["plot_capacity", "plot_queue_metrics", "plot_rule_comparison"]


def plot_capacity(
    sweep: pl.DataFrame, *, targets: Sequence[QueueTarget], chosen: Mapping[str, int]
) -> Figure:
    """Statistic (hours) against workers, one panel per targeted queue."""
    n = len(targets)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.6 * cols, 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, target in zip(axes, targets, strict=False):
        q = target.task_queue.value
        data = (
            sweep.filter(pl.col("task_queue") == q, pl.col("mean_h").is_not_null())
            .group_by("workers")
            .agg(pl.col("mean_h", "ci_low_h", "ci_high_h").last())
            .sort("workers")
        )
        x = data["workers"].to_list()
        y = data["mean_h"].to_list()
        low = [m - lo for m, lo in zip(y, data["ci_low_h"].to_list(), strict=True)]
        high = [hi - m for m, hi in zip(y, data["ci_high_h"].to_list(), strict=True)]
        ax.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, label=f"p{target.percentile:g}")
        ax.axhline(target.max_hours, color="tab:red", linestyle="--", label="target")
        if q in chosen:
            ax.axvline(chosen[q], color="tab:green", linestyle=":", label=f"chosen: {chosen[q]}")
        ax.set_title(q)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
        ax.set_xlabel("workers")
        ax.set_ylabel(f"p{target.percentile:g} {target.metric.replace('_', ' ')} (h)")
        ax.legend(fontsize="small")
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle("SLA statistic against workers (95% CI over replications)")
    return fig


def plot_queue_metrics(
    metrics: pl.DataFrame,
    *,
    metric: str = "utilisation",
    queues: Sequence[str] | None = None,
    ax: Any = None,
) -> Figure:
    """One line per queue of ``metric`` over time, from ``SimulationResult.queue_metrics``."""
    if ax is None:
        fig = Figure(figsize=(9, 3.6), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    names = queues if queues is not None else metrics["queue"].unique(maintain_order=True).to_list()
    for name in names:
        part = metrics.filter(pl.col("queue") == name)
        if part.is_empty() or part[metric].drop_nulls().is_empty():
            continue
        ax.plot(part["interval_start"].to_list(), part[metric].to_list(), label=name, lw=1)
    ax.set_ylabel(metric.replace("_", " "))
    ax.legend(fontsize="small", ncols=2)
    fig.autofmt_xdate()
    return fig


def plot_rule_comparison(frame: pl.DataFrame, *, metrics: Sequence[str] = ()) -> Figure:
    """Baseline against variant for each metric, per queue (bars)."""
    metrics = list(metrics) or ["utilisation", "p95_cycle_h"]
    fig = Figure(figsize=(5 * len(metrics), 3.6), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False).ravel()
    for ax, metric in zip(axes, metrics, strict=True):
        data = frame.filter(pl.col(f"baseline_{metric}").is_not_null())
        names = data["queue"].to_list()
        xs = list(range(len(names)))
        ax.bar([x - 0.2 for x in xs], data[f"baseline_{metric}"].to_list(), 0.4, label="baseline")
        ax.bar([x + 0.2 for x in xs], data[f"variant_{metric}"].to_list(), 0.4, label="variant")
        ax.set_xticks(xs, names, rotation=45, ha="right", fontsize="small")
        ax.set_title(metric.replace("_", " "))
        ax.legend(fontsize="small")
    return fig
