"""Step durations (wait, human wait, active), bottleneck ranking, directly-follows times."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from protocol_lab.analytics import Timelines, bottlenecks, directly_follows, step_durations

from .factory import at, frame, laptop, row


def _steps(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    out = step_durations(frame(rows))
    assert isinstance(out, pl.DataFrame)
    return {(r["workflow_id"], r["step"], str(r["kind"])): r for r in out.iter_rows(named=True)}


def test_activity_wait_and_active_time_and_human_waits() -> None:
    s = _steps(laptop("wf_1"))
    check = s[("wf_1", "check_asset_availability", "activity")]
    assert (check["wait_s"], check["active_s"], check["human_wait_s"]) == (60, 120, 0)
    assert (check["start"], check["end"], check["outcome"]) == (at(1), at(3), "completed")
    approval = s[("wf_1", "manager_approval", "signal")]
    assert approval["human"] is True
    assert (approval["wait_s"], approval["human_wait_s"], approval["active_s"]) == (0, 30 * 60, 0)
    provision = s[("wf_1", "provision_asset", "activity")]
    assert (provision["wait_s"], provision["active_s"]) == (600, 1200)
    assert provision["total_s"] == 1800
    assert len(s) == 3


def test_failed_step_and_compensation() -> None:
    failed = _steps(laptop("wf_f", outcome="failed"))[("wf_f", "provision_asset", "activity")]
    assert failed["outcome"] == "failed"
    assert failed["active_s"] == 1200
    comp = _steps(laptop("wf_c", outcome="cancelled"))[
        ("wf_c", "check_asset_availability", "compensation")
    ]
    assert (comp["active_s"], comp["wait_s"]) == (60, 0)


def test_non_human_signal_waits_count_as_waiting() -> None:
    # ``pickup`` in SLA Escalation is a human signal; a signal unknown to the catalog is too;
    # make a callback-like one by naming a plan whose step is declared human: false.
    from protocol_lab.domain import SignalStep, load_catalog

    machine = [
        (plan.name, step.id)
        for plan in load_catalog().values()
        for step in plan.steps
        if isinstance(step, SignalStep) and not step.human
    ]
    rows = [
        row("wf_u", "workflow_started", 0),
        row("wf_u", "signal_received", 5, step="some_callback"),
    ]
    unknown = _steps(rows)[("wf_u", "some_callback", "signal")]
    assert (unknown["human"], unknown["human_wait_s"], unknown["wait_s"]) == (True, 300, 0)
    if machine:
        name, step = machine[0]
        rows = [
            row("wf_m", "workflow_started", 0, name=name),
            row("wf_m", "signal_received", 5, step=step, name=name),
        ]
        known = _steps(rows)[("wf_m", step, "signal")]
        assert (known["human"], known["wait_s"], known["human_wait_s"]) == (False, 300, 0)


def test_a_signal_wait_that_timed_out_and_went_on_is_a_signal_wait() -> None:
    # the service opens the wait with activity_started and, on_timeout continue, closes it with
    # activity_completed outcome timed_out: a (human) signal wait, not an activity that ran
    name = "VPN Access Revocation"

    def r(event: str, m: float, step: str, **fields: Any) -> dict[str, Any]:
        return row("wf_t", event, m, step=step, name=name, **fields)

    rows = [
        row("wf_t", "workflow_started", 0, name=name),
        r("activity_started", 0, "security_confirmation"),
        r("activity_completed", 240, "security_confirmation", outcome="timed_out"),
        r("activity_started", 241, "audit_record", attempt=1),
        r("activity_completed", 242, "audit_record", attempt=1, outcome="completed"),
    ]
    s = _steps(rows)
    wait = s[("wf_t", "security_confirmation", "signal")]
    assert (wait["human"], wait["human_wait_s"], wait["active_s"]) == (True, 240 * 60, 0)
    assert (wait["start"], wait["end"], wait["outcome"]) == (at(0), at(240), "timed_out")
    assert ("wf_t", "security_confirmation", "activity") not in s
    audit = s[("wf_t", "audit_record", "activity")]
    assert (audit["wait_s"], audit["active_s"]) == (60, 60)
    assert bottlenecks(step_durations(frame(rows)))["step"].to_list() == ["audit_record"]


def test_bottlenecks_rank_by_added_time() -> None:
    rows = laptop("wf_1") + laptop("wf_2", start=100)
    steps = step_durations(frame(rows))
    ranked = bottlenecks(steps)
    assert ranked["step"].to_list() == ["provision_asset", "check_asset_availability"]
    assert ranked["rank"].to_list() == [1, 2]
    top = ranked.row(0, named=True)
    assert top["n"] == 2
    assert top["total_h"] == pytest.approx(2 * 1800 / 3600)
    assert top["share"] == pytest.approx(3600 / (3600 + 360))
    with_human = bottlenecks(steps.lazy(), include_human=True).collect()
    assert with_human["step"][0] == "manager_approval"
    by_queue = bottlenecks(steps, by="task_queue")
    assert by_queue["task_queue"].to_list() == ["itsm-accessories"]


def test_directly_follows_counts_and_times() -> None:
    rows = [
        row("a", "workflow_started", 0),
        row("a", "activity_completed", 2, step="x"),
        row("a", "activity_completed", 6, step="y"),
        row("b", "workflow_started", 10),
        row("b", "activity_completed", 14, step="x"),
        row("b", "activity_completed", 15, step="y"),
    ]
    dfg = directly_follows(frame(rows).sample(fraction=1.0, shuffle=True, seed=1))
    edges = {(r["source"], r["target"]): r for r in dfg.iter_rows(named=True)}
    assert set(edges) == {("workflow_started", "x"), ("x", "y")}
    assert edges[("workflow_started", "x")]["n"] == 2
    assert edges[("workflow_started", "x")]["mean_s"] == pytest.approx(180)
    assert edges[("x", "y")]["median_s"] == pytest.approx(150)
    assert (edges[("x", "y")]["min_s"], edges[("x", "y")]["max_s"]) == (60, 240)


def test_directly_follows_any_case_column_and_label_with_ties_in_input_order() -> None:
    events = pl.DataFrame(
        {
            "ticket": [7, 3, 7, 3, 7],
            "what": ["open", "open", "assign", "close", "close"],
            "timestamp": [at(s) for s in (0, 1, 5, 1, 5)],
        }
    )
    dfg = directly_follows(events.lazy(), case="ticket", activity="what").collect()
    edges = {(r["source"], r["target"]): (r["n"], r["mean_s"]) for r in dfg.iter_rows(named=True)}
    assert edges == {
        ("open", "assign"): (1, 300.0),
        ("assign", "close"): (1, 0.0),
        ("open", "close"): (1, 0.0),
    }


def test_timelines_shortcuts_carry_attributes_for_grouping() -> None:
    attrs = pl.DataFrame({"workflow_id": ["wf_1", "wf_2"], "priority": ["P1", "P4"]})
    tl = Timelines.from_frame(frame(laptop("wf_1") + laptop("wf_2", start=9)), attributes=attrs)
    assert isinstance(tl.steps(), pl.LazyFrame)
    assert set(tl.steps().collect()["priority"]) == {"P1", "P4"}
    assert tl.bottlenecks().row(0, named=True)["step"] == "provision_asset"
    by_priority = tl.bottlenecks(by=("priority", "step"))
    assert by_priority.height == 4
    assert by_priority.row(0, named=True)["step"] == "provision_asset"
