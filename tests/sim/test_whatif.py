"""What-if for rules: removing or adding a rule changes queue load as it should."""

from __future__ import annotations

from protocol_lab.domain import Rule
from protocol_lab.sim import load_scenario
from protocol_lab.sim.whatif import compare_rules


def test_removing_and_adding_rules_moves_the_load() -> None:
    scenario = load_scenario("service_desk_month").with_horizon(12, warmup_hours=0)
    page_all_incidents = Rule.model_validate(
        {
            "name": "Notify on every incident",
            "trigger": "on_ticket_created",
            "conditions": {"category": "incident"},
            "action": {"type": "send_notification", "recipient": "ops", "message": "incident"},
        }
    )
    cmp = compare_rules(
        scenario,
        remove=["Provision laptops for new hires"],
        add=[page_all_incidents],
        replications=2,
        processes=1,
        progress=False,
    )
    q = {row["queue"]: row for row in cmp.queues.iter_rows(named=True)}
    assert q["itsm-accessories"]["baseline_workflows"] > 0
    assert q["itsm-accessories"]["variant_workflows"] == 0
    assert q["notification"]["delta_attempts"] > 100
    assert q["itsm-fleet"]["delta_workflows"] == 0  # untouched rules: same tickets, same seeds
    rules = {row["rule"]: row for row in cmp.rules.iter_rows(named=True)}
    assert rules["Provision laptops for new hires"]["variant_executions"] is None
    assert rules["Notify on every incident"]["baseline_executions"] is None
    assert rules["Notify on every incident"]["variant_executions"] > 100
    assert cmp.figure.axes
