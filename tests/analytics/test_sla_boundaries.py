"""SLA states at their boundaries: a target is breached only when the measured time exceeds it.

Each case sits exactly on a boundary or one microsecond (the timeline's resolution) to either
side: the target itself, the at-risk fraction of it, and the edges of the working day when the
target counts business time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from protocol_lab.analytics import Timelines, percentiles, sla_status, sla_summary
from protocol_lab.domain import BusinessCalendar, SlaConfig, SlaTarget

from .factory import T0, frame, row

MONDAY_9 = datetime(2026, 11, 2, 9, tzinfo=UTC)
US = timedelta(microseconds=1)
H = timedelta(hours=1)
TWO_HOURS = 7200.0
CALENDAR = BusinessCalendar(timezone="UTC", start="09:00", end="17:00")
CONFIG = SlaConfig(
    calendar=CALENDAR,
    targets=(
        SlaTarget(task_queue="itsm-workflows", target_hours=2, at_risk_fraction=0.5),
        SlaTarget(category="office", target_hours=2, business_hours=True),
    ),
)


def _workflows(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Workflows started on Monday 09:00, closed (or last seen) after the given duration."""
    return pl.DataFrame(
        [
            {
                "workflow_id": r["id"],
                "task_queue": r.get("queue", "itsm-workflows"),
                "category": r.get("category"),
                "started_at": r.get("start", MONDAY_9),
                "completed_at": (
                    r.get("start", MONDAY_9) + r["took"] if r.get("outcome") != "open" else None
                ),
                "last_event_at": r.get("start", MONDAY_9) + r["took"],
                "outcome": r.get("outcome", "completed"),
            }
            for r in rows
        ],
        schema={
            "workflow_id": pl.String,
            "task_queue": pl.String,
            "category": pl.String,
            "started_at": pl.Datetime("us", "UTC"),
            "completed_at": pl.Datetime("us", "UTC"),
            "last_event_at": pl.Datetime("us", "UTC"),
            "outcome": pl.String,
        },
    )


def _status(rows: list[dict[str, Any]], **kwargs: Any) -> dict[str, dict[str, Any]]:
    out = sla_status(_workflows(rows), config=CONFIG, **kwargs)
    return {r["workflow_id"]: r for r in out.iter_rows(named=True)}


def test_a_closed_workflow_that_takes_exactly_its_target_met_it() -> None:
    status = _status(
        [
            {"id": "under", "took": 2 * H - US},
            {"id": "equal", "took": 2 * H},
            {"id": "over", "took": 2 * H + US},
            {"id": "failed equal", "took": 2 * H, "outcome": "failed"},
            {"id": "failed over", "took": 2 * H + US, "outcome": "failed"},
        ]
    )
    assert {k: v["sla_state"] for k, v in status.items()} == {
        "under": "met",
        "equal": "met",
        "over": "breached",
        "failed equal": "met",
        "failed over": "breached",
    }
    assert status["equal"]["measured_s"] == TWO_HOURS
    assert status["equal"]["time_to_breach_s"] == 0.0
    assert status["over"]["time_to_breach_s"] == pytest.approx(-1e-6)
    assert status["under"]["time_to_breach_s"] == pytest.approx(1e-6)
    assert status["equal"]["clock_stopped_at"] == MONDAY_9 + 2 * H
    assert status["equal"]["paused_s"] == 0.0


def test_an_open_workflow_is_breached_only_past_its_target_and_at_risk_from_the_fraction() -> None:
    # as of the latest event: each open workflow started that long before it
    as_of = MONDAY_9 + 10 * H
    took = {
        "on track": H - US,
        "at risk from": H,  # exactly half of the 2 h target
        "at risk to": 2 * H,  # exactly the target: not yet breached
        "breached": 2 * H + US,
    }
    rows = [
        {"id": name, "took": t, "start": as_of - t, "outcome": "open"} for name, t in took.items()
    ]
    status = _status(rows, as_of=as_of)
    assert {k: v["sla_state"] for k, v in status.items()} == {
        "on track": "on_track",
        "at risk from": "at_risk",
        "at risk to": "at_risk",
        "breached": "breached",
    }
    assert status["at risk to"]["time_to_breach_s"] == 0.0
    assert status["at risk to"]["clock_stopped_at"] is None
    assert status["at risk to"]["elapsed_s"] == TWO_HOURS


