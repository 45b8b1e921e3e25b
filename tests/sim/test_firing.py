"""Rule firing: the simulator fires exactly what the domain matcher says, and no more."""

from __future__ import annotations

import numpy as np

from protocol_lab.domain import Trigger, load_rules, match_conditions
from protocol_lab.sim import ServiceDeskModel, load_scenario
from protocol_lab.sim.arrivals import generate_arrivals
from protocol_lab.sim.scenario import Arrivals, ArrivalStream


def _record(stream: ArrivalStream, title: str) -> dict[str, object]:
    return {
        "title": title,
        "category": stream.category,
        "priority": stream.priority.value,
        "status": "open",
        "created_at": 0.0,
    }


def test_created_rules_fire_once_per_matching_ticket_as_the_matcher_says() -> None:
    s = load_scenario("service_desk_month").with_horizon(12, warmup_hours=0)
    model = ServiceDeskModel(s, rng=np.random.default_rng(3))
    arrivals = generate_arrivals(s, model._stream("arrivals"))
    result = model.run()
    streams = s.arrivals.streams
    expected = [0] * len(result.rules)
    for k, t in zip(arrivals.stream.tolist(), arrivals.title.tolist(), strict=True):
        record = _record(streams[k], list(streams[k].titles)[t])
        for i, rule in enumerate(result.rules):
            if (
                rule.trigger is Trigger.ON_TICKET_CREATED
                and match_conditions(rule.conditions, record, now=0.0).matched
            ):
                expected[i] += 1
    for i, rule in enumerate(result.rules):
        if rule.trigger is Trigger.ON_TICKET_CREATED:
            assert result.rule_counts[i] == expected[i], rule.name
    assert result.tickets == len(arrivals)
    by_name = dict(zip([r.name for r in result.rules], result.rule_counts, strict=True))
    assert by_name["Password resets"] > 0
    assert by_name["Raise priority of P3 incidents"] > 0


def test_updated_rule_notifies_on_every_resolution() -> None:
    s = load_scenario("service_desk_month").with_horizon(12, warmup_hours=0)
    result = ServiceDeskModel(s, rng=np.random.default_rng(4)).run()
    by_name = dict(zip([r.name for r in result.rules], result.rule_counts, strict=True))
    resolved_by_workflows = result.workflows.filter(
        workflow_name="Password Reset", status="completed"
    ).height
    assert by_name["Tell the requester when resolved"] >= resolved_by_workflows
    # each resolution e-mail, each password e-mail and each escalation notice is one email job
    emails = (
        by_name["Tell the requester when resolved"]
        + result.workflows.filter(workflow_name="Password Reset").height
        - result.workflows.filter(workflow_name="Password Reset", status="failed").height
        + result.workflows.filter(workflow_name="SLA Escalation").height
    )
    assert result.jobs_submitted["email"] == emails


def test_scheduled_rule_escalates_each_stale_ticket_once() -> None:
    base = load_scenario("mmc_validation")
    stream = base.arrivals.streams[0].model_copy(
        update={"tickets_per_week": 168.0, "category": "other"}
    )
    s = base.model_copy(
        update={
            "catalog": "definitions",
            "rules": tuple(load_rules()),
            "arrivals": Arrivals(streams=(stream,)),
            "horizon_hours": 72.0,
            "warmup_hours": 0.0,
        }
    )
    model = ServiceDeskModel(s, rng=np.random.default_rng(5))
    arrivals = generate_arrivals(s, model._stream("arrivals"))
    result = model.run()
    by_name = dict(zip([r.name for r in result.rules], result.rule_counts, strict=True))
    stale = int(np.sum(arrivals.times <= 72 * 3600 - 24 * 3600))
    assert by_name["Escalate stale tickets after 24h"] == stale
    assert result.workflows.filter(workflow_name="SLA Escalation").height == stale
    assert set(result.workflows["trigger_type"].to_list()) == {"scheduled"}
