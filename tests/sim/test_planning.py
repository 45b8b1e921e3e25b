"""Capacity planning: targets, the search, and a plan on a queue with a known answer."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from protocol_lab.domain import ScenarioError, TaskQueue
from protocol_lab.sim.planning import (
    QueueTarget,
    _candidates,
    parse_target,
    plan_capacity,
    targets_from_sla,
)
from protocol_lab.sim.validation import mmc_scenario


def test_parse_target_forms() -> None:
    assert parse_target("itsm-fleet=48h") == QueueTarget(task_queue=TaskQueue.FLEET, max_hours=48)
    t = parse_target("itsm-workflows:p99<=30m")
    assert (t.percentile, t.max_hours, t.metric) == (99.0, 0.5, "cycle_time")
    w = parse_target("itsm-network:p90 wait<=36s")
    assert (w.metric, w.key, w.max_hours) == ("queue_wait", "wait_p90_s", 0.01)
    with pytest.raises(ScenarioError, match="unknown task queue"):
        parse_target("itsm-nope=4h")
    with pytest.raises(ScenarioError, match="cannot read"):
        parse_target("fleet please")


def test_targets_from_sla_take_the_task_queue_targets() -> None:
    targets = {t.task_queue.value: t.max_hours for t in targets_from_sla()}
    assert targets == {
        "itsm-high-priority": 8,
        "itsm-workflows": 4,
        "itsm-network": 8,
        "itsm-fleet": 48,
        "itsm-accessories": 72,
    }


def test_candidates_gallop_up_then_bisect() -> None:
    assert _candidates({}, guess=5, width=2, top=40) == (None, [5, 6])
    assert _candidates({5: False, 6: False}, guess=5, width=2, top=40) == (None, [7, 8])
    assert _candidates({5: True, 6: True}, guess=5, width=2, top=40) == (None, [2, 3])
    assert _candidates({2: False, 3: True}, guess=5, width=2, top=40) == (3, [])
    assert _candidates({1: True}, guess=1, width=2, top=40) == (1, [])
    assert _candidates({40: False}, guess=40, width=2, top=40) == (40, [])


def test_plan_finds_the_fewest_servers_for_a_wait_target_in_parallel() -> None:
    # M/M/c with offered load 6.8 Erlangs: the p95 wait falls steeply with each server
    scenario = mmc_scenario(servers=8, utilisation=0.85, horizon_hours=12, warmup_hours=1)
    target = QueueTarget(
        task_queue=TaskQueue.WORKFLOWS, max_hours=60 / 3600, percentile=95, metric="queue_wait"
    )
    plan = plan_capacity(
        scenario, [target], replications=3, max_workers=20, processes=2, progress=False
    )
    n = plan.workers["itsm-workflows"]
    assert 8 <= n <= 12
    assert plan.met == {"itsm-workflows": True}
    sweep = plan.sweep.filter(stage="sweep")
    tested = dict(zip(sweep["workers"].to_list(), sweep["meets"].to_list(), strict=True))
    assert tested[n] is True
    assert tested.get(n - 1) is False  # one fewer misses: the cheapest that meets
    assert isinstance(plan.figure, Figure)
    assert plan.verification.height == 1
    assert plan.scenario.task_queue(TaskQueue.WORKFLOWS).workers == n
    assert "Capacity plan" in plan._repr_html_()


def test_unattainable_target_is_reported_not_met() -> None:
    scenario = mmc_scenario(servers=8, utilisation=0.5, horizon_hours=6, warmup_hours=1)
    # the p95 cycle time is at least the p95 of an exponential service (about 3 minutes)
    plan = plan_capacity(
        scenario,
        {"itsm-workflows": 1 / 60},
        replications=2,
        max_workers=12,
        processes=1,
        progress=False,
    )
    assert plan.met == {"itsm-workflows": False}