def test_the_default_at_risk_fraction_is_four_fifths() -> None:
    as_of = MONDAY_9 + 8 * H
    config = SlaConfig(targets=(SlaTarget(task_queue="itsm-fleet", target_hours=10),))
    frame = _workflows(
        [
            {"id": "before", "took": 8 * H - US, "start": as_of - 8 * H + US, "outcome": "open"},
            {"id": "from", "took": 8 * H, "start": as_of - 8 * H, "outcome": "open"},
        ]
    ).with_columns(pl.lit("itsm-fleet").alias("task_queue"))
    status = sla_status(frame, config=config, as_of=as_of)
    assert status.sort("workflow_id")["sla_state"].cast(pl.String).to_list() == [
        "on_track",
        "at_risk",
    ]


def test_business_hours_targets_breach_only_past_their_working_time() -> None:
    friday_3pm = datetime(2026, 11, 6, 15, tzinfo=UTC)
    rows = [
        # Friday 15:00 to 17:00 is the whole target; the weekend adds nothing
        {"id": "to friday close", "took": 2 * H, "start": friday_3pm, "category": "office"},
        {"id": "to monday open", "took": 66 * H, "start": friday_3pm, "category": "office"},
        {"id": "into monday", "took": 66 * H + US, "start": friday_3pm, "category": "office"},
        {"id": "evening", "took": 12 * H, "start": friday_3pm + 2 * H, "category": "office"},
    ]
    status = _status(rows)
    assert {k: v["sla_state"] for k, v in status.items()} == {
        "to friday close": "met",
        "to monday open": "met",
        "into monday": "breached",
        "evening": "met",
    }
    assert status["to monday open"]["measured_s"] == TWO_HOURS
    assert status["to monday open"]["elapsed_s"] == 66 * 3600
    assert status["evening"]["measured_s"] == 0.0
    assert status["into monday"]["business_hours"] is True
    assert status["into monday"]["target_scope"] == "category"


def test_cancelled_and_untargeted_workflows_are_neither_met_nor_breached() -> None:
    status = _status(
        [
            {"id": "cancelled", "took": 9 * H, "outcome": "cancelled"},
            {"id": "elsewhere", "took": 9 * H, "queue": "itsm-unknown"},
        ]
    )
    assert status["cancelled"]["sla_state"] == "cancelled"
    assert status["elsewhere"]["sla_state"] == "no_target"
    assert status["elsewhere"]["target_s"] is None
    assert status["elsewhere"]["target_scope"] is None
    assert status["elsewhere"]["business_hours"] is False


def test_the_most_specific_target_applies() -> None:
    config = SlaConfig(
        targets=(
            SlaTarget(task_queue="itsm-fleet", target_hours=4),
            SlaTarget(category="hardware", target_hours=3),
            SlaTarget(priority="P1", target_hours=2),
            SlaTarget(workflow_name="Swap", target_hours=1),
        )
    )
    base = {"task_queue": "itsm-fleet", "category": "hardware", "priority": "P1"}
    rows = [
        {"workflow_id": "name", **base, "workflow_name": "Swap"},
        {"workflow_id": "priority", **base, "workflow_name": "Other"},
        {"workflow_id": "category", **base, "workflow_name": "Other", "priority": "P4"},
        {
            "workflow_id": "queue",
            **base,
            "workflow_name": "Other",
            "priority": "P4",
            "category": "x",
        },
    ]
    frame = pl.DataFrame(rows).with_columns(
        pl.lit(MONDAY_9).alias("started_at"),
        pl.lit(MONDAY_9 + 150 * timedelta(minutes=1)).alias("completed_at"),
        pl.lit(MONDAY_9 + 150 * timedelta(minutes=1)).alias("last_event_at"),
        pl.lit("completed").alias("outcome"),
    )
    status = {r["workflow_id"]: r for r in sla_status(frame, config=config).iter_rows(named=True)}
    scopes = {k: (v["target_scope"], v["target_s"], v["sla_state"]) for k, v in status.items()}
    assert scopes == {
        "name": ("workflow_name", 3600.0, "breached"),
        "priority": ("priority", 7200.0, "breached"),
        "category": ("category", 10800.0, "met"),
        "queue": ("task_queue", 14400.0, "met"),
    }


