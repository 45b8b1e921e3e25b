"""Simulation against reality: counts, cycle times, step durations and SLA side by side.

:func:`compare` takes two :class:`~protocol_lab.analytics.Timelines` on the same clock (for a
replay, the simulation and the replayed service's timelines mapped onto simulated time by
:func:`protocol_lab.replay.load_replayed`) and measures how far apart they are, per group
(workflow name by default):

- ``counts``: workflows started, completed, failed and still open on each side;
- ``cycle_times``: n, p50 and p95 of each side, the two-sample Kolmogorov-Smirnov statistic
  (the largest gap between the two ECDFs, 0..1) with its p-value, and the Wasserstein
  (earth mover's) distance in seconds, from :mod:`scipy.stats`; ``relative_w`` is that distance
  over the simulated mean;
- ``steps``: the same per (workflow, step): activities by their active time, signal waits by
  the wait. A replay pairs the signals with the simulation (it sends them when the simulation
  did) but not the activities (the service draws their durations and adds its own latency), so
  ``more_simulations`` (further replications of the same scenario) can join the simulated
  side of the activity rows, which then estimates the model's distribution rather than one
  draw of it;
- ``sla``: SLA attainment per task queue on each side.

:class:`Comparison` draws the pictures (ECDFs overlaid, step medians against each other) and
renders an HTML section for reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from protocol_lab.analytics import Timelines

__all__ = ["Comparison", "compare", "distribution_distances"]

_DISTANCE_SCHEMA = {
    "n_sim": pl.Int64,
    "n_real": pl.Int64,
    "p50_sim_s": pl.Float64,
    "p50_real_s": pl.Float64,
    "p95_sim_s": pl.Float64,
    "p95_real_s": pl.Float64,
    "ks": pl.Float64,
    "ks_pvalue": pl.Float64,
    "wasserstein_s": pl.Float64,
    "relative_w": pl.Float64,
}


def distribution_distances(
    sim: Sequence[float] | np.ndarray, real: Sequence[float] | np.ndarray
) -> dict[str, Any]:
    """Sizes, p50/p95 of each sample, KS statistic and p-value, Wasserstein distance.

    Distances are None when either sample is empty. ``relative_w`` is the Wasserstein
    distance divided by the simulated mean (None when that mean is 0).
    """
    from scipy import stats

    a = np.asarray(sim, dtype=np.float64)
    b = np.asarray(real, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    out: dict[str, Any] = {
        "n_sim": len(a),
        "n_real": len(b),
        "p50_sim_s": float(np.quantile(a, 0.5)) if len(a) else None,
        "p50_real_s": float(np.quantile(b, 0.5)) if len(b) else None,
        "p95_sim_s": float(np.quantile(a, 0.95)) if len(a) else None,
        "p95_real_s": float(np.quantile(b, 0.95)) if len(b) else None,
        "ks": None,
        "ks_pvalue": None,
        "wasserstein_s": None,
        "relative_w": None,
    }
    if len(a) and len(b):
        ks = stats.ks_2samp(a, b)
        w = float(stats.wasserstein_distance(a, b))
        mean = float(a.mean())
        out |= {
            "ks": float(ks.statistic),
            "ks_pvalue": float(ks.pvalue),
            "wasserstein_s": w,
            "relative_w": w / mean if mean > 0 else None,
        }
    return out


def _groups(frame: pl.DataFrame, keys: Sequence[str]) -> list[tuple[Any, ...]]:
    return sorted({tuple(r) for r in frame.select(keys).iter_rows()}, key=str)


def _distance_table(
    sim: pl.DataFrame, real: pl.DataFrame, *, keys: Sequence[str], value: str
) -> pl.DataFrame:
    both = pl.concat([sim.select(keys), real.select(keys)], how="vertical_relaxed")
    rows = []
    for group in _groups(both, keys):
        match = pl.all_horizontal(
            [pl.col(k).cast(pl.String) == str(v) for k, v in zip(keys, group, strict=True)]
        )
        a = sim.filter(match)[value].drop_nulls().to_numpy()
        b = real.filter(match)[value].drop_nulls().to_numpy()
        rows.append(
            {
                **{k: str(v) for k, v in zip(keys, group, strict=True)},
                **distribution_distances(a, b),
            }
        )
    schema = {**{k: pl.String for k in keys}, **_DISTANCE_SCHEMA}
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)


def _step_frame(timelines: Timelines) -> pl.DataFrame:
    steps = timelines.steps().collect()
    return steps.with_columns(
        pl.when(pl.col("kind").cast(pl.String) == "activity")
        .then(pl.col("active_s"))
        .otherwise(pl.col("total_s"))
        .alias("duration_s"),
        pl.col("kind").cast(pl.String),
    ).filter(pl.col("outcome") != "failed")


@dataclass(frozen=True)
class Comparison:
    """The measured differences between a simulation and reality (see the module docstring)."""

    by: str
    counts: pl.DataFrame
    cycle_times: pl.DataFrame
    steps: pl.DataFrame
    sla: pl.DataFrame
    sim: Timelines
    real: Timelines

    @property
    def overall(self) -> dict[str, Any]:
        """Distances of all cycle times pooled (every group together)."""
        a = self.sim.workflows.select("cycle_time_s").collect()["cycle_time_s"].drop_nulls()
        b = self.real.workflows.select("cycle_time_s").collect()["cycle_time_s"].drop_nulls()
        return distribution_distances(a.to_numpy(), b.to_numpy())

    def summary_lines(self) -> list[str]:
        """One line per group: counts, p50s, KS and Wasserstein distance (for a terminal)."""
        lines = []
        for row in self.cycle_times.iter_rows(named=True):
            ks = "-" if row["ks"] is None else f"{row['ks']:.3f}"
            w = "-" if row["wasserstein_s"] is None else f"{row['wasserstein_s'] / 60:.1f} min"
            p50s = _minutes(row["p50_sim_s"]) + " / " + _minutes(row["p50_real_s"])
            lines.append(
                f"{row[self.by]:<32} n {row['n_sim']:>4} / {row['n_real']:<4} "
                f"p50 {p50s:<22} KS {ks:<6} W {w}"
            )
        total = self.overall
        if total["ks"] is not None:
            lines.append(
                f"{'all workflows':<32} n {total['n_sim']:>4} / {total['n_real']:<4} "
                f"KS {total['ks']:.3f}  W {total['wasserstein_s'] / 60:.1f} min"
            )
        return lines

    # ------------------------------------------------------------------ pictures
    def plot_cycle_times(self) -> Figure:
        """ECDF of cycle times (hours, log scale), simulation and reality per group."""
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter

        sim = self.sim.workflows.select(self.by, "cycle_time_s").collect()
        real = self.real.workflows.select(self.by, "cycle_time_s").collect()
        groups = [
            g[0]
            for g in _groups(
                pl.concat([sim, real], how="vertical_relaxed").select(self.by).drop_nulls(),
                [self.by],
            )
        ]
        n = max(1, len(groups))
        cols = min(3, n)
        rows = (n + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
        for ax in axes.flat[n:]:
            ax.set_visible(False)
        for ax, group in zip(axes.flat, groups, strict=False):
            for frame, label, style in ((sim, "simulation", "-"), (real, "service", "--")):
                values = np.sort(
                    frame.filter(pl.col(self.by).cast(pl.String) == str(group))["cycle_time_s"]
                    .drop_nulls()
                    .to_numpy()
                )
                if len(values):
                    y = np.arange(1, len(values) + 1) / len(values)
                    ax.step(np.maximum(values, 1.0) / 3600, y, style, where="post", label=label)
            row = self.cycle_times.filter(pl.col(self.by) == str(group))
            ks = row["ks"][0] if row.height and row["ks"][0] is not None else None
            ax.set_title(f"{group}" + (f"\nKS {ks:.2f}" if ks is not None else ""), fontsize=9)
            ax.set_xscale("log")
            # Narrow log ranges would label every minor tick and overprint them.
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("cycle time (h)")
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
        axes.flat[0].legend(fontsize=8)
        fig.suptitle("Cycle time ECDF: simulation against the service")
        fig.tight_layout()
        return fig

    def plot_steps(self) -> Figure:
        """Median step duration, simulation (x) against the service (y), log-log."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 6))
        steps = self.steps.drop_nulls(["p50_sim_s", "p50_real_s"])
        for kind, marker in (("activity", "o"), ("signal", "s")):
            part = steps.filter(pl.col("kind") == kind)
            ax.scatter(
                np.maximum(part["p50_sim_s"].to_numpy(), 0.1),
                np.maximum(part["p50_real_s"].to_numpy(), 0.1),
                marker=marker,
                label=kind,
                alpha=0.75,
            )
        if steps.height:
            both = np.concatenate([steps["p50_sim_s"].to_numpy(), steps["p50_real_s"].to_numpy()])
            lo = max(0.1, float(both.min()) / 2)
            hi = float(both.max()) * 2
            ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls=":")
            ax.set_xscale("log")
            ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, "no step on both sides", ha="center", transform=ax.transAxes)
        ax.set_xlabel("simulation: median step duration (s)")
        ax.set_ylabel("service: median step duration (s)")
        ax.set_title("Step durations: simulation against the service")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    # ------------------------------------------------------------------ HTML
    def to_html(self, folder: str | Path) -> str:
        """An HTML section (tables and the two pictures, written as PNGs into ``folder``)."""
        import matplotlib.pyplot as plt

        from protocol_lab.analytics.reprs import frame_html

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        for name, figure in (
            ("sim_vs_real_cycle_times.png", self.plot_cycle_times()),
            ("sim_vs_real_steps.png", self.plot_steps()),
        ):
            figure.savefig(out / name, dpi=90)
            plt.close(figure)
        total = self.overall
        lead = (
            "<p>Two-sample Kolmogorov-Smirnov statistic (largest gap between the two ECDFs, "
            "0 = identical) and Wasserstein distance (how far, in time, one distribution must "
            "move to become the other), from scipy.stats.</p>"
        )
        if total["ks"] is not None:
            lead += (
                f"<p><b>All workflows</b>: {total['n_sim']} simulated, {total['n_real']} on the "
                f"service; KS {total['ks']:.3f} (p = {total['ks_pvalue']:.3g}), Wasserstein "
                f"{total['wasserstein_s'] / 60:.1f} min; p50 {_minutes(total['p50_sim_s'])} "
                f"against {_minutes(total['p50_real_s'])}, p95 {_minutes(total['p95_sim_s'])} "
                f"against {_minutes(total['p95_real_s'])}.</p>"
            )
        rounded = [
            pl.col(pl.Float64).round(3),
        ]
        parts = [
            "<h2>Simulation against reality</h2>",
            lead,
            frame_html(self.counts, title=f"Workflows by {self.by}"),
            frame_html(
                self.cycle_times.with_columns(rounded), title=f"Cycle-time distances by {self.by}"
            ),
            "<img src='sim_vs_real_cycle_times.png' style='max-width:100%'>",
            frame_html(self.steps.with_columns(rounded), title="Step-duration distances"),
            "<img src='sim_vs_real_steps.png' style='max-width:100%'>",
            frame_html(self.sla.with_columns(rounded), title="SLA attainment by task queue"),
        ]
        return "<section>" + "".join(parts) + "</section>"


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 60:.1f} min" if seconds < 36000 else f"{seconds / 3600:.1f} h"


