"""Foreign event logs in: presets on files in each system's export layout, mappings, readers,
row-numbered errors, the open vocabulary beside protocol-lab's own, the CLI, and size."""

from __future__ import annotations

import gzip
import shutil
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from protocol_lab.analytics import (
    FOREIGN_SCHEMA,
    SAMPLE_PATH,
    LogMapping,
    Timelines,
    to_pm4py,
    write_xes,
)
from protocol_lab.cli import app
from protocol_lab.domain import TIMELINE_SCHEMA, TimelineSchemaError

FIXTURES = Path(__file__).parent / "fixtures"
SERVICENOW = FIXTURES / "servicenow_incident_event_log.csv"
JIRA_JSON = FIXTURES / "jira_search_changelog.json"
JIRA_CSV = FIXTURES / "jira_changelog.csv"
XES = FIXTURES / "incidents_lifecycle.xes"


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%d-%m-%Y %H:%M").replace(tzinfo=UTC)


def _intervals(tl: Timelines, case: str) -> list[tuple[str, str | None, float]]:
    steps = tl.steps().filter(pl.col("workflow_id") == case).collect()
    return [(r["step"], r["task_queue"], r["active_s"]) for r in steps.iter_rows(named=True)]


def _by_id(tl: Timelines) -> dict[str, dict[str, Any]]:
    return {r["workflow_id"]: r for r in tl.workflows.collect().iter_rows(named=True)}


# ---------------------------------------------------------------------------------- ServiceNow
def test_servicenow_state_snapshots_become_time_in_each_state() -> None:
    tl = Timelines.from_log(SERVICENOW, preset="servicenow")
    assert tl.vocabulary == "foreign"
    assert tl.events.collect_schema() == FOREIGN_SCHEMA
    assert tl.rejected.is_empty()
    # two updates in the same minute in the same state and group are one interval; a change of
    # group (reassignment) starts a new one; Closed ends the case
    assert _intervals(tl, "INC0000045") == [
        ("New", "Group 56", 7 * 60),
        ("Active", "Group 56", 47 * 60),
        ("Active", "Group 70", 150 * 60),
        ("Awaiting User Info", "Group 70", 255 * 60),
        ("Active", "Group 70", 154 * 60),
        (
            "Resolved",
            "Group 70",
            (_utc("05-03-2016 12:00") - _utc("29-02-2016 11:29")).total_seconds(),
        ),
    ]
    rows = _by_id(tl)
    assert set(rows) == {"INC0000045", "INC0000047", "INC0000057", "INC0000060"}
    done = rows["INC0000045"]
    assert (done["workflow_name"], done["outcome"], done["end_detail"]) == (
        "incident",
        "completed",
        "Closed",
    )
    assert done["started_at"] == _utc("29-02-2016 01:16")
    assert done["completed_at"] == _utc("05-03-2016 12:00")
    assert done["trigger_type"] == "Phone"
    assert rows["INC0000057"]["outcome"] == "open"  # still Active at the end of the export
    # case attributes: "?" is missing, and columns are typed where every value reads so
    assert (done["priority"], done["made_sla"], done["reassignment_count"]) == (
        "3 - Moderate",
        True,
        1,
    )
    assert done["resolved_at"] == _utc("29-02-2016 11:29")
    assert rows["INC0000047"]["made_sla"] is False
    assert rows["INC0000057"]["resolved_at"] is None
    assert rows["INC0000060"]["reopen_count"] == 1


def test_servicenow_analyses_see_real_steps_not_an_invented_queue() -> None:
    tl = Timelines.from_log(SERVICENOW, preset="servicenow")
    worst = tl.bottlenecks().row(0, named=True)
    assert (worst["step"], worst["n"]) == ("Resolved", 4)
    queues = set(tl.workflows.collect()["task_queue"])
    assert queues == {"Group 56", "Group 24", "Group 70"}
    sla = tl.sla(by="priority").frame  # no itsm-* target is applied to an incident's group
    assert sla["target_h"].is_null().all()


def test_preset_fields_can_be_changed_by_a_mapping() -> None:
    tl = Timelines.from_log(
        SERVICENOW, preset="servicenow", mapping={"time_zone": "Europe/Amsterdam"}
    )
    started = _by_id(tl)["INC0000045"]["started_at"]
    assert started == _utc("29-02-2016 00:16")  # 01:16 in Amsterdam (CET) is 00:16 UTC