def test_the_summary_counts_each_boundary_case_once() -> None:
    as_of = MONDAY_9 + 10 * H
    rows = [
        {"id": "met", "took": 2 * H},
        {"id": "breached", "took": 2 * H + US},
        {"id": "open at risk", "took": 2 * H, "start": as_of - 2 * H, "outcome": "open"},
        {"id": "open breached", "took": 3 * H, "start": as_of - 3 * H, "outcome": "open"},
        {"id": "cancelled", "took": H, "outcome": "cancelled"},
    ]
    status = sla_status(_workflows(rows), config=CONFIG, as_of=as_of)
    table = sla_summary(status, by=None).row(0, named=True)
    assert (table["workflows"], table["closed"], table["met"], table["breached"]) == (5, 2, 1, 1)
    assert (table["open"], table["at_risk"], table["open_breached"]) == (2, 1, 1)
    assert table["cancelled"] == 1
    assert table["attainment"] == 0.5
    assert table["breach_rate"] == 0.5
    assert table["target_h"] == 2.0
    # the closed workflows' measured times only: 2 h and 2 h + 1 µs
    assert table["p50_h"] == pytest.approx(2.0)
    # without the clock's stop column, "open" is read from the outcome
    plain = sla_summary(status.drop("clock_stopped_at"), by=None).row(0, named=True)
    assert (plain["open"], plain["closed"]) == (2, 2)


def test_percentiles_interpolate_linearly_between_ranks() -> None:
    # nearest rank would give 10 or 20 for p50 and 30 for p90; linear gives the points between
    data = pl.DataFrame({"x": [0.0, 10.0, 20.0, 30.0]})
    row = percentiles(data, "x", quantiles=(0.5, 0.9, 0.25)).row(0, named=True)
    assert row["p50"] == pytest.approx(15.0)
    assert row["p90"] == pytest.approx(27.0)
    assert row["p25"] == pytest.approx(7.5)
    assert (row["n"], row["mean"], row["max"]) == (4, 15.0, 30.0)
    two = percentiles(pl.DataFrame({"x": [1.0, 2.0]}), "x", quantiles=(0.5, 0.95))
    assert two.row(0) == pytest.approx((2, 1.5, 1.5, 1.95, 2.0))
    assert two.columns == ["n", "mean", "p50", "p95", "max"]


def test_percentiles_per_group_are_sorted_and_ignore_nulls() -> None:
    data = pl.DataFrame(
        {"g": ["b", "a", "b", "a", "a"], "x": [1.0, 0.0, None, 10.0, 20.0]},
    )
    out = percentiles(data, "x", by="g", quantiles=(0.5,))
    assert out.columns == ["g", "n", "mean", "p50", "max"]
    assert out.rows() == [("a", 3, 10.0, 10.0, 20.0), ("b", 1, 1.0, 1.0, 1.0)]
    assert percentiles(data, "x", by=["g"], quantiles=(0.75,))["p75"].to_list() == [15.0, 1.0]


def test_percentiles_of_nothing_are_one_row_of_nulls() -> None:
    empty = pl.DataFrame({"x": []}, schema={"x": pl.Float64})
    out = percentiles(empty, "x", quantiles=(0.5,))
    assert out.rows() == [(0, None, None, None)]
    grouped = percentiles(empty.with_columns(g=pl.lit("a")), "x", by="g", quantiles=(0.5,))
    assert grouped.height == 0


# --- pauses: clipped to the clock's run, merged, on the target's own calendar -------------------

PAUSE_CONFIG = SlaConfig(
    calendar=CALENDAR,
    calendars={"late": BusinessCalendar(timezone="UTC", start="12:00", end="24:00")},
    targets=(
        SlaTarget(task_queue="itsm-workflows", target_hours=2),
        SlaTarget(priority="P3", target_hours=4, business_hours=True),
        SlaTarget(priority="P1", target_hours=4, business_hours=True, calendar="late"),
    ),
)


