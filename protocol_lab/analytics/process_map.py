"""A process map: the directly-follows graph of states (or steps) with frequencies and times,
and its matplotlib picture.

The map is built from the step intervals (:func:`~protocol_lab.analytics.states.step_intervals`)
with consecutive intervals of the same step in a case merged (a reassignment inside a state is
not a move of the process), a ``start`` node before each case's first step and an ``end`` node
after the last step of each closed case. The edges are
:func:`~protocol_lab.analytics.steps.directly_follows` over those visits: an edge's time is from
entering its source to entering its target, the time spent in the source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import polars as pl

from protocol_lab.analytics._frames import ENGINE, seconds
from protocol_lab.analytics.states import step_intervals
from protocol_lab.analytics.steps import directly_follows

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["END", "START", "ProcessMap", "draw_process_map", "process_map"]

START: Final = "▶ start"
"""The node every case leaves from."""
END: Final = "■ end"
"""The node every closed case arrives at."""

_TERMINAL = ("workflow_completed", "workflow_failed", "workflow_cancelled")


@dataclass(frozen=True)
class ProcessMap:
    """``nodes``: ``node``, ``visits``, ``cases``, ``mean_h`` / ``median_h`` (time in it per
    ended visit, from its first interval's start to its last one's end; zero for an instant);
    ``edges``: ``source``, ``target``, ``n``, ``mean_s``,
    ``median_s``, ``min_s``, ``max_s`` (the directly-follows graph), most frequent first."""

    nodes: pl.DataFrame
    edges: pl.DataFrame

    def plot(self, *, max_edges: int = 40, ax: Axes | None = None) -> Figure:
        """The picture (see :func:`draw_process_map`)."""
        return draw_process_map(self, max_edges=max_edges, ax=ax)


def process_map(events: pl.DataFrame | pl.LazyFrame) -> ProcessMap:
    """The process map of the timelines' ``events`` (see the module docstring)."""
    lf = events.lazy()
    case = pl.col("workflow_id")
    new_visit = pl.col("step").ne_missing(pl.col("step").shift(1)) | case.ne_missing(case.shift(1))
    visits = (
        step_intervals(lf)
        .select("workflow_id", "step", "start", "end")
        .with_columns(new_visit.cum_sum().alias("__visit"))
        .group_by("__visit", maintain_order=True)
        .agg(
            pl.col("workflow_id").first(),
            pl.col("step").first(),
            pl.col("start").first(),
            pl.col("end").last(),
        )
        .drop("__visit")
    )
    bounds = lf.group_by("workflow_id").agg(
        pl.col("timestamp").min().alias("__first"),
        pl.col("timestamp")
        .filter(pl.col("event").cast(pl.String).is_in(_TERMINAL))
        .max()
        .alias("__closed"),
    )
    starts = bounds.select(
        "workflow_id", pl.lit(START).alias("step"), pl.col("__first").alias("timestamp")
    )
    ends = bounds.filter(pl.col("__closed").is_not_null()).select(
        "workflow_id", pl.lit(END).alias("step"), pl.col("__closed").alias("timestamp")
    )
    path = pl.concat(
        [starts, visits.select("workflow_id", "step", pl.col("start").alias("timestamp")), ends]
    ).with_columns(
        # the start sorts first and the end last among equal times
        pl.when(pl.col("step") == START)
        .then(0)
        .when(pl.col("step") == END)
        .then(2)
        .otherwise(1)
        .alias("__rank")
    )
    # stable: visits at the same minute keep the log's order
    ordered = path.sort("workflow_id", "timestamp", "__rank", maintain_order=True).drop("__rank")
    edges = directly_follows(ordered, activity="step")
    hours = seconds(pl.col("end") - pl.col("start")) / 3600
    nodes = visits.group_by(pl.col("step").alias("node")).agg(
        pl.len().cast(pl.UInt32).alias("visits"),
        pl.col("workflow_id").n_unique().cast(pl.UInt32).alias("cases"),
        hours.mean().alias("mean_h"),
        hours.median().alias("median_h"),
    )
    n_cases = bounds.select(
        pl.len().cast(pl.UInt32).alias("cases"),
        pl.col("__closed").is_not_null().sum().cast(pl.UInt32).alias("closed"),
    )
    edge_frame, node_frame, counts = pl.collect_all([edges, nodes, n_cases], engine=ENGINE)
    total, closed = counts.row(0)
    ends_rows = pl.DataFrame(
        {
            "node": [START, END],
            "visits": [total, closed],
            "cases": [total, closed],
            "mean_h": [None, None],
            "median_h": [None, None],
        },
        schema=node_frame.schema,
    )
    node_frame = pl.concat([node_frame.sort("visits", "node", descending=[True, False]), ends_rows])
    return ProcessMap(nodes=node_frame, edges=edge_frame)


def _hours(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    if value < 1:
        return f"{value * 60:.0f} min"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} d"


def _layers(nodes: list[str], edges: pl.DataFrame) -> dict[str, float]:
    """A rank per node: its mean position along the most frequent path into it, found by a
    longest-path pass over the graph without its back edges (edges taken from the most
    frequent, skipping one that would close a cycle). O(E N²) for N nodes, E edges."""
    rank = dict.fromkeys(nodes, 0.0)
    rank[START] = 0.0
    kept: list[tuple[str, str]] = []
    reach: dict[str, set[str]] = {n: {n} for n in nodes}
    for source, target in edges.select("source", "target").iter_rows():
        if source == target or source not in reach or target not in reach:
            continue
        if source in reach[target]:  # target already reaches source: a back edge
            continue
        kept.append((source, target))
        for n in nodes:
            if source in reach[n]:
                reach[n] |= reach[target]
    for _ in nodes:
        changed = False
        for source, target in kept:
            if rank[target] < rank[source] + 1:
                rank[target] = rank[source] + 1
                changed = True
        if not changed:
            break
    rank[END] = max(rank.values()) + 1
    return rank


