"""Scripts from a simulated run and from observed timelines: what is called, when, once."""

from __future__ import annotations

import polars as pl

from protocol_lab.domain import SignalStep, load_catalog, load_rules, match_conditions
from protocol_lab.replay import ReplayScript, simulated_timelines
from protocol_lab.sim import load_scenario


def test_every_ticket_agent_update_and_signal_of_the_run_is_scripted_in_time_order() -> None:
    scenario = load_scenario("demo_day")
    script, result = ReplayScript.from_simulation(scenario)
    counts = script.counts()
    assert counts["create_ticket"] == result.tickets
    assert counts["update_ticket"] == result.resolved_by_agents
    received = result.events.filter(pl.col("event") == "signal_received").height
    assert counts["signal"] == received
    times = [a.at_s for a in script.actions]
    assert times == sorted(times)
    assert {w.workflow for w in script.workflows} == set(result.workflows["workflow_id"])
    # every signal names a signal its workflow's plan waits for, on a scripted ticket
    catalog = load_catalog()
    names = {w.workflow: w.workflow_name for w in script.workflows}
    created = {a.ticket for a in script.actions if a.kind == "create_ticket"}
    for action in script.actions:
        if action.kind == "signal":
            assert action.ticket in created
            plan = catalog[names[action.workflow or ""]]
            waits = {s.signal for s in plan.steps if isinstance(s, SignalStep)}
            assert action.signal_name in waits


def test_rejections_are_replayed_as_rejections() -> None:
    scenario = load_scenario("demo_day").with_horizon(24 * 7, warmup_hours=0)
    script, result = ReplayScript.from_simulation(scenario)
    rejected = result.events.filter(
        (pl.col("event") == "workflow_failed") & pl.col("detail").str.contains("rejected")
    )
    decisions = [
        a
        for a in script.actions
        if a.kind == "signal" and a.payload.get("decision") in ("rejected", "denied")
    ]
    assert rejected.height > 0
    assert len(decisions) == rejected.height
    assert {a.workflow for a in decisions} == set(rejected["workflow_id"])


def test_truncation_keeps_what_happened_before_the_cut() -> None:
    script, _ = ReplayScript.from_simulation(load_scenario("demo_day"))
    cut = script.truncated(6 * 3600.0)
    assert cut.end_s == 6 * 3600.0
    assert all(a.at_s <= 6 * 3600.0 for a in cut.actions)
    assert len(cut) == sum(1 for a in script.actions if a.at_s <= 6 * 3600.0)
    assert cut.wall_seconds(3600.0) == 6.0


def test_observed_timelines_become_tickets_that_fire_the_same_rules() -> None:
    script, result = ReplayScript.from_simulation(load_scenario("demo_day"))
    observed = simulated_timelines(result)
    again = ReplayScript.from_timelines(observed)
    rules = [r for r in load_rules() if r.trigger.value == "on_ticket_created"]
    workflows = {w.ticket: w.workflow_name for w in again.workflows}
    assert len(workflows) == result.workflows.height
    for action in again.actions:
        if action.kind != "create_ticket":
            continue
        fired = [
            r.action.workflow_name  # type: ignore[union-attr]
            for r in rules
            if r.action.type == "start_workflow"
            and match_conditions(r.conditions, dict(action.fields), now=0.0).matched
        ]
        assert fired == [workflows[action.ticket]]
    assert again.counts()["signal"] == script.counts()["signal"]