def _paused_status(rows: list[dict[str, Any]], priorities: dict[str, str]) -> dict[str, Any]:
    attributes = pl.DataFrame(
        {"workflow_id": list(priorities), "priority": list(priorities.values())},
        schema={"workflow_id": pl.String, "priority": pl.String},
    )
    timelines = Timelines.from_frame(frame(rows), attributes=attributes, check=False)
    status = timelines.sla_status(config=PAUSE_CONFIG).collect()
    return {r["workflow_id"]: r for r in status.iter_rows(named=True)}


def test_pauses_count_on_the_targets_calendar() -> None:
    # Tuesday 09:00 start; paused 10:00 to 22:00; done at 23:00
    rows = [
        row(wid, event, minutes)
        for wid in ("office", "late", "wall")
        for event, minutes in (
            ("workflow_started", 0),
            ("workflow_paused", 60),
            ("workflow_resumed", 13 * 60),
            ("workflow_completed", 14 * 60),
        )
    ]
    status = _paused_status(rows, {"office": "P3", "late": "P1"})
    # 09:00-17:00 counts 8 h, of which 10:00-17:00 paused: 1 h
    assert status["office"]["paused_s"] == pytest.approx(7 * 3600)
    assert status["office"]["measured_s"] == pytest.approx(3600)
    # 12:00-23:00 counts 11 h on the late calendar, of which 12:00-22:00 paused: 1 h
    assert status["late"]["paused_s"] == pytest.approx(10 * 3600)
    assert status["late"]["measured_s"] == pytest.approx(3600)
    assert status["late"]["sla_state"] == "met"
    # the queue's target counts wall time: 14 h, 12 paused
    assert status["wall"]["paused_s"] == pytest.approx(12 * 3600)
    assert status["wall"]["measured_s"] == pytest.approx(2 * 3600)
    assert status["wall"]["sla_state"] == "met"


def test_pauses_are_clipped_to_the_clocks_run_and_merged_in_time_order() -> None:
    rows = [
        # paused before the start is recorded: only the part after the start counts
        row("early", "workflow_paused", -30),
        row("early", "workflow_started", 0),
        row("early", "workflow_resumed", 30),
        row("early", "workflow_completed", 60),
        # resumed after it completed: only the part before the end counts
        row("late", "workflow_started", 0),
        row("late", "workflow_paused", 30),
        row("late", "workflow_completed", 60),
        row("late", "workflow_resumed", 90),
        # a waiting state after a pause: two separate pauses, whatever order they are found in
        row("apart", "workflow_started", 0),
        row("apart", "workflow_paused", 10),
        row("apart", "workflow_resumed", 40),
        row("apart", "activity_started", 100, step="Awaiting User Info"),
        row("apart", "activity_completed", 130, step="Awaiting User Info", outcome="completed"),
        row("apart", "workflow_completed", 180),
        row("apart2", "workflow_started", 0),
        row("apart2", "activity_started", 10, step="Awaiting User Info"),
        row("apart2", "activity_completed", 40, step="Awaiting User Info", outcome="completed"),
        row("apart2", "workflow_paused", 100),
        row("apart2", "workflow_resumed", 130),
        row("apart2", "workflow_completed", 180),
        # and another workflow's pauses do not merge with these
        row("other", "workflow_started", 0),
        row("other", "workflow_paused", 35),
        row("other", "workflow_resumed", 105),
        row("other", "workflow_completed", 180),
    ]
    status = _paused_status(rows, {})
    assert status["early"]["paused_s"] == pytest.approx(30 * 60)
    assert status["early"]["measured_s"] == pytest.approx(30 * 60)
    assert status["late"]["paused_s"] == pytest.approx(30 * 60)
    assert status["late"]["measured_s"] == pytest.approx(30 * 60)
    assert status["apart"]["paused_s"] == pytest.approx(60 * 60)
    assert status["apart"]["measured_s"] == pytest.approx(120 * 60)
    assert status["apart2"]["paused_s"] == pytest.approx(60 * 60)
    assert status["other"]["paused_s"] == pytest.approx(70 * 60)


