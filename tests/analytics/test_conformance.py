"""Conformance to the catalog's plans: fitness per case and workflow, the deviations, size."""

from __future__ import annotations

from typing import Any

import pytest

from protocol_lab.analytics import SAMPLE_PATH, Timelines
from protocol_lab.analytics.conformance import in_plan_order

from .factory import frame, row

# Password Reset: verify_identity (signal), reset_password, email_user, close_ticket
PLAN = ("verify_identity", "reset_password", "email_user", "close_ticket")


def _case(wid: str, steps: list[str], *, end: str = "workflow_completed") -> list[dict[str, Any]]:
    """A Password Reset case running ``steps`` in that order, a minute apart."""
    rows = [row(wid, "workflow_started", 0)]
    t = 1.0
    for step in steps:
        if step == "verify_identity":
            rows.append(row(wid, "activity_started", t, step=step))
            rows.append(row(wid, "signal_received", t + 0.5, step=step))
        else:
            rows.append(row(wid, "activity_started", t, step=step))
            rows.append(row(wid, "activity_completed", t + 0.5, step=step))
        t += 1
    if end:
        rows.append(row(wid, end, t))
    return rows


def _cases(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    result = Timelines.from_frame(frame(rows)).conformance()
    return {r["workflow_id"]: r for r in result.cases.iter_rows(named=True)}


def test_a_case_that_follows_its_plan_fits() -> None:
    case = _cases(_case("ok", list(PLAN)))["ok"]
    assert (case["fitness"], case["expected"], case["observed"]) == (1.0, 4, 4)
    assert case["skipped"] == case["out_of_order"] == case["unexpected_signals"] == []


def test_skipped_step() -> None:
    case = _cases(_case("skip", ["verify_identity", "reset_password", "close_ticket"]))["skip"]
    assert case["skipped"] == ["email_user"]
    # one move on the model out of 3 observed + 4 expected
    assert case["fitness"] == pytest.approx(1 - 1 / 7)


def test_steps_out_of_order() -> None:
    rows = _case("order", ["verify_identity", "email_user", "reset_password", "close_ticket"])
    case = _cases(rows)["order"]
    assert case["out_of_order"] == ["email_user"]
    assert case["skipped"] == []
    # email_user moves on the log, and its place in the plan on the model: 2 of 8
    assert case["fitness"] == pytest.approx(0.75)


def test_unexpected_signals() -> None:
    rows = _case("sig", list(PLAN))
    rows.insert(-1, row("sig", "signal_received", 4.8, step="verify_identity"))  # a second one
    rows.insert(-1, row("sig", "signal_received", 4.9, step="reset_password"))  # not a signal step
    rows.insert(-1, row("sig", "signal_received", 4.95, detail="Signal nudge received"))
    case = _cases(rows)["sig"]
    assert case["unexpected_signals"] == [
        "verify_identity",
        "reset_password",
        "Signal nudge received",
    ]
    assert case["fitness"] == pytest.approx(1 - 3 / 11)


def test_failed_cancelled_and_open_cases_are_held_to_the_step_they_reached() -> None:
    failed = _case("failed", ["verify_identity"], end="")
    failed += [
        row("failed", "activity_started", 3, step="reset_password"),
        row("failed", "activity_failed", 4, step="reset_password"),
        row("failed", "workflow_failed", 5),
    ]
    cancelled = _case("cancelled", [], end="workflow_cancelled")
    opened = _case("open", ["verify_identity", "reset_password"], end="")
    late = _case("late_fail", ["verify_identity", "email_user"], end="workflow_failed")
    cases = _cases([*failed, *cancelled, *opened, *late])
    assert (cases["failed"]["expected"], cases["failed"]["fitness"]) == (2, 1.0)
    assert (cases["cancelled"]["expected"], cases["cancelled"]["fitness"]) == (0, 1.0)
    assert (cases["open"]["expected"], cases["open"]["fitness"]) == (2, 1.0)
    # reaching email_user, it skipped reset_password on the way
    assert cases["late_fail"]["skipped"] == ["reset_password"]
    assert cases["late_fail"]["fitness"] == pytest.approx(1 - 1 / 5)


def test_unknown_steps_and_workflows_without_a_plan() -> None:
    rows = _case("extra", ["verify_identity", "call_user", *PLAN[1:]])
    rows += [
        {**r, "workflow_name": "Custom Flow"}
        for r in _case("custom", ["anything"], end="workflow_completed")
    ]
    result = Timelines.from_frame(frame(rows)).conformance()
    cases = {r["workflow_id"]: r for r in result.cases.iter_rows(named=True)}
    assert cases["extra"]["unknown_steps"] == ["call_user"]
    assert cases["extra"]["fitness"] == pytest.approx(1 - 1 / 9)
    assert cases["custom"]["in_catalog"] is False
    assert cases["custom"]["fitness"] is None
    assert result.workflows["workflow_name"].to_list() == ["Password Reset"]
    assert result.deviating()["workflow_id"].to_list() == ["extra"]


def test_fitness_per_workflow_weighs_cases_by_their_size() -> None:
    rows = _case("ok", list(PLAN)) + _case("skip", ["verify_identity", "close_ticket"])
    summary = Timelines.from_frame(frame(rows)).conformance().workflows.row(0, named=True)
    assert (summary["cases"], summary["fitting"], summary["fitting_share"]) == (2, 1, 0.5)
    assert summary["with_skipped"] == 1
    # 2 moves on the model of (4 + 4) + (2 + 4) worst-case moves
    assert summary["fitness"] == pytest.approx(1 - 2 / 14)
    assert summary["mean_fitness"] == pytest.approx((1 + (1 - 2 / 6)) / 2)


def test_the_shipped_sample_follows_the_catalog() -> None:
    result = Timelines.from_file(SAMPLE_PATH).conformance()
    assert result.workflows["fitness"].to_list() == [1.0] * 6
    assert result.deviating().is_empty()


def test_in_plan_order_is_a_longest_increasing_run() -> None:
    assert in_plan_order([]) == []
    assert in_plan_order([0, 1, 2]) == [0, 1, 2]
    kept = in_plan_order([0, 3, 1, 2, 4])
    assert [[0, 3, 1, 2, 4][i] for i in kept] == [0, 1, 2, 4]
    assert len(in_plan_order(list(range(1000, 0, -1)))) == 1


@pytest.mark.parametrize("copies", [20, 2_000])
def test_conformance_scales_linearly_at_100x(copies: int) -> None:
    base = (
        _case("ok", list(PLAN))
        + _case("skip", ["verify_identity", "reset_password", "close_ticket"])
        + _case("order", ["verify_identity", "email_user", "reset_password", "close_ticket"])
    )
    rows = [{**r, "workflow_id": f"{r['workflow_id']}-{i}"} for i in range(copies) for r in base]
    result = Timelines.from_frame(frame(rows)).conformance()
    assert result.cases.height == 3 * copies
    summary = result.workflows.row(0, named=True)
    assert (summary["fitting"], summary["with_skipped"], summary["with_out_of_order"]) == (
        copies,
        copies,
        copies,
    )
    assert summary["fitness"] == pytest.approx(1 - 3 / 23)
