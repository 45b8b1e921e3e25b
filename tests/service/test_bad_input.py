"""Bad input gets a documented 4xx with the JSON error shape, never a 5xx.

Each case here was once accepted unbounded, answered with a 5xx, or mistaken for another
resource (a ticket id in non-ASCII digits).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest
from temporalio.service import RPCError, RPCStatusCode

from protocol_lab.domain import Rule
from protocol_lab.domain.wire import PAUSE_UPDATE, ControlInput
from service.api.errors import status_of
from service.automation.context import AutomationContext
from service.automation.schedules import delete_rule_schedule, reconcile_schedules, schedule_id
from service.errors import ConflictError, ServiceError
from service.executions.context import temporal_errors
from service.state import Resources
from service.store.ids import new_id
from service.store.rules import delete_rule, insert_rule, new_rule_row

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

YEAR_S = 366 * 86400
SCHEDULED_RULE: dict[str, Any] = {
    "name": "Nudge idle tickets",
    "trigger": "scheduled",
    "conditions": {"status": "open", "idle_hours": 24},
    "action": {"type": "send_notification", "recipient": "assignee", "message": "{ticket_id}"},
}
SCHEDULED_WORKFLOW: dict[str, Any] = {
    "name": "VPN Access Revocation",
    "task_queue": "itsm-network",
    "trigger_type": "scheduled",
}


def _bad_requests() -> list[Any]:
    return [
        pytest.param(
            "GET",
            "/v1/jobs/queues/export/jobs",
            {"params": {"offset": "48764327373309960192"}},
            400,
            id="job-offset-beyond-int64",
        ),
        pytest.param(
            "GET",
            "/v1/jobs/queues/export/jobs",
            {"params": {"offset": str(2**63 - 1)}},
            400,
            id="job-offset-at-int64-max",
        ),
        pytest.param(
            "GET",
            "/v1/jobs/queues/export/jobs/" + "j" * 5000,
            {},
            400,
            id="job-id-too-long",
        ),
        pytest.param(
            "POST",
            "/v1/workflows",
            {"json": {**SCHEDULED_WORKFLOW, "start_at": 1e20}},
            400,
            id="workflow-start-at-1e20",
        ),
        pytest.param(
            "POST",
            "/v1/workflows",
            {"json": {**SCHEDULED_WORKFLOW, "start_at": time.time() + 2 * YEAR_S}},
            400,
            id="workflow-start-at-two-years-ahead",
        ),
        pytest.param(
            "POST",
            "/v1/workflows",
            {
                "content": '{"name": "VPN Access Revocation", "task_queue": "itsm-network",'
                ' "trigger_type": "scheduled", "start_at": 1e999}',
                "headers": {"Content-Type": "application/json"},
            },
            400,
            id="workflow-start-at-infinite",
        ),
        pytest.param(
            "POST",
            "/v1/workflows/archive",
            {
                "content": '{"older_than_s": 1e999}',
                "headers": {"Content-Type": "application/json"},
            },
            400,
            id="archive-older-than-infinite",
        ),
        pytest.param(
            "POST",
            "/v1/workflows/archive",
            {"json": {"older_than_s": 1e300}},
            400,
            id="archive-older-than-1e300",
        ),
        pytest.param("GET", "/v1/tickets/TKT-²", {}, 404, id="ticket-id-superscript-digit"),
        pytest.param(
            "PATCH", "/v1/tickets/TKT-²", {"json": {"title": "x"}}, 404, id="ticket-patch-unicode"
        ),
        pytest.param(
            "GET",
            "/v1/tickets",
            {"params": {"starting_after": "TKT-²"}},
            400,
            id="ticket-cursor-unicode",
        ),
        pytest.param(
            "POST",
            "/v1/automation/rules",
            {"json": {**SCHEDULED_RULE, "schedule_interval_s": 1e15}},
            400,
            id="rule-interval-1e15",
        ),
        pytest.param(
            "POST",
            "/v1/automation/rules",
            {"json": {**SCHEDULED_RULE, "schedule_interval_s": 2 * YEAR_S}},
            400,
            id="rule-interval-two-years",
        ),
        pytest.param(
            "POST",
            "/v1/automation/events/redrive",
            {"json": {"event_ids": [1, -(2**70)]}},
            400,
            id="redrive-event-id-beyond-int64",
        ),
        pytest.param(
            "POST",
            "/v1/automation/events/redrive",
            {"json": {"event_ids": [2**63]}},
            400,
            id="redrive-event-id-at-2-pow-63",
        ),
    ]


@pytest.mark.parametrize(("method", "path", "request_kwargs", "expected"), _bad_requests())
async def test_bad_input_gets_a_4xx_error_body(
    api: httpx.AsyncClient,
    admin_headers: dict[str, str],
    method: str,
    path: str,
    request_kwargs: dict[str, Any],
    expected: int,
) -> None:
    headers = {**admin_headers, **request_kwargs.pop("headers", {})}
    response = await api.request(method, path, headers=headers, **request_kwargs)
    assert response.status_code == expected, response.text
    body = response.json()
    assert set(body) == {"type", "message"}
    assert body["type"] == ("not_found" if expected == 404 else "invalid_request")


async def test_a_ticket_id_in_other_digits_is_not_an_alias(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """``TKT-`` and Arabic-Indic digits is not the ticket with those ASCII digits."""
    created = await api.post("/v1/tickets", headers=admin_headers, json={"title": "digits"})
    assert created.status_code == 201, created.text
    number = created.json()["id"].removeprefix("TKT-")
    alias = "TKT-" + number.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    response = await api.get(f"/v1/tickets/{alias}", headers=admin_headers)
    assert response.status_code == 404, response.text
    assert response.json()["type"] == "not_found"


async def test_dry_run_on_a_unicode_digit_ticket_id_is_not_found(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await api.post("/v1/automation/rules", headers=admin_headers, json=SCHEDULED_RULE)
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    try:
        response = await api.post(
            f"/v1/automation/rules/{rule_id}/test",
            headers=admin_headers,
            json={"ticket_id": "TKT-²"},
        )
        assert response.status_code == 404, response.text
        assert response.json()["type"] == "not_found"
    finally:
        await api.delete(f"/v1/automation/rules/{rule_id}", headers=admin_headers)


async def test_an_update_on_a_closed_workflow_is_a_conflict(
    api: httpx.AsyncClient, app_state: Resources, admin_headers: dict[str, str]
) -> None:
    """Temporal's answer to an update that lands after the workflow closed is a 409."""
    created = await api.post(
        "/v1/workflows",
        headers=admin_headers,
        json={"name": "VPN Access Revocation", "task_queue": "itsm-network"},
    )
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    assert app_state.temporal is not None
    handle = app_state.temporal.get_workflow_handle(workflow_id)
    await handle.terminate(reason="closed before the update lands")

    async def pause_late() -> None:
        with temporal_errors(workflow_id):
            await handle.execute_update(PAUSE_UPDATE, ControlInput(reason="late"))

    with pytest.raises(ConflictError) as caught:
        await pause_late()
    assert status_of(caught.value) == 409, caught.value.message


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(RPCStatusCode.FAILED_PRECONDITION, 409, id="failed-precondition-is-409"),
        pytest.param(RPCStatusCode.UNAVAILABLE, 503, id="unavailable-stays-503"),
    ],
)
def test_temporal_refusing_an_operation_is_a_conflict(status: RPCStatusCode, expected: int) -> None:
    """Temporal's FAILED_PRECONDITION (e.g. a workflow past its update limit) is the caller's
    409; only a Temporal that cannot answer is a 503."""
    refusal = RPCError("the workflow cannot take this update", status, b"")

    def refused() -> None:
        with temporal_errors("wf_refusing"):
            raise refusal

    with pytest.raises(ServiceError) as caught:
        refused()
    assert status_of(caught.value) == expected, caught.value.message