def test_malformed_servicenow_row_is_named_by_row_and_column(tmp_path: Path) -> None:
    lines = SERVICENOW.read_text().splitlines()
    lines[4] = lines[4].replace("Updated by 24,29-02-2016 04:40", "Updated by 24,31-02-2016 04:40")
    bad = tmp_path / "incidents.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(TimelineSchemaError) as err:
        Timelines.from_log(bad, preset="servicenow")
    assert (err.value.row, err.value.field) == (3, "sys_updated_at")  # data row 3 = line 5
    assert "'31-02-2016 04:40'" in str(err.value)
    assert "%d-%m-%Y %H:%M" in str(err.value)
    kept = Timelines.from_log(bad, preset="servicenow", on_error="set_aside")
    assert kept.rejected.rows() == [
        (3, "sys_updated_at", "cannot read '31-02-2016 04:40' as a time (%d-%m-%Y %H:%M in UTC)")
    ]
    assert kept.workflows.collect().height == 4


def test_missing_case_id_and_bad_order_are_named(tmp_path: Path) -> None:
    lines = SERVICENOW.read_text().splitlines()
    lines[2] = "?" + lines[2][len("INC0000045") :]
    lines[6] = lines[6].replace("1,0,5,true", "1,0,five,true")
    bad = tmp_path / "incidents.csv"
    bad.write_text("\n".join(lines) + "\n")
    kept = Timelines.from_log(bad, preset="servicenow", on_error="set_aside")
    assert kept.rejected.select("row", "field").rows() == [
        (1, "number"),
        (5, "sys_mod_count"),
    ]


# ---------------------------------------------------------------------------------- Jira
def test_jira_changelog_becomes_status_intervals() -> None:
    tl = Timelines.from_log(JIRA_JSON, preset="jira")
    assert _intervals(tl, "ITSM-12") == [
        ("Open", None, 20 * 60),
        ("In Progress", None, 160 * 60),
        ("Waiting for customer", None, 22 * 3600),
        ("In Progress", None, 5.5 * 3600),
    ]
    events = tl.events.filter(pl.col("workflow_id") == "ITSM-12").collect()
    # the issue was unassigned until the history that assigned it and started work
    assert events["actor"].to_list()[:3] == [None, None, None]
    assert events["actor"][3] == "Mia Krystof"
    rows = _by_id(tl)
    assert (rows["ITSM-12"]["outcome"], rows["ITSM-12"]["end_detail"]) == ("completed", "Done")
    assert (rows["ITSM-12"]["priority"], rows["ITSM-12"]["category"]) == ("High", "Incident")
    assert rows["ITSM-13"]["outcome"] == "open"
    # an assignee change splits the Open interval; an issue without changes is in its status
    assert [s for s, _, _ in _intervals(tl, "ITSM-13")] == ["Open", "Open"]
    assert rows["ITSM-14"]["outcome"] == "open"
    assert rows["ITSM-14"]["started_at"] == datetime(2016, 3, 1, 7, 5, tzinfo=UTC)


def test_jira_flat_changelog_csv_reads_like_the_search_answer() -> None:
    from_json = Timelines.from_log(JIRA_JSON, preset="jira").events.collect()
    from_csv = Timelines.from_log(JIRA_CSV, preset="jira").events.collect()
    assert from_csv.equals(from_json)


