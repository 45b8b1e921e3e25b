"""Throughput, cumulative flow and WIP, Little's law, arrival rates and hours."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from protocol_lab.analytics import (
    Timelines,
    arrival_stats,
    arrivals_by_hour,
    cumulative_flow,
    littles_law,
    throughput,
)

from .factory import frame, row


def _workflows(spec: list[tuple[str, float, float | None, str]]) -> pl.LazyFrame:
    rows = []
    for wid, start_h, end_h, end_event in spec:
        rows.append(row(wid, "workflow_started", start_h * 60))
        if end_h is not None:
            rows.append(row(wid, end_event, end_h * 60))
    return Timelines.from_frame(frame(rows)).workflows


SPEC = [
    ("a", 0, 2, "workflow_completed"),
    ("b", 1, 5, "workflow_failed"),
    ("c", 3, 4, "workflow_completed"),
    ("d", 4.5, None, ""),
    ("e", 5.5, 5.75, "workflow_cancelled"),
]


def test_throughput_per_hour_fills_empty_periods() -> None:
    out = throughput(_workflows(SPEC), every="1h").collect()
    assert out["arrivals"].to_list() == [1, 1, 0, 1, 1, 1]
    assert out["departures"].to_list() == [0, 0, 1, 0, 1, 2]
    assert out["completed"].to_list() == [0, 0, 1, 0, 1, 0]
    assert out["failed"].to_list() == [0, 0, 0, 0, 0, 1]
    assert out["cancelled"].to_list() == [0, 0, 0, 0, 0, 1]
    assert out["period"][0] == datetime(2026, 12, 1, 9, tzinfo=UTC)


def test_cumulative_flow_and_wip() -> None:
    out = cumulative_flow(_workflows(SPEC).collect(), every="1h")
    assert isinstance(out, pl.DataFrame)
    assert out["arrived"].to_list() == [1, 2, 2, 3, 4, 5]
    assert out["departed"].to_list() == [0, 0, 1, 1, 2, 4]
    assert out["wip"].to_list() == [1, 2, 1, 2, 2, 1]
    assert out["completed"][-1] + out["failed"][-1] + out["cancelled"][-1] == 4


def test_grouped_flow_has_every_group_and_period() -> None:
    rows = [
        row("x", "workflow_started", 0, queue="itsm-fleet"),
        row("y", "workflow_started", 90, queue="itsm-network"),
        row("y", "workflow_completed", 100, queue="itsm-network"),
    ]
    wf = Timelines.from_frame(frame(rows)).workflows
    out = cumulative_flow(wf, every="1h", by="task_queue").collect()
    assert out.height == 4
    last = {
        r["task_queue"]: r["wip"]
        for r in out.filter(pl.col("period") == pl.col("period").max()).iter_rows(named=True)
    }
    assert last == {"itsm-fleet": 1, "itsm-network": 0}


def test_littles_law_holds_for_consistent_data() -> None:
    spec = [(f"w{i}", i * 1.0, i * 1.0 + 2, "workflow_completed") for i in range(20)]
    out = littles_law(_workflows(spec)).collect().row(0, named=True)
    # 20 arrivals over 21 h, each 2 h long: L = 40/21, lambda = 20/21 per h, W = 2 h
    assert out["window_h"] == pytest.approx(21)
    assert out["L"] == pytest.approx(40 / 21)
    assert out["lambda_per_h"] == pytest.approx(20 / 21)
    assert out["W_h"] == pytest.approx(2)
    assert out["relative_error"] == pytest.approx(0, abs=1e-9)
    assert out["consistent"] is True


def test_littles_law_flags_workflows_that_never_close() -> None:
    spec = [(f"w{i}", i * 1.0, i * 1.0 + 2, "workflow_completed") for i in range(20)]
    spec += [(f"lost{i}", 0.5, None, "") for i in range(5)]  # terminal events missing
    out = littles_law(_workflows(spec), tolerance=0.1).collect().row(0, named=True)
    assert out["open"] == 5
    assert out["relative_error"] > 0.5
    assert out["consistent"] is False


def test_littles_law_flags_negative_cycle_times() -> None:
    rows = [
        row("bad", "workflow_completed", 0),
        row("bad", "workflow_started", 60),
        row("ok", "workflow_started", 0),
        row("ok", "workflow_completed", 60),
    ]
    out = littles_law(Timelines.from_frame(frame(rows)).workflows).collect()
    assert out["negative_cycle_times"].item() == 1
    assert out["consistent"].item() is False


def test_arrival_stats_and_hours() -> None:
    wf = _workflows(SPEC)
    stats = arrival_stats(wf).collect().row(0, named=True)
    assert stats["arrivals"] == 5
    assert stats["mean_interarrival_s"] == pytest.approx(5.5 * 3600 / 4)
    assert stats["arrivals_per_hour"] == pytest.approx(5 / 5.5)
    hours = arrivals_by_hour(wf, timezone="Asia/Tokyo").collect()
    # T0 is Tuesday 09:00 UTC = Tuesday 18:00 in Tokyo
    first = hours.row(0, named=True)
    assert (first["weekday"], first["hour"], first["arrivals"]) == (1, 18, 1)
    assert hours["arrivals"].sum() == 5
