"""The simulator understands the same rules as the service: condition groups, several actions
in order (templated values included) and cron schedules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from protocol_lab.domain import Rule
from protocol_lab.domain.cron import next_fire
from protocol_lab.sim import ServiceDeskModel, load_scenario
from protocol_lab.sim.arrivals import generate_arrivals
from protocol_lab.sim.scenario import Arrivals, Scenario

ENROL = {"type": "start_workflow", "workflow_name": "Device Enrollment", "task_queue": "itsm-fleet"}


def _scenario(rules: list[dict[str, Any]], *, hours: float = 48.0) -> Scenario:
    base = load_scenario("mmc_validation")
    stream = base.arrivals.streams[0].model_copy(
        update={"tickets_per_week": 168.0, "category": "other"}
    )
    return base.model_copy(
        update={
            "catalog": "definitions",
            "rules": tuple(Rule.model_validate(r) for r in rules),
            "arrivals": Arrivals(streams=(stream,)),
            "horizon_hours": hours,
            "warmup_hours": 0.0,
        }
    )


def test_groups_and_several_actions_fire_as_the_service_would() -> None:
    s = _scenario(
        [
            {
                "name": "enrol and tell",
                "trigger": "on_ticket_created",
                "conditions": {
                    "any": [
                        {"category": "hardware"},
                        {"all": [{"category": "other"}, {"priority": "P3"}]},
                    ]
                },
                "actions": [
                    ENROL,
                    {
                        "type": "send_notification",
                        "recipient": "ops",
                        "message": "{{ticket.title}}",
                    },
                    {
                        "type": "update_field",
                        "field": "assignee",
                        "value": "owner of {{ticket.id}}",
                    },
                ],
            },
            {
                "name": "never",
                "trigger": "on_ticket_created",
                "conditions": {"any": [{"category": "hardware"}, {"priority": "P1"}]},
                "action": ENROL,
            },
            {
                "name": "assigned from a template",
                "trigger": "on_ticket_updated",
                "conditions": {"assignee": {"changed": True, "contains": "owner of TKT-"}},
                "action": {"type": "send_notification", "recipient": "ops", "message": "assigned"},
            },
        ]
    )
    model = ServiceDeskModel(s, rng=np.random.default_rng(7))
    arrivals = generate_arrivals(s, model._stream("arrivals"))
    result = model.run()
    by_name = dict(zip([r.name for r in result.rules], result.rule_counts, strict=True))
    tickets = len(arrivals)
    assert tickets > 0
    assert by_name == {"enrol and tell": tickets, "never": 0, "assigned from a template": tickets}
    assert result.workflows.filter(workflow_name="Device Enrollment").height == tickets
    # One notification per firing of each notifying rule; no workflow of this catalog notifies.
    assert result.jobs_submitted["notification"] == 2 * tickets
    assert result.rule_executions["action"].to_list() == [
        "start_workflow,send_notification,update_field",
        "start_workflow",
        "send_notification",
    ]


def test_a_cron_rule_runs_at_the_expressions_times_from_the_scenarios_start() -> None:
    cron = "15 */6 * * *"
    s = _scenario(
        [
            {
                "name": "enrol at the next run",
                "trigger": "scheduled",
                # Once per ticket: the first action makes the conditions false.
                "conditions": {"age_hours": {"gte": 0}, "assignee": None},
                "actions": [{"type": "update_field", "field": "assignee", "value": "fleet"}, ENROL],
                "schedule_cron": cron,
            }
        ]
    )
    model = ServiceDeskModel(s, rng=np.random.default_rng(8))
    arrivals = generate_arrivals(s, model._stream("arrivals"))
    result = model.run()
    runs, at = [], s.start
    while (at := next_fire(cron, at)) <= s.start + timedelta(hours=48):
        runs.append((at - s.start).total_seconds())
    assert [r % 21600 for r in runs] == [900.0] * len(runs)
    started = result.workflows.filter(pl.col("workflow_name") == "Device Enrollment")
    offsets = [(t - s.start).total_seconds() for t in started["started_at"].to_list()]
    assert offsets
    # Every workflow starts at a run (or just after it, waiting for the rule engine's slot).
    for offset in offsets:
        assert any(0 <= offset - run < 60 for run in runs), offset
    # A ticket created before the last run is picked up by the first run after it, once.
    due = int(np.sum(arrivals.times <= runs[-1]))
    assert result.rule_counts == [due]
