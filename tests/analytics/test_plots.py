"""Every picture returns a matplotlib Figure with something drawn, and can draw into an axes."""

from __future__ import annotations

import polars as pl
import pytest
from matplotlib.figure import Figure

from protocol_lab.analytics import Timelines, plots

from .factory import frame, laptop, row


@pytest.fixture(scope="module")
def tl() -> Timelines:
    rows = (
        laptop("ok1")
        + laptop("ok2", start=600)
        + laptop("f1", start=1500, outcome="failed")
        + laptop("c1", start=3000, outcome="cancelled")
        + [row("pr", "workflow_started", 100), row("pr", "workflow_completed", 130)]
    )
    return Timelines.from_frame(frame(rows)).cache()


def _drawn(fig: Figure) -> int:
    return sum(
        len(ax.lines) + len(ax.patches) + len(ax.collections) + len(ax.images) for ax in fig.axes
    )


def test_cumulative_flow_diagram(tl: Timelines) -> None:
    fig = plots.cumulative_flow_diagram(tl, every="1h")
    assert isinstance(fig, Figure)
    assert len(fig.axes[0].collections) == 4  # completed, failed, cancelled, in progress
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "completed",
        "failed",
        "cancelled",
        "in progress",
    ]


def test_cycle_time_ecdf_has_a_curve_and_sla_line_per_queue(tl: Timelines) -> None:
    fig = plots.cycle_time_ecdf(tl.workflows, by="task_queue")
    ax = fig.axes[0]
    assert len(ax.lines) == 4  # two queues: a step curve and a target line each
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {
        "itsm-accessories",
        "itsm-workflows",
    }


def test_throughput_heatmap_boxplots_and_swimlanes(tl: Timelines) -> None:
    figs = [
        plots.throughput_run_chart(tl, every="1h"),
        plots.arrivals_heatmap(tl.workflows.collect(), timezone="Europe/London"),
        plots.step_duration_boxplots(tl),
        plots.step_duration_boxplots(tl.steps(), workflow_name="Laptop Provisioning - New Hire"),
        plots.swimlanes(tl.events, ["ok1", "f1", "c1"]),
        plots.swimlanes(tl, ["ok1", "ok2"], relative=False),
    ]
    for fig in figs:
        assert isinstance(fig, Figure)
        assert _drawn(fig) > 0
    swim = figs[4].axes[0]
    assert [t.get_text() for t in swim.get_yticklabels()] == ["ok1", "f1", "c1"]


def test_draws_into_a_given_axes(tl: Timelines) -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.cumulative_flow_diagram(tl, ax=ax) is fig
    assert len(ax.collections) == 4


def test_plot_namespace_on_timelines(tl: Timelines) -> None:
    ids = tl.workflows.select("workflow_id").collect().to_series().to_list()
    for fig in (
        tl.plot.cumulative_flow(every="1h"),
        tl.plot.cycle_time_ecdf(),
        tl.plot.throughput(every="1h"),
        tl.plot.arrivals_heatmap(),
        tl.plot.step_durations(),
        tl.plot.swimlanes(ids[:2]),
    ):
        assert isinstance(fig, Figure)
    assert isinstance(tl.workflows, pl.LazyFrame)
