"""The two halves of the closed loop speak one timeline: for every plan outcome, the service's
timeline (the real plan workflow on the real Temporal server, mapped by the one history mapper)
and the simulator's timeline for the same plan give the same sequence of
(event, step, attempt, outcome, actor, detail).

Each case fixes the randomness on both sides instead of mocking either: the emulated external
system answers each attempt as a function of the workflow id, step and attempt
(:func:`service.temporal.activities.emulated_attempt`), so the test picks a workflow id whose
first attempt fails and second succeeds; the simulator draws from named seeded streams, so the
test picks a seed with the same fate. Signal response times are fixed on the simulator's side and
sent (or not) by the test on the service's side.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from waiting import eventually

from protocol_lab.domain import Catalog, TaskQueue, TriggerType, WorkflowPlan
from protocol_lab.domain.history import build_timeline
from protocol_lab.domain.wire import (
    SIGNAL_UPDATE,
    STATE_QUERY,
    PlanInput,
    SignalInput,
    StepInput,
    WorkflowState,
)
from protocol_lab.sim import Scenario, load_scenario
from protocol_lab.sim.model import ServiceDeskModel
from protocol_lab.sim.tickets import Ticket
from service.settings import Settings
from service.temporal.activities import emulated_attempt
from service.temporal.ids import new_workflow_id
from service.temporal.plan_workflow import PlanWorkflow
from service.temporal.queues import temporal_queue

pytestmark = [pytest.mark.temporal, pytest.mark.timeout(180)]

TIME_SCALE = 1000.0  # the service runs each plan 1000x faster than its simulated time
TICKET = 1
Row = tuple[str, str | None, int | None, str | None, str | None, str | None]


def plan(
    name: str,
    *,
    on_timeout: str = "fail",
    timeout_s: float = 3600.0,
    failure_probability: float = 0.0,
) -> WorkflowPlan:
    """Check, wait for approval, provision: the first step has a compensation."""
    return WorkflowPlan.model_validate(
        {
            "name": name,
            "task_queue": "itsm-workflows",
            "steps": [
                {
                    "kind": "activity",
                    "id": "check",
                    "activity": "integration",
                    "integration": "directory",
                    "detail": "Checking the account",
                    "done": "Account checked",
                    "duration": {"dist": "fixed", "seconds": 2.0},
                    "failure_probability": failure_probability,
                    "retry": {"max_attempts": 3, "initial_interval_s": 1.0},
                    "compensation": {"activity": "integration", "detail": "Releasing the account"},
                },
                {
                    "kind": "signal",
                    "id": "approval",
                    "signal": "approval_received",
                    "detail": "Awaiting manager approval",
                    "done": "Manager approved",
                    "timeout_s": timeout_s,
                    "on_timeout": on_timeout,
                },
                {
                    "kind": "activity",
                    "id": "provision",
                    "activity": "integration",
                    "integration": "provisioning",
                    "detail": "Provisioning access",
                    "done": "Access provisioned",
                    "duration": {"dist": "fixed", "seconds": 2.0},
                },
            ],
        }
    )


@dataclass
class Case:
    """One plan outcome: the plan, the signal the service gets (None: none) and the simulator's
    signal answer."""

    plan: WorkflowPlan
    signal: dict[str, Any] | None
    reject_probability: float = 0.0
    response_s: float = 60.0
    expect_end: str = "workflow_completed"
    retried: bool = False


CASES = {
    "completed": Case(plan("Conformance completed"), signal={"decision": "approved"}),
    "retried then completed": Case(
        plan("Conformance retried", failure_probability=0.5),
        signal={"decision": "approved"},
        retried=True,
    ),
    "signal timed out and continued": Case(
        plan("Conformance continued", on_timeout="continue", timeout_s=60.0),
        signal=None,
        response_s=1e7,
    ),
    "signal timed out and failed": Case(
        plan("Conformance timed out", on_timeout="fail", timeout_s=60.0),
        signal=None,
        response_s=1e7,
        expect_end="workflow_failed",
    ),
    "rejected": Case(
        plan("Conformance rejected"),
        signal={"decision": "rejected"},
        reject_probability=1.0,
        expect_end="workflow_failed",
    ),
    "cancelled with compensation": Case(
        plan("Conformance cancelled", on_timeout="cancel", timeout_s=60.0),
        signal=None,
        response_s=1e7,
        expect_end="workflow_cancelled",
    ),
}


def rows(events: pl.DataFrame) -> list[Row]:
    return [
        (e, s, a, o, who, d)
        for e, s, a, o, who, d in events.select(
            pl.col("event").cast(pl.String),
            "step",
            "attempt",
            pl.col("outcome").cast(pl.String),
            "actor",
            "detail",
        ).iter_rows()
    ]


# -- the simulator's side -----------------------------------------------------------------------


def simulate_case(case: Case, seed: int) -> list[Row]:
    """The simulator's timeline of one workflow of the case's plan, for a ticket."""
    scenario = Scenario.model_validate(
        {
            **load_scenario("demo_day").model_dump(),
            "durations": {},
            "failure_probabilities": {},
            "signals": {
                "approval_received": {
                    "business_hours": False,
                    "response": {"dist": "fixed", "seconds": case.response_s},
                    "reject_probability": case.reject_probability,
                }
            },
        }
    )
    model = ServiceDeskModel(
        scenario,
        rng=np.random.default_rng(seed),
        catalog=Catalog({case.plan.name: case.plan}),
        rules=[],
    )
    ticket = Ticket(TICKET, 0, {"category": "access", "priority": "medium", "status": "open"})
    model.start_workflow(
        case.plan.name,
        queue=TaskQueue(case.plan.task_queue),
        trigger=TriggerType.AUTOMATIC,
        ticket=ticket,
    )
    model.env.run()
    events = model.recorder.events_frame(origin=scenario.start)
    return rows(events.sort("timestamp", maintain_order=True))


def simulated(case: Case, accept: Callable[[list[Row]], bool]) -> list[Row]:
    """The first seed whose run has the fate the case needs."""
    for seed in range(200):
        timeline = simulate_case(case, seed)
        if accept(timeline):
            return timeline
    raise AssertionError("no seed of 200 gave the simulator the case's fate")


# -- the service's side -------------------------------------------------------------------------


def step_input(workflow_id: str, case: Case) -> StepInput:
    step = case.plan.steps[0]
    return StepInput(
        workflow_id=workflow_id,
        workflow_name=case.plan.name,
        step_id=step.id,
        activity="integration",
        detail=step.detail,
        done=step.done,
        integration="directory",
        params={},
        duration={"dist": "fixed", "seconds": 2.0},
        failure_probability=case.plan.steps[0].failure_probability,  # type: ignore[union-attr]
    )


def workflow_id_for(case: Case) -> str:
    """A fresh workflow id of the service's form; for a retried case, one whose first attempt
    fails and second does not (the emulated system's answers are a function of the id)."""
    while True:
        candidate = new_workflow_id()
        if not case.retried:
            return candidate
        first, second = (emulated_attempt(step_input(candidate, case), k)[1] for k in (1, 2))
        if first and not second:
            return candidate


async def run_on_service(client: Client, settings: Settings, case: Case) -> list[Row]:
    workflow_id = workflow_id_for(case)
    handle: WorkflowHandle[Any, Any] = await client.start_workflow(
        PlanWorkflow.run,
        PlanInput(
            name=case.plan.name,
            task_queue=case.plan.task_queue,
            trigger_type="automatic",
            plan=case.plan.model_dump(mode="json"),
            input={"ticket_id": f"TKT-{TICKET}"},
            time_scale=TIME_SCALE,
        ),
        id=workflow_id,
        task_queue=temporal_queue(settings, case.plan.task_queue),
    )
    if case.signal is not None:

        async def awaiting() -> bool:
            state = await handle.query(STATE_QUERY, result_type=WorkflowState)
            return bool(state.awaiting_signal == "approval_received")

        await eventually(awaiting, within_s=30, every_s=0.05)
        await handle.execute_update(
            SIGNAL_UPDATE,
            SignalInput(signal_name="approval_received", payload=case.signal),
            result_type=WorkflowState,
        )
    with contextlib.suppress(WorkflowFailureError):  # a failed plan: its timeline says how
        await handle.result()
    history = await handle.fetch_history()
    timeline = await build_timeline(workflow_id, history.events)
    return [(e.event, e.step, e.attempt, e.outcome, e.actor, e.detail) for e in timeline.events]


@pytest.mark.parametrize("label", list(CASES))
async def test_service_and_simulator_write_the_same_timeline(
    label: str, temporal_client: Client, service_settings: Settings, worker: None
) -> None:
    case = CASES[label]
    service = await run_on_service(temporal_client, service_settings, case)
    sim = simulated(
        case,
        lambda t: (
            any(r[0] == "activity_completed" and r[2] == 2 for r in t) if case.retried else True
        ),
    )
    assert service == sim
    assert service[-1][0] == case.expect_end
    if case.retried:
        assert ("activity_started", "check", 2, None, None, "Checking the account") in service


async def test_who_acted_is_a_structured_field(
    temporal_client: Client, service_settings: Settings, worker: None
) -> None:
    """The sender named in a signal's payload is the ``actor`` of its ``signal_received`` and of
    the rejection that ends the workflow; the detail names them too."""
    case = Case(plan("Conformance actor"), signal={"decision": "denied", "approved_by": "alice"})
    service = await run_on_service(temporal_client, service_settings, case)
    assert service[4] == (
        "signal_received",
        "approval",
        None,
        "rejected",
        "alice",
        "approval_received: denied",
    )
    assert service[-1] == (
        "workflow_failed",
        "approval",
        None,
        "rejected",
        "alice",
        "approval_received: denied by alice",
    )
