"""Cycle times, percentiles, SLA states and summaries on hand-made workflows."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from protocol_lab.analytics import (
    SlaSummary,
    Timelines,
    cycle_times,
    percentiles,
    sla_status,
    sla_summary,
)
from protocol_lab.domain import BusinessCalendar, SlaConfig, SlaTarget

from .factory import frame, row

CALENDAR = BusinessCalendar(timezone="UTC", start="09:00", end="17:00")
CONFIG = SlaConfig(
    calendar=CALENDAR,
    targets=(
        SlaTarget(task_queue="itsm-workflows", target_hours=2),
        SlaTarget(workflow_name="Special", target_hours=1),
        SlaTarget(priority="P3", target_hours=4, business_hours=True, at_risk_fraction=0.5),
    ),
)


def _wf(
    wid: str,
    start: float,
    end: float | None,
    *,
    outcome: str = "workflow_completed",
    name: str = "Reset",
) -> list[dict[str, Any]]:
    rows = [row(wid, "workflow_started", start, name=name)]
    if end is not None:
        rows.append(row(wid, outcome, end, name=name))
    return rows


def _timelines() -> Timelines:
    rows = [
        *_wf("met", 0, 60),  # 1 h against the queue's 2 h
        *_wf("breached", 0, 180),  # 3 h
        *_wf("special", 0, 90, name="Special"),  # 1.5 h against the name's 1 h
        *_wf("cancelled", 0, 500, outcome="workflow_cancelled"),
        *_wf("failed_fast", 0, 30, outcome="workflow_failed"),
        *_wf("business", 0, 8 * 60),  # 09:00 -> 17:00 = 8 business hours vs P3's 4
        *_wf("open_ok", 590, None),  # 10 min before the last event: on track
        *_wf("open_risk", 300, None),  # 14:00 -> 19:00 is 3 business hours: past 50 % of 4
        *_wf("open_late", 300, None),  # 300 min open against 2 h: breached
        row("clock", "workflow_started", 600),  # the latest event: sets "as of"
        row("clock", "workflow_completed", 600),
    ]
    attrs = pl.DataFrame({"workflow_id": ["business", "open_risk"], "priority": ["P3", "P3"]})
    return Timelines.from_frame(frame(rows), attributes=attrs)


def _states() -> dict[str, dict[str, Any]]:
    status = sla_status(_timelines().workflows, config=CONFIG).collect()
    return {r["workflow_id"]: r for r in status.iter_rows(named=True)}


def test_states_follow_targets_and_precedence() -> None:
    s = _states()
    assert {k: str(v["sla_state"]) for k, v in s.items()} == {
        "met": "met",
        "breached": "breached",
        "special": "breached",
        "cancelled": "cancelled",
        "failed_fast": "met",
        "business": "breached",
        "open_ok": "on_track",
        "open_risk": "at_risk",
        "open_late": "breached",
        "clock": "met",
    }
    assert s["special"]["target_scope"] == "workflow_name"
    assert s["special"]["target_s"] == 3600
    assert s["business"]["target_scope"] == "priority"
    assert s["business"]["business_hours"] is True
    assert s["met"]["target_scope"] == "task_queue"


def test_measured_time_and_time_to_breach() -> None:
    s = _states()
    assert s["met"]["measured_s"] == pytest.approx(3600)
    assert s["met"]["time_to_breach_s"] == pytest.approx(3600)
    assert s["breached"]["time_to_breach_s"] == pytest.approx(-3600)
    assert s["business"]["measured_s"] == pytest.approx(8 * 3600)
    assert s["open_risk"]["measured_s"] == pytest.approx(3 * 3600)
    assert s["open_late"]["elapsed_s"] == pytest.approx(300 * 60)


def test_cycle_times_wall_and_business() -> None:
    rows = _wf("night", 8 * 60, 16 * 60)  # 17:00 -> 01:00: 8 wall hours, 0 business
    out = cycle_times(Timelines.from_frame(frame(rows)).workflows.collect(), calendar=CALENDAR)
    assert isinstance(out, pl.DataFrame)
    r = out.row(0, named=True)
    assert r["cycle_time_s"] == pytest.approx(8 * 3600)
    assert r["business_time_s"] == pytest.approx(0)


def test_summary_counts_and_rates() -> None:
    status = sla_status(_timelines().workflows, config=CONFIG)
    table = sla_summary(status, by=None).collect().row(0, named=True)
    assert table["workflows"] == 10
    assert table["closed"] == 6  # cancelled and open ones are out
    assert table["met"] == 3
    assert table["breached"] == 3
    assert table["attainment"] == pytest.approx(0.5)
    assert table["breach_rate"] == pytest.approx(0.5)
    assert (table["open"], table["at_risk"], table["open_breached"]) == (3, 1, 1)
    assert table["cancelled"] == 1
    by_name = sla_summary(status, by="workflow_name").collect()
    assert by_name["workflow_name"].to_list() == ["Password Reset", "Reset", "Special"]


def test_lazy_in_lazy_out_and_eager_in_eager_out() -> None:
    wf = _timelines().workflows
    assert isinstance(sla_status(wf, config=CONFIG), pl.LazyFrame)
    assert isinstance(sla_status(wf.collect(), config=CONFIG), pl.DataFrame)


def test_percentiles_known_values() -> None:
    data = pl.DataFrame(
        {"g": ["a"] * 101 + ["b"] * 3, "x": [float(i) for i in range(101)] + [1.0, 2.0, None]}
    )
    out = percentiles(data, "x", by="g")
    a = out.filter(pl.col("g") == "a").row(0, named=True)
    assert (a["n"], a["p50"], a["p90"], a["p95"], a["p99"], a["max"]) == (101, 50, 90, 95, 99, 100)
    b = out.filter(pl.col("g") == "b").row(0, named=True)
    assert (b["n"], b["mean"]) == (2, 1.5)
    whole = percentiles(data.lazy(), "x", quantiles=(0.25,))
    assert isinstance(whole, pl.LazyFrame)
    assert whole.collect().columns == ["n", "mean", "p25", "max"]


def test_sla_summary_has_a_rich_repr() -> None:
    summary = _timelines().sla(by="task_queue", config=CONFIG)
    assert isinstance(summary, SlaSummary)
    html = summary._repr_html_()
    assert "SLA attainment by task_queue" in html
    assert "itsm-workflows" in html
    assert "pl-bad" in html  # 50 % attainment is under the goal
    assert summary.to_pandas() is not None


def test_default_config_is_the_shipped_file() -> None:
    status = sla_status(_timelines().workflows).collect()
    met = status.filter(pl.col("workflow_id") == "met").row(0, named=True)
    assert (met["target_scope"], met["target_s"]) == ("task_queue", 4 * 3600)


def test_group_with_nothing_closed_has_null_attainment_and_renders() -> None:
    rows = [*_wf("done", 0, 60), *_wf("still_open", 0, None, name="Only Open")]
    summary = Timelines.from_frame(frame(rows)).sla(by="workflow_name", config=CONFIG)
    table = {r["workflow_name"]: r for r in summary.frame.iter_rows(named=True)}
    assert table["Only Open"]["closed"] == 0
    assert table["Only Open"]["attainment"] is None
    assert table["Only Open"]["breach_rate"] is None
    assert table["Reset"]["attainment"] == pytest.approx(1.0)
    assert "Only Open" in summary._repr_html_()


def test_a_paused_workflow_stops_the_sla_clock_until_resumed() -> None:
    """workflow_paused to workflow_resumed is time the clock stands still: a workflow paused
    for 2 h of its 3 h meets the queue's 2 h target; one still paused counts to the as-of
    instant only its time before the pause; one paused twice counts both pauses."""
    rows = [
        row("paused", "workflow_started", 0),
        row("paused", "workflow_paused", 30),
        row("paused", "workflow_resumed", 150),
        row("paused", "workflow_completed", 180),
        row("still_paused", "workflow_started", 0),
        row("still_paused", "workflow_paused", 60),
        row("twice", "workflow_started", 0),
        row("twice", "workflow_paused", 10),
        row("twice", "workflow_resumed", 40),
        row("twice", "workflow_paused", 100),
        row("twice", "workflow_resumed", 130),
        row("twice", "workflow_completed", 180),
        row("plain", "workflow_started", 0),
        row("plain", "workflow_completed", 180),
        row("clock", "workflow_started", 600),
        row("clock", "workflow_completed", 600),
    ]
    tl = Timelines.from_frame(frame(rows))
    status = {
        r["workflow_id"]: r for r in tl.sla_status(config=CONFIG).collect().iter_rows(named=True)
    }
    assert status["paused"]["paused_s"] == 2 * 3600
    assert status["paused"]["measured_s"] == 3600
    assert status["paused"]["sla_state"] == "met"
    assert status["still_paused"]["paused_s"] == 540 * 60
    assert status["still_paused"]["measured_s"] == 3600
    assert status["still_paused"]["sla_state"] == "on_track"
    assert status["twice"]["paused_s"] == 60 * 60
    assert status["plain"]["paused_s"] == 0
    assert status["plain"]["sla_state"] == "breached"


def test_a_pause_inside_a_waiting_state_counts_once() -> None:
    """Paused from 60 to 120 while waiting on the user from 30 to 90: the clock stands still
    from 30 to 120 (90 minutes), not 60 + 60."""
    rows = [
        row("overlap", "workflow_started", 0),
        row("overlap", "activity_started", 30, step="Awaiting User Info"),
        row("overlap", "workflow_paused", 60),
        row("overlap", "activity_completed", 90, step="Awaiting User Info", outcome="completed"),
        row("overlap", "workflow_resumed", 120),
        row("overlap", "workflow_completed", 180),
    ]
    tl = Timelines.from_frame(frame(rows), check=False)
    [status] = tl.sla_status(config=CONFIG).collect().iter_rows(named=True)
    assert status["paused_s"] == 90 * 60
    assert status["measured_s"] == 90 * 60
