"""The rule endpoints: validation, cycles, pagination, auth, dry runs and executions' shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from automation_helpers import P1_RULE

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


def _updater(name: str, when: str, to: str) -> dict[str, Any]:
    return {
        "name": name,
        "trigger": "on_ticket_updated",
        "conditions": {"priority": when},
        "action": {"type": "update_field", "field": "priority", "value": to},
    }


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({**P1_RULE, "trigger": "on_full_moon"}, "trigger"),
        ({**P1_RULE, "action": {"type": "explode"}}, "action"),
        (
            {**P1_RULE, "action": {**P1_RULE["action"], "task_queue": "itsm-nowhere"}},
            "task_queue",
        ),
        ({**P1_RULE, "action": {"type": "start_workflow"}}, "workflow_name"),
        (
            {**P1_RULE, "action": {**P1_RULE["action"], "workflow_name": "Make Coffee"}},
            "no workflow named 'Make Coffee'",
        ),
        (
            {**P1_RULE, "action": {"type": "update_field", "field": "id", "value": "x"}},
            "field must be one of",
        ),
        (
            {**P1_RULE, "action": {"type": "update_field", "field": "priority", "value": "P9"}},
            "value for priority",
        ),
        ({**P1_RULE, "action": {"type": "send_notification", "message": "hi"}}, "recipient"),
        ({**P1_RULE, "conditions": {"shoe_size": 42}}, "shoe_size"),
        ({**P1_RULE, "conditions": {"priority": {"between": [1, 2]}}}, "unknown operator"),
        ({**P1_RULE, "conditions": {"status": {"changed_to": "open"}}}, "on_ticket_updated"),
        ({**P1_RULE, "schedule_interval_s": 60}, "only for scheduled"),
        ({"name": "no action", "trigger": "webhook"}, "action"),
        ({**P1_RULE, "name": ""}, "name"),
    ],
)
async def test_invalid_rules_are_refused_with_the_field_named(
    api: httpx.AsyncClient, write_headers: dict[str, str], body: dict[str, Any], fragment: str
) -> None:
    r = await api.post("/v1/automation/rules", headers=write_headers, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "invalid_request"
    assert fragment in r.json()["message"]


async def test_auth_on_every_rule_endpoint(
    api: httpx.AsyncClient, read_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    assert (await api.get("/v1/automation/rules")).status_code == 401
    r = await api.get("/v1/automation/rules", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert r.json()["type"] == "authentication_error"
    r = await api.post("/v1/automation/rules", headers=read_headers, json=P1_RULE)
    assert r.status_code == 403
    assert r.json()["type"] == "permission_error"
    rule = (await api.post("/v1/automation/rules", headers=write_headers, json=P1_RULE)).json()
    assert (
        await api.post(f"/v1/automation/rules/{rule['id']}/toggle", headers=read_headers)
    ).status_code == 403
    # Deleting needs the admin scope.
    r = await api.delete(f"/v1/automation/rules/{rule['id']}", headers=write_headers)
    assert r.status_code == 403
    assert (await api.get("/v1/tickets", headers={})).status_code == 401
    assert (await api.get("/v1/jobs/queues")).status_code == 401


async def test_cycle_is_refused_on_create_and_on_enable(
    api: httpx.AsyncClient, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    a = await api.post(
        "/v1/automation/rules", headers=write_headers, json=_updater("Lower P1", "P1", "P2")
    )
    assert a.status_code == 201, a.text
    b = await api.post(
        "/v1/automation/rules", headers=write_headers, json=_updater("Raise P2", "P2", "P1")
    )
    assert b.status_code == 409, b.text
    assert b.json()["type"] == "conflict"
    assert "'Lower P1'" in b.json()["message"]
    assert "'Raise P2'" in b.json()["message"]
    assert "cycle" in b.json()["message"]

    # Created disabled it is accepted; enabling it is refused, by toggle and by PATCH.
    b = await api.post(
        "/v1/automation/rules",
        headers=write_headers,
        json={**_updater("Raise P2", "P2", "P1"), "enabled": False},
    )
    assert b.status_code == 201
    bid = b.json()["id"]
    r = await api.post(f"/v1/automation/rules/{bid}/toggle", headers=write_headers)
    assert r.status_code == 409
    assert bid in r.json()["message"]
    r = await api.patch(
        f"/v1/automation/rules/{bid}", headers=write_headers, json={"enabled": True}
    )
    assert r.status_code == 409
    assert (await api.get(f"/v1/automation/rules/{bid}", headers=write_headers)).json()[
        "enabled"
    ] is False
    # Once the other rule is gone, enabling works.
    r = await api.delete(f"/v1/automation/rules/{a.json()['id']}", headers=admin_headers)
    assert r.status_code == 200
    r = await api.post(f"/v1/automation/rules/{bid}/toggle", headers=write_headers)
    assert r.status_code == 200
    assert r.json()["enabled"] is True
    await api.delete(f"/v1/automation/rules/{bid}", headers=admin_headers)


async def test_list_filters_and_cursor_pagination(
    api: httpx.AsyncClient, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    created = []
    for i in range(5):
        body = {
            "name": f"page rule {i}",
            "trigger": "webhook",
            "conditions": {"source": "pager"},
            "action": {"type": "send_notification", "recipient": "ops", "message": "hi"},
            "enabled": i % 2 == 0,
        }
        r = await api.post("/v1/automation/rules", headers=write_headers, json=body)
        assert r.status_code == 201
        created.append(r.json()["id"])
    r = await api.get(
        "/v1/automation/rules", headers=write_headers, params={"trigger": "webhook", "limit": 2}
    )
    page = r.json()
    assert set(page) == {"has_more", "data"}
    assert page["has_more"] is True
    assert [x["id"] for x in page["data"]] == created[::-1][:2]
    seen = [x["id"] for x in page["data"]]
    while page["has_more"]:
        page = (
            await api.get(
                "/v1/automation/rules",
                headers=write_headers,
                params={"trigger": "webhook", "limit": 2, "starting_after": seen[-1]},
            )
        ).json()
        seen += [x["id"] for x in page["data"]]
    assert seen[:5] == created[::-1]
    back = (
        await api.get(
            "/v1/automation/rules",
            headers=write_headers,
            params={"trigger": "webhook", "limit": 2, "ending_before": created[1]},
        )
    ).json()
    assert [x["id"] for x in back["data"]] == [created[3], created[2]]
    enabled = (
        await api.get(
            "/v1/automation/rules",
            headers=write_headers,
            params={"trigger": "webhook", "enabled": "false", "limit": 100},
        )
    ).json()["data"]
    assert {x["id"] for x in enabled} >= {created[1], created[3]}
    assert all(x["enabled"] is False for x in enabled)
    assert all("secret" not in x or x["secret"] is None for x in enabled)
    for bad in ({"limit": 0}, {"limit": 101}, {"enabled": "maybe"}, {"trigger": "x"}):
        r = await api.get("/v1/automation/rules", headers=write_headers, params=bad)
        assert r.status_code == 400, bad
        assert r.json()["type"] == "invalid_request"
    r = await api.get(
        "/v1/automation/rules", headers=write_headers, params={"starting_after": "rule_missing"}
    )
    assert r.status_code == 400
    for rule_id in created:
        await api.delete(f"/v1/automation/rules/{rule_id}", headers=admin_headers)
    assert (
        await api.get(f"/v1/automation/rules/{created[0]}", headers=write_headers)
    ).status_code == 404


async def test_patch_revalidates_and_keeps_unset_fields(
    api: httpx.AsyncClient, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    rule = (await api.post("/v1/automation/rules", headers=write_headers, json=P1_RULE)).json()
    r = await api.patch(
        f"/v1/automation/rules/{rule['id']}",
        headers=write_headers,
        json={"name": "Renamed", "conditions": {"priority": {"in": ["P1", "P2"]}}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Renamed"
    assert r.json()["action"] == rule["action"]
    assert r.json()["created_at"] == rule["created_at"]
    r = await api.patch(
        f"/v1/automation/rules/{rule['id']}",
        headers=write_headers,
        json={"action": {"type": "start_workflow", "workflow_name": "X", "task_queue": "nope"}},
    )
    assert r.status_code == 400
    assert "task_queue" in r.json()["message"]
    r = await api.patch(f"/v1/automation/rules/{rule['id']}", headers=write_headers, json={"x": 1})
    assert r.status_code == 400
    assert (
        await api.patch("/v1/automation/rules/rule_nothere", headers=write_headers, json={})
    ).status_code == 404
    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)


async def test_idempotency_key_creates_one_rule(
    api: httpx.AsyncClient, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    headers = {**write_headers, "Idempotency-Key": "rule-key-1"}
    first = await api.post("/v1/automation/rules", headers=headers, json=P1_RULE)
    second = await api.post("/v1/automation/rules", headers=headers, json=P1_RULE)
    assert first.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    other = await api.post(
        "/v1/automation/rules", headers=headers, json={**P1_RULE, "name": "different"}
    )
    assert other.status_code == 409
    await api.delete(f"/v1/automation/rules/{first.json()['id']}", headers=admin_headers)


async def test_dry_run_explains_and_does_nothing(
    api: httpx.AsyncClient, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    rule = (await api.post("/v1/automation/rules", headers=write_headers, json=P1_RULE)).json()
    ticket = (
        await api.post(
            "/v1/tickets",
            headers=write_headers,
            json={"title": "Disk full", "priority": "P2", "category": "incident"},
        )
    ).json()
    url = f"/v1/automation/rules/{rule['id']}/test"
    r = await api.post(url, headers=write_headers, json={"ticket_id": ticket["id"]})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["would_fire"] is False
    assert "priority" in result["reason"]
    assert "'P2'" in result["reason"]
    r = await api.post(
        url, headers=write_headers, json={"ticket_id": ticket["id"], "ticket": {"priority": "P1"}}
    )
    result = r.json()
    assert result["would_fire"] is True
    assert result["action"]["workflow_name"] == "P1 Incident Response"
    assert result["action"]["input"]["ticket_id"] == ticket["id"]
    assert "itsm-high-priority" in result["action"]["summary"]
    # Nothing was recorded.
    r = await api.get(f"/v1/automation/rules/{rule['id']}/executions", headers=write_headers)
    assert r.json() == {"has_more": False, "data": []}
    assert (await api.post(url, headers=write_headers, json={})).status_code == 400
    r = await api.post(url, headers=write_headers, json={"ticket_id": "TKT-999999"})
    assert r.status_code == 404
    await api.post(f"/v1/automation/rules/{rule['id']}/toggle", headers=write_headers)
    r = await api.post(
        url, headers=write_headers, json={"ticket_id": ticket["id"], "ticket": {"priority": "P1"}}
    )
    assert r.json()["would_fire"] is False
    assert "disabled" in r.json()["reason"]
    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)


async def test_openapi_lists_the_automation_endpoints(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]
    assert {"get", "post"} <= set(paths["/v1/automation/rules"])
    assert {"get", "patch", "delete"} <= set(paths["/v1/automation/rules/{rule_id}"])
    for path in (
        "/v1/automation/rules/{rule_id}/toggle",
        "/v1/automation/rules/{rule_id}/executions",
        "/v1/automation/rules/{rule_id}/test",
        "/v1/automation/webhooks/{rule_id}",
        "/v1/tickets",
        "/v1/tickets/{ticket_id}",
        "/v1/jobs/queues",
    ):
        assert path in paths