async def test_one_unschedulable_rule_does_not_stop_reconciliation(
    app_state: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored interval Temporal cannot take is logged for its rule; the rules after it still
    get their schedules."""
    broken = Rule.model_validate({**SCHEDULED_RULE, "schedule_interval_s": 1e15})
    healthy = Rule.model_validate({**SCHEDULED_RULE, "schedule_interval_s": 1800})
    broken_id, healthy_id = new_id("rule"), new_id("rule")
    async with app_state.sessionmaker() as session:
        await insert_rule(session, row=new_rule_row(broken, rule_id=broken_id))
        await insert_rule(session, row=new_rule_row(healthy, rule_id=healthy_id))
    assert app_state.temporal is not None
    try:
        with caplog.at_level(logging.WARNING, logger="service.automation"):
            await reconcile_schedules(AutomationContext.of(app_state))
        described = await app_state.temporal.get_schedule_handle(schedule_id(healthy_id)).describe()
        assert described.id == schedule_id(healthy_id)
        assert any(broken_id in record.getMessage() for record in caplog.records)
    finally:
        async with app_state.sessionmaker() as session:
            await delete_rule(session, rule_id=broken_id)
            await delete_rule(session, rule_id=healthy_id)
        for rule_id in (broken_id, healthy_id):
            await delete_rule_schedule(app_state.temporal, rule_id=rule_id)
