"""Pictures of timelines (matplotlib). Every function returns its ``Figure``; none calls show().

Figures are built with ``matplotlib.figure.Figure`` (no pyplot state), so they can be made in
scripts, tests and servers alike; in Jupyter the returned figure displays itself. Pass ``ax``
to draw into an existing axes (the function then returns that axes' figure).

Each function takes a :class:`~protocol_lab.analytics.Timelines` or the frame it needs
(the per-workflow frame, or the events frame for the step pictures).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from protocol_lab.analytics.flow import arrivals_by_hour, cumulative_flow, throughput
from protocol_lab.analytics.steps import step_durations

if TYPE_CHECKING:
    from protocol_lab.domain import SlaConfig

if TYPE_CHECKING:
    from protocol_lab.analytics.timelines import Timelines

__all__ = [
    "arrivals_heatmap",
    "cumulative_flow_diagram",
    "cycle_time_ecdf",
    "handover_heatmap",
    "step_duration_boxplots",
    "swimlanes",
    "throughput_run_chart",
]

_COLOURS = {
    "completed": "#4c78a8",
    "failed": "#e45756",
    "cancelled": "#b279a2",
    "wip": "#f58518",
    "arrivals": "#54a24b",
    "activity": "#4c78a8",
    "signal": "#72b7b2",
    "compensation": "#b279a2",
}
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _axes(ax: Axes | None, *, size: tuple[float, float] = (9.0, 4.5)) -> tuple[Figure, Axes]:
    if ax is not None:
        fig = ax.get_figure()
        assert isinstance(fig, Figure)
        return fig, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _workflows(data: Timelines | pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    if isinstance(data, pl.DataFrame | pl.LazyFrame):
        return data.lazy()
    return data.workflows


def _events(data: Timelines | pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    if isinstance(data, pl.DataFrame | pl.LazyFrame):
        return data.lazy()
    return data.events


def cumulative_flow_diagram(
    data: Timelines | pl.DataFrame | pl.LazyFrame,
    *,
    every: str = "1d",
    ax: Axes | None = None,
    title: str = "Cumulative flow",
) -> Figure:
    """Stacked bands of cumulative completed, failed and cancelled workflows, with WIP on top.

    The top edge is cumulative arrivals; the height of the WIP band at a date is the work in
    progress then; the horizontal distance between the top edge and the departures is the
    approximate cycle time.
    """
    flow = cumulative_flow(_workflows(data), every=every).collect()
    fig, axes = _axes(ax)
    x = flow["period"].to_numpy()
    bands = [flow[c].to_numpy() for c in ("completed", "failed", "cancelled", "wip")]
    axes.stackplot(
        x,
        *bands,
        labels=["completed", "failed", "cancelled", "in progress"],
        colors=[_COLOURS[c] for c in ("completed", "failed", "cancelled", "wip")],
        alpha=0.9,
        step="post",
    )
    axes.set_ylabel("workflows (cumulative)")
    axes.set_title(title)
    axes.legend(loc="upper left", frameon=False)
    axes.grid(alpha=0.3)
    fig.autofmt_xdate()
    return fig


def cycle_time_ecdf(
    data: Timelines | pl.DataFrame | pl.LazyFrame,
    *,
    by: str = "task_queue",
    config: SlaConfig | None = None,
    ax: Axes | None = None,
    log: bool = True,
) -> Figure:
    """Empirical CDF of cycle time (hours) per group, with each group's SLA target as a line.

    Targets are read from ``config`` (default ``data/sla.yaml``) when they are scoped on the
    grouping column (``task_queue``, ``workflow_name`` or ``priority``).
    """
    from protocol_lab.domain import load_sla_config

    cfg = config if config is not None else load_sla_config()
    frame = (
        _workflows(data)
        .filter(pl.col("cycle_time_s").is_not_null())
        .select(pl.col(by).cast(pl.String).alias("group"), pl.col("cycle_time_s") / 3600)
        .collect()
    )
    targets = {t.scope[1]: t.target_hours for t in cfg.targets if t.scope[0] == by}
    fig, axes = _axes(ax)
    palette = [f"C{i}" for i in range(10)]
    groups = sorted(frame.group_by("group"), key=lambda kv: str(kv[0][0]))
    for index, (group, part) in enumerate(groups):
        name = str(group[0])
        values = np.sort(part["cycle_time_s"].to_numpy())
        values = values[values > 0] if log else values
        if values.size == 0:
            continue
        colour = palette[index % len(palette)]
        y = np.arange(1, values.size + 1) / values.size
        axes.step(values, y, where="post", label=name, color=colour)
        if name in targets:
            axes.axvline(targets[name], color=colour, linestyle="--", linewidth=1)
    if log:
        axes.set_xscale("log")
    axes.set_xlabel("cycle time (hours); dashed: SLA target")
    axes.set_ylabel("share of workflows")
    axes.set_title(f"Cycle time by {by}")
    axes.legend(frameon=False, fontsize="small")
    axes.grid(alpha=0.3)
    return fig


def throughput_run_chart(
    data: Timelines | pl.DataFrame | pl.LazyFrame,
    *,
    every: str = "1d",
    ax: Axes | None = None,
) -> Figure:
    """Arrivals and completions per period as a run chart, with their medians."""
    flow = throughput(_workflows(data), every=every).collect()
    fig, axes = _axes(ax)
    x = flow["period"].to_numpy()
    for column, colour in (("arrivals", _COLOURS["arrivals"]), ("completed", "#4c78a8")):
        values = flow[column].to_numpy()
        axes.plot(x, values, marker=".", color=colour, label=column)
        axes.axhline(
            float(np.median(values)), color=colour, linestyle=":", label=f"median {column}"
        )
    axes.set_ylabel(f"workflows per {every}")
    axes.set_title("Throughput")
    axes.legend(frameon=False, fontsize="small")
    axes.grid(alpha=0.3)
    fig.autofmt_xdate()
    return fig


def arrivals_heatmap(
    data: Timelines | pl.DataFrame | pl.LazyFrame,
    *,
    timezone: str = "UTC",
    ax: Axes | None = None,
) -> Figure:
    """Arrivals by hour of day (x) and weekday (y), in ``timezone``."""
    counts = arrivals_by_hour(_workflows(data), timezone=timezone).collect()
    grid = np.zeros((7, 24))
    grid[counts["weekday"].to_numpy(), counts["hour"].to_numpy()] = counts["arrivals"].to_numpy()
    fig, axes = _axes(ax, size=(10.0, 3.8))
    image = axes.imshow(grid, aspect="auto", cmap="viridis")
    axes.set_yticks(range(7), labels=list(_WEEKDAYS))
    axes.set_xticks(range(0, 24, 2))
    axes.set_xlabel(f"hour of day ({timezone})")
    axes.set_title("Arrivals")
    fig.colorbar(image, ax=axes, label="workflows")
    return fig


def step_duration_boxplots(
    data: Timelines | pl.DataFrame | pl.LazyFrame,
    *,
    workflow_name: str | None = None,
    measure: str = "total_s",
    ax: Axes | None = None,
) -> Figure:
    """Box plots of step durations (hours, log scale), one box per step.

    ``data`` is timelines or an events frame (step durations are derived), or already the
    output of :func:`~protocol_lab.analytics.steps.step_durations`. ``measure`` is one of
    ``total_s``, ``wait_s``, ``human_wait_s``, ``active_s``.
    """
    lf = _events(data)
    if "kind" not in lf.collect_schema().names():
        lf = step_durations(lf)
    if workflow_name is not None:
        lf = lf.filter(pl.col("workflow_name") == workflow_name)
    frame = (
        lf.filter(pl.col("kind") != "compensation")
        .select(
            (pl.col("workflow_name") + " · " + pl.col("step")).alias("label"),
            (pl.col(measure) / 3600).alias("hours"),
            pl.col("end"),
        )
        .collect()
    )
    order = frame.group_by("label").agg(pl.col("hours").median()).sort("hours")["label"]
    series = [
        frame.filter(pl.col("label") == label)["hours"].to_numpy().clip(min=1e-4) for label in order
    ]
    fig, axes = _axes(ax, size=(9.0, max(3.0, 0.28 * len(series) + 1.0)))
    if series:
        axes.boxplot(series, orientation="horizontal", showfliers=False)
        axes.set_yticks(range(1, len(series) + 1), labels=list(order), fontsize="small")
    axes.set_xscale("log")
    axes.set_xlabel(f"{measure.removesuffix('_s')} (hours)")
    axes.set_title("Step durations" + (f": {workflow_name}" if workflow_name else ""))
    axes.grid(alpha=0.3, axis="x")
    return fig


def handover_heatmap(
    data: Timelines | pl.DataFrame | pl.LazyFrame,
    *,
    level: Literal["task_queue", "actor"] = "task_queue",
    ax: Axes | None = None,
) -> Figure:
    """The handover matrix as a heatmap: who handed cases over (rows) to whom (columns), with
    the counts written in. ``data`` is timelines or an events frame (see
    :func:`~protocol_lab.analytics.itsm.handovers`)."""
    from protocol_lab.analytics.itsm import handover_matrix, handovers

    matrix = handover_matrix(handovers(_events(data), level=level).collect())
    sources = matrix["source"].to_list()
    targets = [c for c in matrix.columns if c != "source"]
    grid = matrix.select(targets).to_numpy().astype(float) if targets else np.zeros((0, 0))
    fig, axes = _axes(ax, size=(2.0 + 0.9 * len(targets), 1.5 + 0.5 * len(sources)))
    image = axes.imshow(grid, cmap="Blues", aspect="auto")
    axes.set_xticks(range(len(targets)), labels=targets, rotation=30, ha="right")
    axes.set_yticks(range(len(sources)), labels=sources)
    top = grid.max() if grid.size else 0.0
    for (i, j), value in np.ndenumerate(grid):
        if value:
            colour = "white" if value > top / 2 else "black"
            axes.text(j, i, f"{value:.0f}", ha="center", va="center", color=colour)
    axes.set_xlabel("handed over to")
    axes.set_ylabel("from")
    axes.set_title(f"Handovers between {'groups' if level == 'task_queue' else 'resources'}")
    fig.colorbar(image, ax=axes, label="handovers")
    return fig


def swimlanes(
    data: Timelines | pl.DataFrame | pl.LazyFrame,
    workflow_ids: Sequence[str],
    *,
    relative: bool = True,
    ax: Axes | None = None,
) -> Figure:
    """A lane per workflow: waiting (grey), activity, human-wait and compensation bars, and
    start / end markers.

    ``data`` is timelines or an events frame. With ``relative`` (default) every lane starts at
    its workflow's start, so lanes compare; otherwise all share the earliest start as origin.
    """
    ids = list(workflow_ids)
    steps, marks = _lane_frames(data, ids, relative=relative)
    fig, axes = _axes(ax, size=(10.0, 1.2 + 0.6 * len(ids)))
    lane = {wid: i for i, wid in enumerate(ids)}
    legend = _Legend()
    _draw_step_bars(axes, steps, lane=lane, legend=legend)
    _draw_lane_marks(axes, marks, lane=lane, legend=legend)
    axes.set_yticks(range(len(ids)), labels=ids, fontsize="small")
    axes.invert_yaxis()
    axes.set_xlabel("hours since start" if relative else "hours since the first start")
    axes.set_title("Workflow timelines")
    axes.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes.grid(alpha=0.3, axis="x")
    return fig


_LANE_MARKERS: dict[str, tuple[str, str]] = {
    "workflow_started": ("|", "black"),
    "workflow_completed": ("o", "#1b7f3b"),
    "workflow_failed": ("X", "#b00020"),
    "workflow_cancelled": ("s", "#7f3b7f"),
}


class _Legend:
    """Hands out each legend label once, so a lane's repeated bars share one entry."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, name: str) -> str | None:
        if name in self.seen:
            return None
        self.seen.add(name)
        return name