# ---------------------------------------------------------------------------------- XES
def test_xes_lifecycle_log_plain_and_gzip(tmp_path: Path) -> None:
    packed = tmp_path / "incidents.xes.gz"
    with XES.open("rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    plain = Timelines.from_log(XES)  # .xes needs no preset
    assert plain.events.collect().equals(Timelines.from_log(packed).events.collect())
    events = plain.events.filter(pl.col("workflow_id") == "1-364285768").collect()
    assert events["event"].to_list() == [
        "workflow_started",
        "activity_completed",
        "activity_started",
        "suspend",  # a lifecycle transition of its own stays as the log names it
        "activity_completed",
        "activity_started",
        "activity_completed",
        "workflow_completed",
    ]
    assert events["task_queue"][2] == "V5 3rd"
    assert events["timestamp"][0] == datetime(2012, 3, 31, 14, 59, 42, tzinfo=UTC)
    assert _intervals(plain, "1-364285768") == [
        (
            "Diagnose",
            "V5 3rd",
            (datetime(2012, 4, 5, 8) - datetime(2012, 4, 3, 13, 20, 56)).total_seconds(),
        ),
        ("Resolve", "V13 2nd 3rd", 4.5 * 3600),
    ]
    rows = _by_id(plain)
    assert (rows["1-364285769"]["priority"], rows["1-364285769"]["impact"]) == (1, "High")
    assert rows["1-364285769"]["cycle_time_s"] == pytest.approx(2.75 * 3600)


def test_xes_event_without_a_time_is_named(tmp_path: Path) -> None:
    text = XES.read_text().replace(
        '<date key="time:timestamp" value="2012-04-01T09:30:00.000+02:00"/>', ""
    )
    bad = tmp_path / "bad.xes"
    bad.write_text(text)
    with pytest.raises(TimelineSchemaError) as err:
        Timelines.from_log(bad)
    assert (err.value.row, err.value.field) == (7, "time:timestamp")  # the 8th event


def test_not_an_xes_file_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xes"
    broken.write_text("<log><trace><event></trace></log>")
    with pytest.raises(TimelineSchemaError, match="not well-formed XML"):
        Timelines.from_log(broken)
    other = tmp_path / "other.xes"
    other.write_text("<html/>")
    with pytest.raises(TimelineSchemaError, match="not an XES log"):
        Timelines.from_log(other)
    empty = tmp_path / "empty.xes"
    empty.write_text('<log><trace><string key="concept:name" value="a"/></trace></log>')
    with pytest.raises(TimelineSchemaError, match="no events"):
        Timelines.from_log(empty)


# ---------------------------------------------------------------------------- readers, mappings
@pytest.mark.parametrize("fmt", ["csv.gz", "parquet", "jsonl", "frame"])
def test_other_readers_give_the_same_timelines(tmp_path: Path, fmt: str) -> None:
    raw = pl.read_csv(SERVICENOW, infer_schema=False)
    expected = Timelines.from_log(SERVICENOW, preset="servicenow").events.collect()
    source: Any
    if fmt == "csv.gz":
        source = tmp_path / "log.csv.gz"
        with SERVICENOW.open("rb") as src, gzip.open(source, "wb") as dst:
            shutil.copyfileobj(src, dst)
    elif fmt == "parquet":
        source = tmp_path / "log.parquet"
        raw.write_parquet(source)
    elif fmt == "jsonl":
        source = tmp_path / "log.jsonl"
        raw.write_ndjson(source)
    else:
        source = raw.to_pandas()
    assert Timelines.from_log(source, preset="servicenow").events.collect().equals(expected)


def test_a_declared_mapping_reads_any_activity_log() -> None:
    log = pl.DataFrame(
        {
            "ticket": ["T1", "T1", "T1", "T2"],
            "what": ["Triage", "Fix", "Fix", "Triage"],
            "phase": ["complete", "start", "complete", "complete"],
            "when": [
                "2024-03-31 01:30",
                "2024-03-31 03:10",
                "2024-03-31 04:00",
                "2024-04-01 09:00",
            ],
            "team": ["L1", "L2", "L2", "L1"],
            "sev": ["P2", "P2", "P2", "P4"],
        }
    )
    mapping = LogMapping(
        case="ticket",
        activity="what",
        lifecycle="phase",
        timestamp="when",
        timestamp_format="%Y-%m-%d %H:%M",
        time_zone="Europe/Amsterdam",  # DST began at 02:00 on 31 March 2024
        group="team",
        priority="sev",
        final=("Fix",),
        process="tickets",
    )
    tl = Timelines.from_log(log, mapping=mapping)
    rows = _by_id(tl)
    assert rows["T1"]["outcome"] == "completed"
    assert rows["T2"]["outcome"] == "open"  # its last activity is not final
    assert rows["T1"]["cycle_time_s"] == pytest.approx(90 * 60)  # 01:30 CET to 04:00 CEST
    assert _intervals(tl, "T1") == [("Fix", "L2", 50 * 60)]
    assert rows["T1"]["priority"] == "P2"


def test_mapping_and_preset_errors_are_plain() -> None:
    with pytest.raises(TimelineSchemaError, match="unknown preset 'remedy'"):
        Timelines.from_log(SERVICENOW, preset="remedy")
    with pytest.raises(TimelineSchemaError, match="give a preset"):
        Timelines.from_log(SERVICENOW)
    with pytest.raises(TimelineSchemaError, match="unknown keys \\['stat'\\]"):
        Timelines.from_log(SERVICENOW, preset="servicenow", mapping={"stat": "x"})
    with pytest.raises(TimelineSchemaError, match="case must be text"):
        LogMapping.from_dict({"case": 5, "timestamp": "t", "state": "s"})
    with pytest.raises(TimelineSchemaError, match="final must be a list"):
        LogMapping.from_dict({"case": "c", "timestamp": "t", "state": "s", "final": 3})
    with pytest.raises(TimelineSchemaError, match="activity column or a state column"):
        LogMapping(case="a", timestamp="b")
    with pytest.raises(TimelineSchemaError, match="unknown time zone"):
        LogMapping(case="a", timestamp="b", state="c", time_zone="Mars/Olympus")
    with pytest.raises(TimelineSchemaError, match="missing column 'state'"):
        Timelines.from_log(SERVICENOW, preset="servicenow", mapping={"state": "state"})
    # a column the caller names must be there; a preset's optional ones may be absent
    with pytest.raises(TimelineSchemaError, match="missing column 'team'"):
        Timelines.from_log(SERVICENOW, preset="servicenow", mapping={"group": "team"})
    trimmed = pl.read_csv(SERVICENOW, infer_schema=False).drop("assigned_to", "sys_mod_count")
    assert Timelines.from_log(trimmed, preset="servicenow").workflows.collect().height == 4


# ---------------------------------------------------------------------------------- vocabularies
def test_own_logs_stay_typed_and_checked(tmp_path: Path) -> None:
    foreign = Timelines.from_log(SERVICENOW, preset="servicenow")
    events = foreign.events.collect()
    # the foreign names are refused in protocol-lab's vocabulary, accepted in the open one
    with pytest.raises(TimelineSchemaError) as err:
        Timelines.from_frame(events)
    assert err.value.field == "task_queue"
    reread = Timelines.from_frame(events, vocabulary="foreign")
    assert reread.events.collect().equals(events)
    # a foreign frame still needs its cases and times
    with pytest.raises(TimelineSchemaError) as err:
        Timelines.from_frame(
            events.with_columns(pl.lit(None, dtype=pl.String).alias("workflow_id")),
            vocabulary="foreign",
        )
    assert (err.value.row, err.value.field) == (0, "workflow_id")
    # Parquet keeps the vocabulary; the shipped sample stays protocol-lab's own
    path = foreign.write_parquet(tmp_path / "incidents.parquet")
    back = Timelines.from_file(path)
    assert back.vocabulary == "foreign"
    assert back.events.collect().equals(events)
    assert "made_sla" in back.workflows.collect_schema().names()
    own = Timelines.from_file(SAMPLE_PATH)
    assert own.vocabulary == "protocol-lab"
    assert own.events.collect_schema() == TIMELINE_SCHEMA


def test_the_analyses_plots_and_exports_read_a_foreign_log(tmp_path: Path) -> None:
    tl = Timelines.from_log(SERVICENOW, preset="servicenow")
    assert tl.variants()["n"].sum() == 4
    assert tl.failure_rates(by="task_queue")["workflows"].sum() == 4
    assert tl.throughput(every="1d")["arrivals"].sum() == 4
    assert tl.cumulative_flow(every="1d").height > 0
    assert tl.littles_law().height == 1
    for figure in (
        tl.plot.cumulative_flow(),
        tl.plot.cycle_time_ecdf(),
        tl.plot.step_durations(),
        tl.plot.swimlanes(["INC0000045"]),
    ):
        assert figure.axes
    assert "4 workflows" in tl._repr_html_()
    assert set(to_pm4py(tl)["case:concept:name"]) == {
        "INC0000045",
        "INC0000047",
        "INC0000057",
        "INC0000060",
    }
    xes = write_xes(tl, tmp_path / "incidents.xes")
    assert Timelines.from_log(xes).workflows.collect().height == 4


# ---------------------------------------------------------------------------------- CLI
def test_cli_imports_a_log_and_reports_a_bad_row_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "incidents.parquet"
    res = CliRunner().invoke(
        app, ["logs", "import", str(SERVICENOW), "--preset", "servicenow", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "4 cases (3 closed), 40 events" in res.output
    assert Timelines.from_file(out).vocabulary == "foreign"
    report = CliRunner().invoke(app, ["report", str(out), "--out", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output  # the HTML report reads an imported log
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("time_zone: Europe/Amsterdam\nattributes: [made_sla]\n")
    res = CliRunner().invoke(
        app,
        [
            "logs",
            "import",
            str(SERVICENOW),
            "--preset",
            "servicenow",
            "--mapping",
            str(mapping),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    lines = SERVICENOW.read_text().splitlines()
    lines[2] = lines[2].replace("29-02-2016 01:23", "2016-02-29 01:23")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(
        app, ["logs", "import", str(bad), "--preset", "servicenow", "--out", str(out)]
    )
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        "error: row 1, field 'sys_updated_at': cannot read '2016-02-29 01:23' as a time "
        "(%d-%m-%Y %H:%M in UTC)"
    ]
    res = CliRunner().invoke(
        app,
        ["logs", "import", str(bad), "--preset", "servicenow", "--out", str(out), "--set-aside"],
    )
    assert res.exit_code == 0
    assert "1 rows set aside" in res.output


# ---------------------------------------------------------------------------------- size
def _state_log(cases: int) -> pl.DataFrame:
    """``cases`` incidents, each New -> Active -> Awaiting User Info -> Active -> Resolved ->
    Closed, one update an hour, with a repeated update inside each state."""
    states = ["New", "Active", "Active", "Awaiting User Info", "Active", "Resolved", "Closed"]
    hours = [0, 1, 1, 2, 4, 7, 11]
    n = len(states)
    return pl.DataFrame(
        {
            "number": [f"INC{c:07d}" for c in range(cases) for _ in range(n)],
            "incident_state": states * cases,
            "sys_updated_at": [
                datetime(2016, 3, 1, tzinfo=UTC).replace(hour=h).strftime("%d-%m-%Y %H:%M")
                for _ in range(cases)
                for h in hours
            ],
            "sys_mod_count": [str(i) for _ in range(cases) for i in range(n)],
            "assignment_group": ["Group 1"] * (n * cases),
        }
    )


@pytest.mark.parametrize("cases", [100, 10_000])
def test_import_is_linear_in_the_log_at_100x(cases: int) -> None:
    tl = Timelines.from_log(_state_log(cases), preset="servicenow")
    events, workflows = tl.collect()
    # per case: started, 5 intervals (the repeated Active update merges), completed
    assert events.height == cases * 12
    assert workflows["cycle_time_s"].to_list() == [11 * 3600.0] * cases
    dwell = tl.steps().group_by("step").agg(pl.col("active_s").sum()).collect()
    total = dict(dwell.iter_rows())
    assert total == {
        "New": 3600.0 * cases,
        "Active": 4 * 3600.0 * cases,
        "Awaiting User Info": 2 * 3600.0 * cases,
        "Resolved": 4 * 3600.0 * cases,
    }


# ---------------------------------------------------------------------------------- properties
@st.composite
def _state_logs(draw: st.DrawFn) -> pl.DataFrame:
    """A few cases of random state snapshots, minutes apart (equal times too), some closed."""
    states = st.sampled_from(["New", "Active", "Awaiting User Info", "Resolved"])
    rows: list[tuple[str, str, str, str]] = []
    for case in range(draw(st.integers(1, 4))):
        minute = 0
        path = draw(
            st.lists(st.tuples(states, st.sampled_from(["G1", "G2"])), min_size=1, max_size=8)
        )
        if draw(st.booleans()):
            path.append(("Closed", path[-1][1]))
        for state, group in path:
            minute += draw(st.integers(0, 90))
            at = datetime(2016, 3, 1, tzinfo=UTC) + timedelta(minutes=minute)
            rows.append((f"INC{case}", state, at.strftime("%d-%m-%Y %H:%M"), group))
    return pl.DataFrame(
        rows,
        schema=["number", "incident_state", "sys_updated_at", "assignment_group"],
        orient="row",
    ).with_columns(pl.int_range(pl.len()).cast(pl.String).alias("sys_mod_count"))


@settings(max_examples=60, deadline=None)
@given(log=_state_logs())
def test_intervals_cover_each_case_from_first_update_to_close(log: pl.DataFrame) -> None:
    tl = Timelines.from_log(log, preset="servicenow")
    steps = tl.steps().collect()
    workflows = tl.workflows.collect()
    for case in workflows.iter_rows(named=True):
        rows = log.filter(pl.col("number") == case["workflow_id"])
        mine = steps.filter(pl.col("workflow_id") == case["workflow_id"])
        first = _utc(rows["sys_updated_at"][0])
        last = _utc(rows["sys_updated_at"][-1])
        closed = rows["incident_state"][-1] == "Closed"
        assert case["outcome"] == ("completed" if closed else "open")
        # the intervals tile the case: each starts where the one before ended
        assert mine["start"].to_list()[1:] == mine["end"].to_list()[:-1]
        if mine.height:
            assert mine["start"][0] == first
        assert (mine["active_s"] >= 0).all()
        if closed:
            assert sum(mine["active_s"]) == pytest.approx((last - first).total_seconds())
            assert case["completed_at"] >= last
        # neighbouring intervals differ in state or group
        keys = list(zip(mine["step"], mine["task_queue"], strict=True))
        assert all(a != b for a, b in pairwise(keys))