def _counts(sim: pl.DataFrame, real: pl.DataFrame, by: str) -> pl.DataFrame:
    def side(frame: pl.DataFrame, suffix: str) -> pl.DataFrame:
        outcome = pl.col("outcome").cast(pl.String)
        return frame.group_by(pl.col(by).cast(pl.String)).agg(
            pl.len().alias(f"started_{suffix}"),
            (outcome == "completed").sum().alias(f"completed_{suffix}"),
            outcome.is_in(["failed", "cancelled"]).sum().alias(f"failed_{suffix}"),
            (outcome == "open").sum().alias(f"open_{suffix}"),
        )

    return (
        side(sim, "sim")
        .join(side(real, "real"), on=by, how="full", coalesce=True)
        .fill_null(0)
        .sort(by)
    )


def _sla(sim: Timelines, real: Timelines, as_of: datetime | None) -> pl.DataFrame:
    keep = ["task_queue", "workflows", "met", "breached", "open"]

    def side(tl: Timelines, suffix: str) -> pl.DataFrame:
        frame = tl.sla(by="task_queue", as_of=as_of).frame
        cols = [c for c in keep if c in frame.columns]
        out = frame.select(cols).with_columns(pl.col("task_queue").cast(pl.String))
        closed = (pl.col("met") + pl.col("breached")).cast(pl.Float64)
        out = out.with_columns(
            pl.when(closed > 0).then(pl.col("met") / closed).otherwise(None).alias("attainment")
        )
        return out.rename({c: f"{c}_{suffix}" for c in out.columns if c != "task_queue"})

    return side(sim, "sim").join(side(real, "real"), on="task_queue", how="full", coalesce=True)


