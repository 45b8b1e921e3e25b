"""The model end to end: golden run, determinism, schema, retries, signals, compensation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from protocol_lab.domain import DATA_DIR, TIMELINE_SCHEMA, Rule, SignalStep, details, load_catalog
from protocol_lab.sim import Scenario, SignalConfig, load_scenario, simulate
from protocol_lab.sim.results import SimulationResult

ORIGIN_MS = 1_793_577_600_000  # 2026-11-02T00:00Z


@pytest.fixture(scope="module")
def day() -> SimulationResult:
    return simulate(load_scenario("service_desk_month").with_horizon(24, warmup_hours=0), seed=7)


def test_golden_day_of_the_service_desk(day: SimulationResult) -> None:
    """A fixed seed gives exactly these counts (update only for a deliberate model change)."""
    assert (day.tickets, day.n_workflows, day.n_events) == (6543, 3163, 35831)
    counts = dict(day.events.group_by("event").len().iter_rows())
    # a retried activity shows only its last attempt, as Temporal's history does; the 23 failed
    # workflows compensate their completed steps before failing, as the service's workflow does
    assert counts == {
        "workflow_started": 3163,
        "activity_started": 14731,
        "activity_completed": 11566,
        "signal_received": 3162,
        "workflow_completed": 3140,
        "compensation_started": 23,
        "compensation_completed": 23,
        "workflow_failed": 23,
    }
    outcomes = dict(
        day.events.filter(pl.col("outcome").is_not_null())
        .group_by(pl.format("{} {}", "event", "outcome"))
        .len()
        .iter_rows()
    )
    assert outcomes == {
        "activity_completed completed": 11528,
        "activity_completed timed_out": 38,
        "signal_received completed": 3142,
        "signal_received rejected": 20,
        "compensation_completed completed": 23,
        "workflow_completed completed": 3140,
        "workflow_failed rejected": 20,
        "workflow_failed timed_out": 3,
    }
    retried = day.events.filter(pl.col("attempt") > 1)
    assert retried.height > 0
    assert set(retried["event"]) <= {"activity_started", "activity_completed"}
    offset_s = (day.events["timestamp"].dt.epoch("ms") - ORIGIN_MS).sum() / 1000
    assert offset_s == pytest.approx(1967385972.268, abs=0.01)


def test_same_seed_same_result_other_seed_other_result(day: SimulationResult) -> None:
    scenario = day.scenario
    again = simulate(scenario, seed=7)
    assert again.events.equals(day.events)
    assert again.queue_metrics.equals(day.queue_metrics)
    other = simulate(scenario, rng=np.random.default_rng(8))
    assert not other.events.equals(day.events)


def test_events_follow_the_schema_and_the_plans_texts(day: SimulationResult) -> None:
    events = day.events
    assert events.schema == TIMELINE_SCHEMA
    catalog = load_catalog()
    steps = events.filter(pl.col("event").is_in(["activity_completed", "signal_received"]))
    rows = steps.select("workflow_name", "step", "detail", pl.col("outcome").cast(pl.String))
    for name, step_id, detail, outcome in rows.unique().iter_rows():
        step = catalog[name].step(step_id)
        if outcome == "timed_out":
            assert isinstance(step, SignalStep)
            expected = details.signal_timed_out(step)
        elif outcome == "rejected":
            assert isinstance(step, SignalStep)
            expected = details.signal_received(step, step.reject_values[0])
        else:
            expected = details.step_done(step)
        assert detail == expected, (name, step_id, outcome)
    started = events.filter(event="workflow_started")
    assert started["detail"].str.starts_with("Triggered by ticket TKT-").all()
    per_wf = events.group_by("workflow_id").agg(
        starts=(pl.col("event") == "workflow_started").sum(),
        ends=pl.col("event").is_in(["workflow_completed", "workflow_failed"]).sum(),
    )
    assert (per_wf["starts"] == 1).all()
    assert (per_wf["ends"] == 1).all()  # drained: every workflow ended


def test_timelines_carry_workflow_attributes(day: SimulationResult) -> None:
    tl = day.timelines
    wf = tl.workflows.collect() if isinstance(tl.workflows, pl.LazyFrame) else tl.workflows
    assert {"priority", "ticket_id", "category"} <= set(wf.columns)
    p1 = wf.filter(pl.col("workflow_name") == "P1 Incident Response")
    assert p1.height > 0
    assert set(p1["priority"].to_list()) == {"P1"}
    assert set(p1["category"].to_list()) == {"incident"}


def test_littles_law_and_queue_metrics(day: SimulationResult) -> None:
    law = day.littles_law()
    assert law["relative_error"].max() < 1e-9
    metrics = day.queue_metrics
    assert {"queue", "interval_start", "mean_length", "utilisation", "p95_wait_s"} <= set(
        metrics.columns
    )
    assert metrics["utilisation"].min() >= 0
    assert metrics["utilisation"].max() <= 1 + 1e-9
    # the time integral of the queue length equals the total waiting time
    fleet = metrics.filter(queue="itsm-fleet")
    area = (fleet["mean_length"] * fleet["interval_s"]).sum()
    waits = day.attempts.filter(queue="itsm-fleet")["wait_s"].sum()
    assert area == pytest.approx(waits, rel=1e-6)


def test_retries_follow_the_policy_and_then_fail_the_workflow() -> None:
    s = load_scenario("service_desk_month").with_horizon(4, warmup_hours=0)
    s = s.model_copy(update={"failure_probabilities": {"Password Reset": {"reset_password": 1.0}}})
    result = simulate(s, seed=1)
    events = result.events.filter(workflow_name="Password Reset")
    one = events.filter(pl.col("workflow_id") == events["workflow_id"][0])
    failed = one.filter(event="activity_failed")
    # as in Temporal's history: only the last attempt (5, the policy's max_attempts) is shown
    assert failed.select("step", "attempt", "outcome").rows() == [("reset_password", 5, "failed")]
    assert failed["detail"][0] == "Resetting password failed: directory failed (emulated)"
    last = one.filter(event="workflow_failed")
    assert last.select("step", "outcome", "detail").rows() == [
        ("reset_password", "failed", failed["detail"][0])
    ]
    assert one["event"][-1] == "workflow_failed"
    # the four failed attempts and their backoffs (1 + 2 + 4 + 8 s) lie before the last start
    started = one.filter(event="activity_started", step="reset_password")
    assert started["attempt"].to_list() == [5]
    before = one.filter(pl.col("timestamp") < started["timestamp"][0])["timestamp"].max()
    assert (started["timestamp"][0] - before).total_seconds() > 15.0


def test_signal_timeouts_continue_or_fail_as_the_plan_says() -> None:
    s = load_scenario("service_desk_month").with_horizon(6, warmup_hours=0)
    slow = {"dist": "fixed", "seconds": 1e7}
    s = Scenario.model_validate(
        {
            **s.model_dump(),
            "signals": {
                "identity_verified": {"business_hours": False, "response": slow},
                "incident_acknowledged": {"business_hours": False, "response": slow},
            },
        }
    )
    result = simulate(s, seed=2)
    resets = result.workflows.filter(workflow_name="Password Reset")
    assert set(resets["status"].to_list()) == {"failed"}  # on_timeout: fail
    assert resets["cycle_time_s"].min() == pytest.approx(3600.0)
    p1 = result.events.filter(workflow_name="P1 Incident Response", step="acknowledge")
    assert p1.filter(event="activity_completed")["detail"].str.contains("continued").all()


def test_cancel_on_timeout_compensates_completed_steps_in_reverse(tmp_path: Path) -> None:
    plan = yaml.safe_load((DATA_DIR / "definitions" / "vpn_access_revocation.yaml").read_text())
    plan["name"] = "VPN revocation (cancellable)"
    for step in plan["steps"]:
        if step["id"] == "security_confirmation":
            step["on_timeout"] = "cancel"
            step["response"] = {"dist": "fixed", "seconds": 1e7}
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "vpn.yaml").write_text(yaml.safe_dump(plan))
    rule = Rule.model_validate(
        {
            "name": "leavers",
            "trigger": "on_ticket_created",
            "conditions": {"category": "access", "title": {"contains": "leaver"}},
            "action": {
                "type": "start_workflow",
                "workflow_name": "VPN revocation (cancellable)",
                "task_queue": "itsm-network",
            },
        }
    )
    base = load_scenario("service_desk_month").with_horizon(12, warmup_hours=0)
    s = base.model_copy(
        update={
            "catalog": str(folder),
            "rules": (rule,),
            "signals": {"revocation_confirmed": SignalConfig(business_hours=False)},
        }
    )
    result = simulate(s, seed=3)
    events = result.events
    wf = events["workflow_id"][0]
    one = events.filter(workflow_id=wf)
    comp = one.filter(pl.col("event").cast(pl.String).str.starts_with("compensation"))
    assert comp["detail"].to_list() == ["VPN access restored", "VPN access restored"]
    assert comp["event"].to_list() == ["compensation_started", "compensation_completed"]
    assert one["event"][-1] == "workflow_cancelled"
    assert set(result.workflows["status"].to_list()) == {"cancelled"}


def test_warmup_workflows_are_left_out_of_outputs() -> None:
    s = load_scenario("mmc_validation").with_horizon(6, warmup_hours=2)
    result = simulate(s)
    first = result.events["timestamp"].min()
    assert (first - s.start).total_seconds() >= 2 * 3600
    assert result.workflows.height < result.n_workflows
    assert result.attributes.columns == ["workflow_id", "priority", "ticket_id", "category"]
