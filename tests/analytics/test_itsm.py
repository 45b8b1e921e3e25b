"""The analyses an ITSM log needs, on the ServiceNow and Jira fixtures with numbers worked out
by hand from the files: SLA per priority, category and group on business calendars with
pausing states, its agreement with the log's made_sla, time in each state, reassignments and
ping-pong, handovers, workload, reopens, the process map; and the same answers at 100x."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from protocol_lab.analytics import SAMPLE_PATH, Timelines, sla_status
from protocol_lab.analytics.process_map import END, START
from protocol_lab.domain import SlaConfig

FIXTURES = Path(__file__).parent / "fixtures"
SERVICENOW = FIXTURES / "servicenow_incident_event_log.csv"
JIRA = FIXTURES / "jira_changelog.csv"

H = 3600.0
MIN = 60.0


def _incidents() -> Timelines:
    return Timelines.from_log(SERVICENOW, preset="servicenow")


def _config(targets: list[dict[str, Any]], **extra: Any) -> SlaConfig:
    return SlaConfig.model_validate(
        {"calendar": {"timezone": "UTC", "start": "08:00", "end": "18:00"}, "targets": targets}
        | extra
    )


def _status(tl: Timelines, config: SlaConfig, **kwargs: Any) -> dict[str, dict[str, Any]]:
    frame = tl.sla_status(config=config, **kwargs).collect()
    return {r["workflow_id"]: r for r in frame.iter_rows(named=True)}


WALL = _config(
    [
        {"priority": "2 - High", "target_hours": 2},
        {"priority": "3 - Moderate", "target_hours": 8},
        {"priority": "4 - Low", "target_hours": 24},
    ]
)


# ---------------------------------------------------------------------------------- SLA
def test_sla_clock_pauses_in_waiting_states_and_stops_at_the_last_resolution() -> None:
    rows = _status(_incidents(), WALL)
    # INC45: opened 01:16, Awaiting User Info 04:40-08:55, resolved 11:29 (the same day)
    inc45 = rows["INC0000045"]
    assert inc45["clock_stopped_at"] == datetime(2016, 2, 29, 11, 29, tzinfo=UTC)
    assert inc45["paused_s"] == 4 * H + 15 * MIN
    assert inc45["measured_s"] == (10 * H + 13 * MIN) - (4 * H + 15 * MIN)
    assert inc45["sla_state"] == "met"
    # INC47: 04:40 to 09:52 the next day, Awaiting Vendor 06:00 to 08:30 the next day
    inc47 = rows["INC0000047"]
    assert inc47["paused_s"] == 26.5 * H
    assert inc47["measured_s"] == (29 * H + 12 * MIN) - 26.5 * H
    assert inc47["sla_state"] == "breached"
    # INC60 resolved at 09:15, reopened at 10:20 the next day, resolved again at 16:03: the
    # first resolution paused the clock, the last stopped it
    inc60 = rows["INC0000060"]
    assert inc60["clock_stopped_at"] == datetime(2016, 3, 1, 16, 3, tzinfo=UTC)
    assert inc60["paused_s"] == 25 * H + 5 * MIN
    assert inc60["measured_s"] == (33 * H + 25 * MIN) - (25 * H + 5 * MIN)
    assert inc60["sla_state"] == "breached"  # 8 h 20 min against 8 h
    # INC57 is open in Active: measured to the last event of the log (06-03 17:00)
    inc57 = rows["INC0000057"]
    assert inc57["clock_stopped_at"] is None
    assert inc57["measured_s"] == 6 * 24 * H + 10 * H + 50 * MIN
    assert inc57["sla_state"] == "breached"


def test_business_calendars_per_target_and_scopes_by_category_and_group() -> None:
    config = _config(
        [
            {"priority": "3 - Moderate", "target_hours": 8, "business_hours": True},
            {"category": "Category 55", "target_hours": 1},
            {"category": "Category 40", "target_hours": 3},
            {"group": "Group 24", "target_hours": 1},
            {"group": "Group 70", "target_hours": 48, "business_hours": True, "calendar": "day"},
        ],
        calendars={
            "day": {
                "timezone": "UTC",
                "start": "00:00",
                "end": "24:00",
                "weekdays": [0, 1, 2, 3, 4, 5, 6],
            }
        },
    )
    rows = _status(_incidents(), config)
    # priority beats category beats group
    assert {k: r["target_scope"] for k, r in rows.items()} == {
        "INC0000045": "priority",
        "INC0000047": "category",
        "INC0000057": "task_queue",
        "INC0000060": "priority",
    }
    # on the file's calendar (Monday 29-02-2016, 08:00-18:00 UTC): INC45 works 08:00-11:29
    # and waits 08:00-08:55; INC60 works Mon 08:00 to Tue 16:03 and is resolved from Mon 09:15
    # to Tue 10:20
    assert rows["INC0000045"]["paused_s"] == 55 * MIN
    assert rows["INC0000045"]["measured_s"] == (3 * H + 29 * MIN) - 55 * MIN
    assert rows["INC0000060"]["paused_s"] == 8 * H + 45 * MIN + 2 * H + 20 * MIN
    assert rows["INC0000060"]["measured_s"] == (18 * H + 3 * MIN) - (11 * H + 5 * MIN)
    assert rows["INC0000060"]["sla_state"] == "met"
    # INC47 by its category, wall clock: 2 h 42 min against 3 h
    assert rows["INC0000047"]["measured_s"] == 2 * H + 42 * MIN
    assert rows["INC0000047"]["sla_state"] == "met"
    # INC57 by its group, on the named all-day calendar: every hour counts, until the log ends
    assert rows["INC0000057"]["measured_s"] == 6 * 24 * H + 10 * H + 50 * MIN
    assert rows["INC0000057"]["sla_state"] == "breached"


def test_pausing_and_stopping_states_are_configurable() -> None:
    tl = _incidents()
    no_pause = _status(tl, WALL, pausing=[])
    assert no_pause["INC0000045"]["measured_s"] == 10 * H + 13 * MIN
    # a reopened resolution still pauses: it is a stopping state before the last
    assert no_pause["INC0000060"]["paused_s"] == 25 * H + 5 * MIN
    # names compare without case and spaces
    assert _status(tl, WALL, pausing=[" awaiting user INFO "])["INC0000045"]["paused_s"] == (
        4 * H + 15 * MIN
    )
    # neither: the clock runs from start to close, as without events
    plain = _status(tl, WALL, pausing=[], stopping=[])
    closed = sla_status(tl.workflows, config=WALL).collect()
    assert {k: r["measured_s"] for k, r in plain.items()} == dict(
        closed.select("workflow_id", "measured_s").iter_rows()
    )
    assert plain["INC0000045"]["measured_s"] == (5 * 24 * H + 10 * H + 44 * MIN)


def test_resolved_case_not_yet_closed_is_done_for_its_sla() -> None:
    log = pl.read_csv(SERVICENOW, infer_schema=False).filter(
        ~((pl.col("number") == "INC0000045") & (pl.col("incident_state") == "Closed"))
    )
    tl = Timelines.from_log(log, preset="servicenow")
    rows = _status(tl, WALL)
    assert rows["INC0000045"]["outcome"] == "open"
    assert rows["INC0000045"]["sla_state"] == "met"
    summary = tl.sla(by="priority", config=WALL).frame
    moderate = summary.filter(pl.col("priority") == "3 - Moderate").row(0, named=True)
    assert (moderate["closed"], moderate["met"], moderate["breached"], moderate["open"]) == (
        2,
        1,
        1,
        0,
    )


def test_agreement_with_the_logs_made_sla() -> None:
    tl = _incidents()
    table = tl.sla_agreement(config=WALL).row(0, named=True)
    # INC45 met / true, INC47 breached / false, INC60 breached / true; INC57 is still open
    assert table == {
        "cases": 3,
        "both_met": 1,
        "both_breached": 1,
        "met_log_breached": 0,
        "breached_log_met": 1,
        "agree": 2,
        "agreement": pytest.approx(2 / 3),
    }
    by_priority = tl.sla_agreement(config=WALL, by="priority")
    assert dict(by_priority.select("priority", "agreement").iter_rows()) == {
        "2 - High": 1.0,
        "3 - Moderate": 0.5,
    }
    with pytest.raises(ValueError, match="no column 'sla_met'"):
        tl.sla_agreement(config=WALL, flag="sla_met")


def test_jira_waiting_for_customer_pauses_and_done_stops() -> None:
    tl = Timelines.from_log(JIRA, preset="jira")
    rows = _status(tl, _config([{"priority": "High", "target_hours": 8}]))
    issue = rows["ITSM-12"]
    # created 08:00 UTC, waiting for customer 11:00 to 09:00 the next day, Done at 14:30
    assert issue["clock_stopped_at"] == datetime(2016, 3, 1, 14, 30, tzinfo=UTC)
    assert issue["paused_s"] == 22 * H
    assert issue["measured_s"] == 30.5 * H - 22 * H
    assert issue["sla_state"] == "breached"
    assert rows["ITSM-13"]["sla_state"] == "no_target"
    with pytest.raises(ValueError, match="made_sla"):
        tl.sla_agreement(config=WALL)


# ---------------------------------------------------------------------------------- states
def test_time_in_each_state_adds_up_the_visits_of_a_case() -> None:
    table = _incidents().time_in_state()
    active = table.filter(pl.col("step") == "Active").row(0, named=True)
    # INC45: 47 + 150 + 154 min (two groups, then again after waiting); INC47: 50 + 82;
    # INC60: 343 (reopened); INC57 is still Active, an open visit
    assert (active["cases"], active["visits"]) == (3, 6)
    assert active["total_h"] == pytest.approx((351 + 132 + 343) / 60)
    assert active["p50_h"] == pytest.approx(343 / 60)
    assert table["step"][0] == "Resolved"  # waiting to be closed is most of the time
    assert table["share"].sum() == pytest.approx(1.0)


# ---------------------------------------------------------------------------------- handlers
def test_reassignments_agree_with_the_logs_counts() -> None:
    per_case = _incidents().reassignments()
    assert dict(per_case.select("workflow_id", "reassignments").iter_rows()) == dict(
        per_case.select("workflow_id", "reassignment_count").iter_rows()
    )
    inc45 = per_case.filter(pl.col("workflow_id") == "INC0000045").row(0, named=True)
    assert (inc45["route"], inc45["handlers"], inc45["ping_pongs"]) == (
        "Group 56 > Group 70",
        2,
        0,
    )


def _ping_pong_log(cases: int = 1) -> pl.DataFrame:
    """Each case: New in G1, Active in G2, G1, G3, G1 (two ping-pongs), Resolved by G1,
    Active again (a reopen), Resolved, Closed; an update an hour."""
    path = [
        ("New", "G1", "Ann"),
        ("Active", "G2", "Bob"),
        ("Active", "G1", "Ann"),
        ("Active", "G3", "Cat"),
        ("Active", "G1", "Ann"),
        ("Resolved", "G1", "Ann"),
        ("Active", "G1", "Ann"),
        ("Resolved", "G1", "Ann"),
        ("Closed", "G1", "Ann"),
    ]
    start = datetime(2016, 3, 1, tzinfo=UTC)
    rows = [
        (
            f"INC{c:07d}",
            state,
            (start + timedelta(hours=i)).strftime("%d-%m-%Y %H:%M"),
            str(i),
            group,
            person,
            "3 - Moderate",
        )
        for c in range(cases)
        for i, (state, group, person) in enumerate(path)
    ]
    return pl.DataFrame(
        rows,
        schema=[
            "number",
            "incident_state",
            "sys_updated_at",
            "sys_mod_count",
            "assignment_group",
            "assigned_to",
            "priority",
        ],
        orient="row",
    )


def test_ping_pong_handovers_and_their_matrix() -> None:
    tl = Timelines.from_log(_ping_pong_log(), preset="servicenow")
    case = tl.reassignments().row(0, named=True)
    assert (case["reassignments"], case["ping_pongs"], case["handlers"]) == (4, 2, 3)
    assert case["route"] == "G1 > G2 > G1 > G3 > G1"
    summary = tl.reassignment_summary(by="priority").row(0, named=True)
    assert (summary["reassigned"], summary["ping_pong_cases"], summary["mean_reassignments"]) == (
        1,
        1,
        4.0,
    )
    pairs = {(r["source"], r["target"]): r["n"] for r in tl.handovers().iter_rows(named=True)}
    assert pairs == {("G1", "G2"): 1, ("G2", "G1"): 1, ("G1", "G3"): 1, ("G3", "G1"): 1}
    matrix = tl.handovers(matrix=True)
    assert matrix.columns == ["source", "G1", "G2", "G3"]
    assert matrix.rows() == [("G1", 0, 1, 1), ("G2", 1, 0, 0), ("G3", 1, 0, 0)]
    heatmap = tl.plot.handovers().axes[0]
    assert [t.get_text() for t in heatmap.get_xticklabels()] == ["G1", "G2", "G3"]
    assert sorted(t.get_text() for t in heatmap.texts) == ["1"] * 4


def test_workload_by_resource_and_group() -> None:
    by_person = {r["actor"]: r for r in _incidents().workload().iter_rows(named=True)}
    # Resolver 17: INC45 Active 47 min in Group 56, INC60 Active 5 h 43 min (the resolutions
    # are not work); Resolver 31: INC45 Active 150 + 154 min, Awaiting User Info 4 h 15 min
    r17, r31 = by_person["Resolver 17"], by_person["Resolver 31"]
    assert (r17["cases"], r17["intervals"], r17["handovers_out"]) == (2, 4, 1)
    assert r17["held_h"] == pytest.approx((47 + 343) / 60)
    assert (r31["handovers_in"], r31["waiting_h"]) == (1, 4.25)
    assert r31["held_h"] == pytest.approx((150 + 154) / 60)
    assert by_person["Resolver 125"]["current"] == 1  # INC57, open in Active
    groups = _incidents().workload(level="task_queue")
    assert groups["task_queue"].to_list() == ["Group 56", "Group 70", "Group 24"]


def test_reopens_agree_with_the_logs_counts_and_give_a_rate() -> None:
    tl = _incidents()
    per_case = tl.reopens()
    assert dict(per_case.select("workflow_id", "reopens").iter_rows()) == dict(
        per_case.select("workflow_id", "reopen_count").iter_rows()
    )
    assert per_case.filter(~pl.col("resolved"))["workflow_id"].to_list() == ["INC0000057"]
    rate = tl.reopen_rate().row(0, named=True)
    assert (rate["cases"], rate["resolved"], rate["reopened"]) == (4, 3, 1)
    assert rate["reopen_rate"] == pytest.approx(1 / 3)


# ---------------------------------------------------------------------------------- map
def test_process_map_counts_and_times_and_its_picture() -> None:
    pm = _incidents().process_map()
    edges = {(r["source"], r["target"]): r for r in pm.edges.iter_rows(named=True)}
    assert edges[(START, "New")]["n"] == 4
    assert edges[("Resolved", END)]["n"] == 3
    assert edges[("Resolved", "Active")]["n"] == 1  # the reopen
    # a reassignment inside Active is not a move: Active -> Active never appears
    assert ("Active", "Active") not in edges
    # New -> Active: INC45 7 min, INC47 30 min, INC57 52 min
    assert edges[("New", "Active")]["n"] == 3
    assert edges[("New", "Active")]["mean_s"] == pytest.approx((7 + 30 + 52) / 3 * MIN)
    assert edges[("Active", "Resolved")]["median_s"] == 154 * MIN
    nodes = {r["node"]: r for r in pm.nodes.iter_rows(named=True)}
    assert (nodes["Active"]["visits"], nodes["Active"]["cases"]) == (6, 4)
    assert (nodes[START]["visits"], nodes[END]["visits"]) == (4, 3)
    # ended Active visits: INC45 197 min (across its two groups) and 154, INC47 50 and 82,
    # INC60 343
    assert nodes["Active"]["median_h"] == pytest.approx(154 / 60)
    figure = pm.plot()
    assert isinstance(figure, Figure)
    arrows = [p for p in figure.axes[0].patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == pm.edges.height
    assert isinstance(_incidents().plot.process_map(max_edges=3), Figure)


def test_process_map_of_an_xes_log_with_complete_only_activities() -> None:
    tl = Timelines.from_log(FIXTURES / "incidents_lifecycle.xes", preset="xes")
    edges = {
        (r["source"], r["target"]): r["n"] for r in tl.process_map().edges.iter_rows(named=True)
    }
    # Register has only complete events: an instant, still a node of the map
    assert edges == {
        (START, "Register"): 2,
        ("Register", "Diagnose"): 1,
        ("Register", "Resolve"): 1,
        ("Diagnose", "Resolve"): 1,
        ("Resolve", END): 2,
    }


def test_jira_assignee_changes_are_reassignments_of_resources() -> None:
    tl = Timelines.from_log(JIRA, preset="jira")
    routes = dict(tl.reassignments(level="actor").select("workflow_id", "route").iter_rows())
    assert routes == {
        "ITSM-12": "Mia Krystof",
        "ITSM-13": "Emma Richards > Raj Patel",
        "ITSM-14": None,
    }
    # Jira has no groups: no group reassignments, every case counted
    assert tl.reassignments()["reassignments"].to_list() == [0, 0, 0]


def test_protocol_labs_own_timelines_have_no_reassignments() -> None:
    tl = Timelines.from_file(SAMPLE_PATH).filter(pl.col("workflow_id") < "wf_1300000200")
    assert tl.reassignments()["reassignments"].sum() == 0
    # no step of the catalog pauses or stops the clock: the SLA is the one from start to close
    # less the time the workflow itself was paused (workflow_paused to workflow_resumed)
    with_events = tl.sla_status().collect().sort("workflow_id")
    without = sla_status(tl.workflows).collect().sort("workflow_id")
    assert (with_events["paused_s"] > 0).any()
    assert (with_events["measured_s"] + with_events["paused_s"]).round(6).to_list() == (
        without["measured_s"].round(6).to_list()
    )
    assert tl.process_map().edges.height > 0


# ---------------------------------------------------------------------------------- size
@pytest.mark.parametrize("cases", [100, 10_000])
def test_the_analyses_give_the_same_answers_per_case_at_100x(cases: int) -> None:
    tl = Timelines.from_log(_ping_pong_log(cases), preset="servicenow").cache()
    per_case = tl.reassignments()
    assert per_case["reassignments"].to_list() == [4] * cases
    assert per_case["ping_pongs"].to_list() == [2] * cases
    assert tl.handovers()["n"].to_list() == [cases] * 4
    assert tl.reopens()["reopens"].to_list() == [1] * cases
    status = tl.sla_status(config=WALL).collect()
    # 7 h from New to the last resolution, of which 1 h resolved before the reopen
    assert status["measured_s"].to_list() == [6 * H] * cases
    workload = {r["actor"]: r["held_h"] for r in tl.workload().iter_rows(named=True)}
    assert workload == {"Ann": 4.0 * cases, "Bob": 1.0 * cases, "Cat": 1.0 * cases}
    states = dict(tl.time_in_state().select("step", "total_h").iter_rows())
    assert states == {"Active": 5.0 * cases, "Resolved": 2.0 * cases, "New": 1.0 * cases}
    assert tl.process_map().edges.filter(pl.col("source") == START)["n"].to_list() == [cases]


def test_the_calendar_clock_runs_on_whole_columns_not_per_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from protocol_lab.domain.business_time import BusinessTime

    calls: list[int] = []
    clock = BusinessTime.clock

    def counted(self: BusinessTime, t: Any) -> Any:
        calls.append(len(t))
        return clock(self, t)

    monkeypatch.setattr(BusinessTime, "clock", counted)
    tl = Timelines.from_log(_ping_pong_log(2_000), preset="servicenow").cache()
    business = _config([{"priority": "3 - Moderate", "target_hours": 8, "business_hours": True}])
    status = tl.sla_status(config=business).collect()
    # 8 h from New at midnight to the last resolution at 07:00 is all outside 08:00-18:00
    assert status["measured_s"].to_list() == [0.0] * 2_000
    assert len(calls) <= 12


def test_a_shared_calendar_answers_columns_clocked_at_once() -> None:
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from protocol_lab.domain import BusinessCalendar
    from protocol_lab.domain.business_time import BusinessTime

    calendar = BusinessCalendar(timezone="Europe/London", country="GB", subdivision="ENG")
    # each column reaches other years, so the intervals grow while other columns read them
    columns = [
        np.array([datetime(2000 + k, 1, 1, tzinfo=UTC).timestamp() + h * 3600.0 for h in range(48)])
        for k in range(0, 40, 3)
    ]
    expected = [BusinessTime(calendar).clock(c) for c in columns]
    for _ in range(5):
        shared = BusinessTime(calendar)
        with ThreadPoolExecutor(max_workers=len(columns)) as pool:
            answers = list(pool.map(shared.clock, columns))
        # the anchor is the first year built, so compare differences along each column
        for got, want in zip(answers, expected, strict=True):
            np.testing.assert_allclose(np.diff(got), np.diff(want))