# --- no targets, the as-of instant, duplicate targets, the summary's edges ---------------------


def test_without_any_target_every_workflow_has_none_in_typed_columns() -> None:
    status = sla_status(_workflows([{"id": "a", "took": 9 * H}]), config=SlaConfig())
    schema = status.schema
    assert schema["target_scope"] == pl.String()
    assert schema["target_s"] == pl.Float64()
    assert schema["business_hours"] == pl.Boolean()
    [r] = status.iter_rows(named=True)
    assert (r["sla_state"], r["target_scope"], r["target_s"], r["business_hours"]) == (
        "no_target",
        None,
        None,
        False,
    )
    assert r["measured_s"] == 9 * 3600
    assert not [c for c in status.columns if "__" in c]


def test_open_workflows_are_measured_to_the_as_of_instant_given() -> None:
    frame = _workflows([{"id": "open", "took": H, "outcome": "open"}])
    as_of = MONDAY_9 + 5 * H
    [given] = sla_status(frame, config=CONFIG, as_of=as_of).iter_rows(named=True)
    assert (given["elapsed_s"], given["measured_s"]) == (5 * 3600, 5 * 3600)
    assert given["sla_state"] == "breached"
    [latest] = sla_status(frame, config=CONFIG).iter_rows(named=True)
    assert (latest["elapsed_s"], latest["sla_state"]) == (3600, "at_risk")


def test_of_two_targets_for_one_scope_the_first_applies() -> None:
    config = SlaConfig(
        targets=(
            SlaTarget(task_queue="itsm-fleet", target_hours=4),
            SlaTarget(task_queue="itsm-fleet", target_hours=1, business_hours=True),
        )
    )
    frame = _workflows([{"id": "a", "took": 2 * H, "queue": "itsm-fleet"}])
    [r] = sla_status(frame, config=config).iter_rows(named=True)
    assert (r["target_s"], r["business_hours"], r["sla_state"]) == (4 * 3600, False, "met")


def test_the_summary_groups_by_task_queue_and_reads_the_clocks_stop() -> None:
    as_of = MONDAY_9 + 10 * H
    rows = [
        {"id": "one", "took": 2 * H},
        {"id": "open late", "took": 9 * H, "start": as_of - 9 * H, "outcome": "open"},
        {"id": "fleet", "took": H, "queue": "itsm-fleet"},
    ]
    status = sla_status(_workflows(rows), config=CONFIG, as_of=as_of)
    table = {r["task_queue"]: r for r in sla_summary(status).iter_rows(named=True)}
    assert list(table) == ["itsm-fleet", "itsm-workflows"]
    one = table["itsm-workflows"]
    # one closed workflow: its attainment is defined, and its time is every percentile
    assert (one["closed"], one["met"], one["attainment"], one["breach_rate"]) == (1, 1, 1.0, 0.0)
    assert (one["p50_h"], one["p90_h"], one["p95_h"]) == (2.0, 2.0, 2.0)
    assert (one["open"], one["open_breached"]) == (1, 1)
    assert table["itsm-fleet"]["target_h"] is None
    # a case whose clock stopped (resolved) is not open, whatever its outcome says
    resolved = status.with_columns(
        pl.when(pl.col("workflow_id") == "one")
        .then(pl.lit("open"))
        .otherwise(pl.col("outcome"))
        .alias("outcome")
    )
    [whole] = sla_summary(resolved, by=None).iter_rows(named=True)
    assert (whole["open"], whole["closed"], whole["met"]) == (1, 1, 1)


def test_a_summary_of_nothing_is_one_row_of_zeros() -> None:
    empty = sla_status(_workflows([]), config=CONFIG)
    [row_] = sla_summary(empty, by=None).iter_rows(named=True)
    assert (row_["workflows"], row_["closed"], row_["attainment"]) == (0, 0, None)


# --- the clock's end: as of an instant, at a stopping state, on a named calendar ----------------


