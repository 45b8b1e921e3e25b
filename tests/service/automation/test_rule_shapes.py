"""Rule shapes: the action echoed as sent, only the fields of the rule's trigger, a webhook
secret only where it is created or rotated, and the list's action and workflow filters."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from automation_helpers import P1_RULE

from service.jobs.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

TRIGGER_FIELDS = {"schedule_interval_s", "schedule_cron", "webhook_url", "secret"}
COMMON = {"id", "name", "trigger", "conditions", "enabled", "created_at", "updated_at"}


def _signed(body: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    stamp = int(time.time())
    return raw, {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: sign(raw, secret=secret, timestamp=stamp),
    }


async def _create(api: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    r = await api.post("/v1/automation/rules", headers=headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_ticket_rule_is_answered_as_sent_without_fields_of_other_triggers(
    api: httpx.AsyncClient, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    rule = await _create(api, write_headers, P1_RULE)
    assert set(rule) == COMMON | {"action"}
    assert rule["action"] == P1_RULE["action"]  # no trigger_type, no input added
    for read in (
        (await api.get(f"/v1/automation/rules/{rule['id']}", headers=write_headers)).json(),
        next(
            r
            for r in (
                await api.get("/v1/automation/rules", headers=write_headers, params={"limit": 100})
            ).json()["data"]
            if r["id"] == rule["id"]
        ),
    ):
        assert read == rule
    # What was sent, defaults included, is what is echoed.
    sent = {**P1_RULE["action"], "trigger_type": "automatic", "input": {}}
    r = await api.patch(
        f"/v1/automation/rules/{rule['id']}", headers=write_headers, json={"action": sent}
    )
    assert r.status_code == 200, r.text
    assert r.json()["action"] == sent
    assert set(r.json()) == COMMON | {"action"}
    # Toggling does not add anything either.
    await api.post(f"/v1/automation/rules/{rule['id']}/toggle", headers=write_headers)
    shown = (await api.get(f"/v1/automation/rules/{rule['id']}", headers=write_headers)).json()
    assert shown["action"] == sent
    assert shown["enabled"] is False
    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)


async def test_scheduled_rules_show_their_schedule_and_nothing_of_webhooks(
    api: httpx.AsyncClient, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    body = {**P1_RULE, "trigger": "scheduled", "conditions": {"idle_hours": 48}, "enabled": False}
    hourly = await _create(api, write_headers, body)
    assert set(hourly) & TRIGGER_FIELDS == set()  # as sent: no schedule given, hourly
    every = await _create(api, write_headers, {**body, "schedule_interval_s": 600})
    assert set(every) & TRIGGER_FIELDS == {"schedule_interval_s"}
    assert every["schedule_interval_s"] == 600
    cron = await _create(api, write_headers, {**body, "schedule_cron": "0 9 * * mon-fri"})
    assert set(cron) & TRIGGER_FIELDS == {"schedule_cron"}
    assert cron["schedule_cron"] == "0 9 * * mon-fri"
    for rule in (hourly, every, cron):
        await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)


async def test_a_webhook_secret_is_shown_at_creation_and_rotation_only(
    api: httpx.AsyncClient,
    worker: None,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    rule = await _create(
        api,
        write_headers,
        {
            "name": "Inbound alerts",
            "trigger": "webhook",
            "conditions": {"source": "shape-test"},
            "action": {"type": "send_notification", "recipient": "ops", "message": "alert"},
        },
    )
    assert set(rule) & TRIGGER_FIELDS == {"webhook_url", "secret"}
    url, first = rule["webhook_url"], rule["secret"]
    listed = (
        await api.get(
            "/v1/automation/rules",
            headers=read_headers,
            params={"trigger": "webhook", "limit": 100},
        )
    ).json()["data"]
    shown = (await api.get(f"/v1/automation/rules/{rule['id']}", headers=read_headers)).json()
    patched = (
        await api.patch(
            f"/v1/automation/rules/{rule['id']}", headers=write_headers, json={"name": "Alerts"}
        )
    ).json()
    for view in [shown, patched, *[r for r in listed if r["id"] == rule["id"]]]:
        assert set(view) & TRIGGER_FIELDS == {"webhook_url"}, view

    payload = {"source": "shape-test"}
    raw, headers = _signed(payload, first)
    assert (await api.post(url, content=raw, headers=headers)).status_code == 202

    # Rotation needs the write scope, answers the new secret once, and the old one stops.
    rotate = f"/v1/automation/rules/{rule['id']}/secret"
    assert (await api.post(rotate, headers=read_headers)).status_code == 403
    r = await api.post(rotate, headers=write_headers)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"id", "secret", "rotated_at"}
    second = r.json()["secret"]
    assert second.startswith("whsec_")
    assert second != first
    raw, headers = _signed(payload | {"n": 2}, first)
    r = await api.post(url, content=raw, headers=headers)
    assert r.status_code == 401, r.text
    raw, headers = _signed(payload | {"n": 3}, second)
    assert (await api.post(url, content=raw, headers=headers)).status_code == 202
    shown = (await api.get(f"/v1/automation/rules/{rule['id']}", headers=read_headers)).json()
    assert "secret" not in shown

    # Only webhook rules have a secret to rotate; unknown rules are not found.
    other = await _create(api, write_headers, {**P1_RULE, "enabled": False})
    r = await api.post(f"/v1/automation/rules/{other['id']}/secret", headers=write_headers)
    assert r.status_code == 409
    assert r.json()["type"] == "conflict"
    r = await api.post("/v1/automation/rules/rule_nothere/secret", headers=write_headers)
    assert r.status_code == 404

    # A rule that becomes a webhook rule shows its new secret in that PATCH's answer, once.
    r = await api.patch(
        f"/v1/automation/rules/{other['id']}",
        headers=write_headers,
        json={"trigger": "webhook", "conditions": {}},
    )
    assert r.status_code == 200, r.text
    assert set(r.json()) & TRIGGER_FIELDS == {"webhook_url", "secret"}
    again = (await api.get(f"/v1/automation/rules/{other['id']}", headers=read_headers)).json()
    assert "secret" not in again
    for made in (rule, other):
        await api.delete(f"/v1/automation/rules/{made['id']}", headers=admin_headers)


async def test_rules_filter_by_action_type_and_started_workflow_with_the_cursor(
    api: httpx.AsyncClient,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    start_vpn = {
        "type": "start_workflow",
        "workflow_name": "VPN Access Revocation",
        "task_queue": "itsm-network",
    }
    notify = {"type": "send_notification", "recipient": "ops", "message": "filter test"}
    demote = {"type": "update_field", "field": "priority", "value": "P4"}
    made = [
        await _create(
            api,
            write_headers,
            {"name": f"filter {i}", "trigger": "on_ticket_created", "enabled": False, **spec},
        )
        for i, spec in enumerate(
            [
                {"action": start_vpn},
                {"action": notify},
                {"actions": [notify, start_vpn]},
                {"actions": [demote, notify]},
                {"action": {**start_vpn, "workflow_name": "Password Reset"}},
            ]
        )
    ]
    ids = [m["id"] for m in made]

    async def listed(**params: Any) -> list[str]:
        found: list[str] = []
        cursor: str | None = None
        while True:
            query: dict[str, Any] = {**params, "limit": 1}
            if cursor is not None:
                query["starting_after"] = cursor
            r = await api.get("/v1/automation/rules", headers=read_headers, params=query)
            assert r.status_code == 200, r.text
            page = r.json()
            found += [rule["id"] for rule in page["data"] if rule["id"] in ids]
            if not page["has_more"]:
                return found
            cursor = page["data"][-1]["id"]

    newest_first = ids[::-1]
    assert await listed(workflow_name="VPN Access Revocation") == [ids[2], ids[0]]
    assert await listed(action_type="send_notification") == [ids[3], ids[2], ids[1]]
    assert await listed(action_type="update_field") == [ids[3]]
    assert await listed(action_type="start_workflow", enabled="false") == [
        i for i in newest_first if i in (ids[0], ids[2], ids[4])
    ]
    assert await listed(action_type="start_workflow", workflow_name="Password Reset") == [ids[4]]
    assert await listed(action_type="update_field", workflow_name="Password Reset") == []

    # Replacing a rule's actions moves it between the filters.
    r = await api.patch(
        f"/v1/automation/rules/{ids[1]}", headers=write_headers, json={"action": demote}
    )
    assert r.status_code == 200, r.text
    assert await listed(action_type="update_field") == [ids[3], ids[1]]
    assert await listed(action_type="send_notification") == [ids[3], ids[2]]

    r = await api.get(
        "/v1/automation/rules", headers=read_headers, params={"action_type": "explode"}
    )
    assert r.status_code == 400
    r = await api.get(
        "/v1/automation/rules", headers=read_headers, params={"workflow_name": "x" * 201}
    )
    assert r.status_code == 400
    for rule_id in ids:
        await api.delete(f"/v1/automation/rules/{rule_id}", headers=admin_headers)
    assert await listed(action_type="update_field") == []
