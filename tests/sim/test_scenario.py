"""Scenarios: the shipped files load and check; errors name file and field; round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from protocol_lab.domain import ActivityKind, ActivityStep, Fixed, Rule, ScenarioError, TaskQueue
from protocol_lab.sim import SCENARIO_DIR, Scenario, load_scenario, save_scenario


@pytest.mark.parametrize("name", ["service_desk_month", "mmc_validation"])
def test_shipped_scenarios_load_and_check_against_catalog_and_rules(name: str) -> None:
    scenario = load_scenario(name)
    scenario.check()
    assert scenario.arrivals.tickets_per_week > 0


def test_month_scenario_is_about_150k_tickets() -> None:
    s = load_scenario("service_desk_month")
    assert 140_000 < s.arrivals.tickets_per_week * s.horizon_hours / 168 < 160_000


def test_unknown_field_names_file_and_field(tmp_path: Path) -> None:
    raw = yaml.safe_load((SCENARIO_DIR / "mmc_validation.yaml").read_text())
    raw["task_queues"]["itsm-workflows"]["wokers"] = 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(
        ScenarioError, match=r"bad\.yaml: field task_queues\.itsm-workflows\.wokers"
    ):
        load_scenario(bad)


def test_unknown_scenario_lists_shipped_ones() -> None:
    with pytest.raises(ScenarioError, match="mmc_validation"):
        load_scenario("no_such_scenario")


def test_check_rejects_rule_starting_unknown_workflow() -> None:
    s = load_scenario("mmc_validation")
    rule = Rule.model_validate(
        {
            "name": "ghost",
            "trigger": "on_ticket_created",
            "conditions": {"category": "mmc"},
            "action": {
                "type": "start_workflow",
                "workflow_name": "Ghost",
                "task_queue": "itsm-fleet",
            },
        }
    )
    with pytest.raises(ScenarioError, match="unknown workflow 'Ghost'"):
        s.with_rules(add=[rule]).check()


def test_check_rejects_override_of_unknown_step() -> None:
    raw = load_scenario("mmc_validation").model_dump()
    raw["durations"] = {"M/M/c Service": {"nope": {"dist": "fixed", "seconds": 1}}}
    with pytest.raises(ScenarioError, match="unknown step 'nope'"):
        Scenario.model_validate(raw).check()


def test_warmup_must_be_shorter_than_horizon() -> None:
    with pytest.raises(ScenarioError):
        load_scenario("mmc_validation").with_horizon(2, warmup_hours=3)


def test_save_then_load_gives_the_same_scenario(tmp_path: Path) -> None:
    s = load_scenario("service_desk_month").with_workers({"itsm-fleet": 7})
    again = load_scenario(save_scenario(s, tmp_path / "copy.yaml"))
    assert again == s
    assert again.task_queue(TaskQueue.FLEET).workers == 7


def test_forecast_scales_every_stream() -> None:
    s = load_scenario("service_desk_month").with_forecast(tickets_per_week=70_000)
    assert s.arrivals.tickets_per_week == pytest.approx(70_000)
    with pytest.raises(ScenarioError):
        s.with_forecast(tickets_per_week=1, scale=2)


def test_with_rules_removes_by_name_and_rejects_unknown_names() -> None:
    s = load_scenario("service_desk_month")
    fewer = s.with_rules(remove=["Password resets"])
    assert [r.name for r in fewer.load_rules()] == [
        r.name for r in s.load_rules() if r.name != "Password resets"
    ]
    with pytest.raises(ScenarioError, match="no rule named"):
        s.with_rules(remove=["Nope"])


def test_the_scenario_as_the_service_runs_it() -> None:
    scenario = load_scenario("demo_day")
    served = scenario.as_the_service_runs()
    catalog = scenario.load_catalog()
    laptop = catalog["Laptop Provisioning - New Hire"]
    overrides = served.durations[laptop.name]
    for step in laptop.steps:
        if not isinstance(step, ActivityStep):
            assert step.id not in overrides
        elif step.activity is ActivityKind.INTEGRATION:
            # emulated by the service with the plan's (or the scenario's) duration
            assert overrides.get(step.id) == scenario.durations.get(laptop.name, {}).get(step.id)
        else:
            assert overrides[step.id] == Fixed(seconds=0.0)
    assert served.compensation_duration == Fixed(seconds=0.0)
    assert scenario.compensation_duration != served.compensation_duration  # a copy


def test_a_scenario_naming_the_old_catalog_folder_still_loads_with_a_warning() -> None:
    scenario = load_scenario("demo_day").model_copy(update={"catalog": "workflows"})
    with pytest.warns(DeprecationWarning, match="'workflows' is now 'definitions'"):
        catalog = scenario.load_catalog()
    assert catalog.names == load_scenario("demo_day").load_catalog().names