def draw_process_map(
    pm: ProcessMap, *, max_edges: int = 40, ax: Axes | None = None, title: str = "Process map"
) -> Figure:
    """Draw a process map: a box per node (visits, median time in it) in layers from start to
    end, an arrow per edge (the ``max_edges`` most frequent) as wide as its share of the
    cases, labelled with its count and median time; back edges (rework) curve the other way.
    """
    edges = pm.edges.head(max_edges)
    names = [str(n) for n in pm.nodes["node"].to_list()]
    shown = set(edges["source"].to_list()) | set(edges["target"].to_list()) | {START, END}
    names = [n for n in names if n in shown]
    rank = _layers(names, edges)
    layers: dict[float, list[str]] = {}
    for n in names:
        layers.setdefault(rank[n], []).append(n)
    position = _positions(layers)
    width = max(len(m) for m in layers.values()) if layers else 1
    fig, axes = _figure_and_axes(ax, width=width, height=len(layers))
    _draw_edges(axes, edges, position=position, rank=rank)
    _draw_nodes(axes, pm.nodes, position=position)
    xs = [p[0] for p in position.values()] or [0.0]
    ys = [p[1] for p in position.values()] or [0.0]
    axes.set_xlim(min(xs) - 2.0, max(xs) + 2.0)
    axes.set_ylim(min(ys) - 1.0, max(ys) + 1.0)
    axes.set_axis_off()
    axes.set_title(f"{title}: visits · median time; arrows: count · median time")
    return fig


def _positions(layers: dict[float, list[str]]) -> dict[str, tuple[float, float]]:
    """Each node's place: layers top to bottom by rank, a layer's members centred across."""
    position: dict[str, tuple[float, float]] = {}
    for layer_rank, members in sorted(layers.items()):
        for i, n in enumerate(members):
            position[n] = ((i - (len(members) - 1) / 2) * 3.0, -layer_rank * 1.6)
    return position


def _figure_and_axes(ax: Axes | None, *, width: int, height: int) -> tuple[Figure, Axes]:
    """The given axes and their figure, or a new figure sized to ``width`` x ``height`` nodes."""
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(max(6.0, 2.6 * width), 1.3 * (height + 1)), layout="constrained")
        return fig, fig.add_subplot()
    parent = ax.get_figure()
    assert isinstance(parent, Figure)
    return parent, ax


def _draw_edges(
    axes: Axes,
    edges: pl.DataFrame,
    *,
    position: dict[str, tuple[float, float]],
    rank: dict[str, float],
) -> None:
    """An arrow per edge, as wide as its count, labelled with its count and median time."""
    import numpy as np  # with matplotlib, here: a process map's frames do not need it
    from matplotlib.patches import FancyArrowPatch

    top = max(float(np.max(edges["n"].to_numpy())), 1.0) if edges.height else 1.0
    for source, target, n, median_s in edges.select(
        "source", "target", "n", "median_s"
    ).iter_rows():
        if source not in position or target not in position:
            continue
        (x0, y0), (x1, y1) = position[source], position[target]
        back = rank[target] <= rank[source]
        bend = 0.35 if back else 0.08
        style = "arc3,rad=0.5" if source == target else f"arc3,rad={bend}"
        arrow = FancyArrowPatch(
            (x0, y0),
            (x1, y1) if source != target else (x0 + 0.01, y0 - 0.01),
            connectionstyle=style,
            arrowstyle="-|>",
            mutation_scale=12,
            linewidth=0.8 + 5.0 * n / top,
            color="#e45756" if back else "#4c78a8",
            alpha=0.75,
            shrinkA=18,
            shrinkB=18,
        )
        axes.add_patch(arrow)
        label = f"{n}" + (f" · {_hours(median_s / 3600)}" if median_s is not None else "")
        # the middle of matplotlib's arc3 curve: the chord's middle moved half the bend
        # along the chord's normal
        middle = ((x0 + x1) / 2 + bend * (y1 - y0) / 2, (y0 + y1) / 2 - bend * (x1 - x0) / 2)
        axes.annotate(
            label,
            middle,
            ha="center",
            va="center",
            fontsize="x-small",
            color="#333333",
            bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none"},
        )


def _draw_nodes(
    axes: Axes, nodes: pl.DataFrame, *, position: dict[str, tuple[float, float]]
) -> None:
    """A box per node with its visits and median time in it."""
    visits = dict(zip(nodes["node"].to_list(), nodes["visits"].to_list(), strict=True))
    medians = dict(zip(nodes["node"].to_list(), nodes["median_h"].to_list(), strict=True))
    for n, (x, y) in position.items():
        text = f"{n}\n{visits.get(n, 0)}"
        dwell = _hours(medians.get(n))
        if dwell:
            text += f" · {dwell}"
        terminal = n in (START, END)
        axes.annotate(
            text,
            (x, y),
            ha="center",
            va="center",
            fontsize="small",
            bbox={
                "boxstyle": "round,pad=0.4",
                "facecolor": "#eeeeee" if terminal else "#dbe8f5",
                "edgecolor": "#555555",
            },
        )