def _lane_frames(
    data: Timelines | pl.DataFrame | pl.LazyFrame, ids: list[str], *, relative: bool
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The lanes' steps (``x_end`` in hours) and start / end events (``x``) from the origin."""
    events = _events(data).filter(pl.col("workflow_id").is_in(ids))
    origin = (
        pl.col("timestamp").min().over("workflow_id") if relative else pl.col("timestamp").min()
    )
    events = events.with_columns(origin.alias("__origin"))
    hours_from = (pl.col("__t") - pl.col("__origin")).dt.total_microseconds() / 3.6e9
    origins = events.group_by("workflow_id").agg(pl.col("__origin").first())
    steps, marks = pl.collect_all(
        [
            step_durations(events.drop("__origin"))
            .join(origins, on="workflow_id")
            .with_columns(pl.col("end").alias("__t"))
            .with_columns(hours_from.alias("x_end")),
            events.filter(pl.col("event").cast(pl.String).is_in(list(_LANE_MARKERS)))
            .with_columns(pl.col("timestamp").alias("__t"))
            .with_columns(hours_from.alias("x")),
        ]
    )
    return steps, marks


def _draw_step_bars(
    axes: Axes, steps: pl.DataFrame, *, lane: dict[str, int], legend: _Legend
) -> None:
    """Per step, a grey bar for its wait, then a bar coloured by kind for its run."""
    for row in steps.iter_rows(named=True):
        y = lane[row["workflow_id"]]
        kind = str(row["kind"])
        run_h = (row["active_s"] + row["human_wait_s"]) / 3600
        wait_h = row["wait_s"] / 3600
        run_start = row["x_end"] - run_h
        if wait_h > 0:
            axes.barh(
                y,
                wait_h,
                left=run_start - wait_h,
                height=0.5,
                color="#cccccc",
                label=legend("waiting"),
            )
        name = "human wait" if kind == "signal" and row["human"] else kind
        colour = _COLOURS["wip"] if name == "human wait" else _COLOURS[kind]
        axes.barh(y, run_h, left=run_start, height=0.5, color=colour, label=legend(name))


def _draw_lane_marks(
    axes: Axes, marks: pl.DataFrame, *, lane: dict[str, int], legend: _Legend
) -> None:
    """A marker per workflow start and end, shaped by how it ended."""
    for row in marks.iter_rows(named=True):
        marker, colour = _LANE_MARKERS[str(row["event"])]
        axes.plot(
            row["x"],
            lane[row["workflow_id"]],
            marker=marker,
            color=colour,
            linestyle="none",
            markersize=8,
            label=legend(str(row["event"])),
        )