def test_a_named_calendar_measures_open_workflows_to_as_of_and_closed_ones_to_their_end() -> None:
    # the late calendar (12:00-24:00) with no events: open to as_of, closed to completion
    as_of = MONDAY_9 + 6 * H  # 15:00
    frame = _workflows(
        [
            {"id": "open", "took": H, "outcome": "open"},  # last seen 10:00
            {"id": "closed", "took": 4 * H},  # 09:00 to 13:00
        ]
    ).with_columns(pl.lit("P1").alias("priority"))
    status = {
        r["workflow_id"]: r
        for r in sla_status(frame, config=PAUSE_CONFIG, as_of=as_of).iter_rows(named=True)
    }
    assert status["open"]["measured_s"] == 3 * 3600  # 12:00 to 15:00
    assert status["closed"]["measured_s"] == 3600  # 12:00 to 13:00
    latest = {
        r["workflow_id"]: r for r in sla_status(frame, config=PAUSE_CONFIG).iter_rows(named=True)
    }
    assert latest["open"]["measured_s"] == 3600  # to the latest event, 13:00


def test_with_events_the_clock_stops_at_resolution_or_runs_to_as_of() -> None:
    rows = [
        row("resolved", "workflow_started", 0),
        row("resolved", "activity_started", 30, step="Resolved"),
        row("resolved", "activity_completed", 200, step="Resolved", outcome="completed"),
        row("resolved", "workflow_completed", 200),
        row("fixed", "workflow_started", 0),
        row("fixed", "activity_started", 45, step="Fixed"),
        row("open", "workflow_started", 0),
    ]
    timelines = Timelines.from_frame(frame(rows), check=False)
    as_of = T0 + timedelta(minutes=100)
    status = {
        r["workflow_id"]: r
        for r in timelines.sla_status(config=PAUSE_CONFIG, as_of=as_of)
        .collect()
        .iter_rows(named=True)
    }
    assert status["resolved"]["clock_stopped_at"] == T0 + timedelta(minutes=30)
    assert status["resolved"]["measured_s"] == 30 * 60
    assert status["open"]["clock_stopped_at"] is None
    assert status["open"]["measured_s"] == 100 * 60  # to as_of, not to the latest event
    assert status["fixed"]["measured_s"] == 100 * 60  # "Fixed" stops no clock by default
    custom = {
        r["workflow_id"]: r
        for r in timelines.sla_status(config=PAUSE_CONFIG, as_of=as_of, stopping=("Fixed",))
        .collect()
        .iter_rows(named=True)
    }
    assert custom["fixed"]["measured_s"] == 45 * 60
    assert custom["fixed"]["clock_stopped_at"] == T0 + timedelta(minutes=45)


def test_breached_closed_workflows_count_in_the_summarys_percentiles() -> None:
    rows = [{"id": "met", "took": H}, {"id": "breached", "took": 3 * H}]
    status = sla_status(_workflows(rows), config=CONFIG)
    [whole] = sla_summary(status, by=None).iter_rows(named=True)
    assert whole["p95_h"] == pytest.approx(3.0, abs=0.2)  # the breached one's 3 h, not 1 h


def test_named_calendars_without_a_matching_target_leave_no_target() -> None:
    frame = _workflows([{"id": "a", "took": H, "queue": "itsm-unknown"}])
    frame = frame.drop("category")
    [r] = sla_status(frame, config=PAUSE_CONFIG.model_copy(update={"targets": ()})).iter_rows(
        named=True
    )
    assert (r["sla_state"], r["target_s"], r["measured_s"]) == ("no_target", None, 3600.0)


def test_the_summarys_percentiles_interpolate_as_percentiles_does() -> None:
    # one way to read a percentile: 1 h and 3 h give p50 2 h and p90 2.8 h (nearest rank: 1 or 3)
    rows = [{"id": "met", "took": H}, {"id": "breached", "took": 3 * H}]
    status = sla_status(_workflows(rows), config=CONFIG)
    [whole] = sla_summary(status, by=None).iter_rows(named=True)
    hours = pl.DataFrame({"h": [1.0, 3.0]})
    [expected] = percentiles(hours, "h", quantiles=(0.5, 0.9, 0.95)).iter_rows(named=True)
    assert (whole["p50_h"], whole["p90_h"], whole["p95_h"]) == pytest.approx(
        (expected["p50"], expected["p90"], expected["p95"])
    )
    assert whole["p90_h"] == pytest.approx(2.8)