def compare(
    sim: Timelines,
    real: Timelines,
    *,
    by: str = "workflow_name",
    as_of: datetime | None = None,
    more_simulations: Sequence[Timelines] = (),
) -> Comparison:
    """Measure simulation against reality per ``by`` group (see the module docstring).

    ``as_of`` is the instant open workflows are judged at for the SLA (for a replay: the
    script's cut-off on the simulated clock). ``more_simulations`` are further replications
    whose activity steps join ``sim``'s in the step distances.
    """
    sim_wf = sim.workflows.collect()
    real_wf = real.workflows.collect()
    counts = _counts(sim_wf, real_wf, by)
    cycles = _distance_table(
        sim_wf.with_columns(pl.col(by).cast(pl.String)),
        real_wf.with_columns(pl.col(by).cast(pl.String)),
        keys=[by],
        value="cycle_time_s",
    )
    keys = ["workflow_name", "step", "kind"]
    sim_steps = pl.concat(
        [_step_frame(sim)]
        + [_step_frame(t).filter(pl.col("kind") == "activity") for t in more_simulations],
        how="diagonal_relaxed",
    )
    steps = _distance_table(sim_steps, _step_frame(real), keys=keys, value="duration_s")
    return Comparison(
        by=by,
        counts=counts,
        cycle_times=cycles,
        steps=steps,
        sla=_sla(sim, real, as_of),
        sim=sim,
        real=real,
    )
