"""Webhook rules: signed deliveries fire; forged, stale or unsigned ones get 401, fire nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from automation_helpers import eventually, executions, settled
from sqlalchemy import func, select

from service.jobs.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from service.state import Resources
from service.store.outbox import OutboxRow

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


def _signed(
    body: dict[str, Any], secret: str, *, at: float | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    stamp = int(time.time() if at is None else at)
    return raw, {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: sign(raw, secret=secret, timestamp=stamp),
    }


async def _events(app_state: Resources) -> int:
    async with app_state.sessionmaker() as session:
        return int((await session.execute(select(func.count(OutboxRow.id)))).scalar() or 0)


async def test_signed_webhook_fires_and_forged_fires_nothing(
    api: httpx.AsyncClient,
    worker: None,
    app_state: Resources,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    ticket = (
        await api.post("/v1/tickets", headers=write_headers, json={"title": "Pager alert"})
    ).json()
    r = await api.post(
        "/v1/automation/rules",
        headers=write_headers,
        json={
            "name": "Pager alerts notify ops",
            "trigger": "webhook",
            "conditions": {"source": "pager", "alert.severity": {"in": ["critical"]}},
            "action": {
                "type": "send_notification",
                "recipient": "ops-team",
                "message": "Critical alert on {ticket_id}: {title}",
            },
        },
    )
    assert r.status_code == 201, r.text
    rule = r.json()
    secret = rule["secret"]
    assert secret.startswith("whsec_")
    url = f"/v1/automation/webhooks/{rule['id']}"
    assert rule["webhook_url"] == url
    # The secret is shown once.
    shown = (await api.get(f"/v1/automation/rules/{rule['id']}", headers=write_headers)).json()
    assert shown.get("secret") is None

    payload = {"source": "pager", "alert": {"severity": "critical"}, "ticket_id": ticket["id"]}
    before = await _events(app_state)
    forged_raw, forged = _signed(payload, "whsec_not-the-secret")
    r = await api.post(url, content=forged_raw, headers=forged)
    assert r.status_code == 401
    assert r.json()["type"] == "authentication_error"
    stale_raw, stale = _signed(payload, secret, at=time.time() - 3600)
    r = await api.post(url, content=stale_raw, headers=stale)
    assert r.status_code == 401
    assert "replay window" in r.json()["message"]
    r = await api.post(url, content=json.dumps(payload).encode())
    assert r.status_code == 401
    raw, good = _signed(payload, secret)
    tampered = raw.replace(b"critical", b"critical", 1) + b" "
    assert (await api.post(url, content=tampered, headers=good)).status_code == 401
    assert await _events(app_state) == before

    r = await api.post(url, content=raw, headers=good)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] is True
    [fired] = await settled(api, rule["id"], write_headers, 1)
    assert fired["outcome"] == "succeeded", fired
    assert fired["trigger"] == "webhook"
    assert fired["ticket_id"] == ticket["id"]
    assert fired["job_id"]

    # The same delivery replayed inside the window fires nothing more.
    r = await api.post(url, content=raw, headers=good)
    assert r.status_code == 202
    replay_event = r.json()["event_id"]

    async def replay_done() -> bool:
        async with app_state.sessionmaker() as session:
            row = await session.get(OutboxRow, replay_event, populate_existing=True)
        return row is not None and row.status == "done"

    await eventually(replay_done)
    assert len(await executions(api, rule["id"], write_headers)) == 1

    # A payload that does not match the conditions fires nothing.
    raw2, good2 = _signed({**payload, "source": "email"}, secret)
    r = await api.post(url, content=raw2, headers=good2)
    assert r.status_code == 202

    async def notified() -> list[dict[str, Any]] | None:
        # the rule's own: other tests' rules, still enabled, may notify on the ticket too
        r = await api.get(f"/v1/tickets/{ticket['id']}/notifications", headers=write_headers)
        return [note for note in r.json()["data"] if note["rule_id"] == rule["id"]] or None

    [note] = await eventually(notified)
    assert note["recipient"] == "ops-team"
    assert note["message"] == f"Critical alert on {ticket['id']}: Pager alert"
    assert len(await executions(api, rule["id"], write_headers)) == 1

    # Unknown rules and non-webhook rules are not found; bodies must be JSON objects.
    assert (
        await api.post("/v1/automation/webhooks/rule_nothere", content=raw, headers=good)
    ).status_code == 404
    raw3, good3 = _signed([1, 2], secret)  # type: ignore[arg-type]
    assert (await api.post(url, content=raw3, headers=good3)).status_code == 400
    # Disabled: a valid delivery is refused.
    await api.post(f"/v1/automation/rules/{rule['id']}/toggle", headers=write_headers)
    raw4, good4 = _signed(payload | {"n": 4}, secret)
    assert (await api.post(url, content=raw4, headers=good4)).status_code == 409
    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)
