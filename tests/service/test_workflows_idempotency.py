"""Idempotency-Key on the workflow POSTs: the same key gets the first answer, never a second
workflow; the same key with another request is a conflict."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

BODY = {
    "name": "Laptop Provisioning - New Hire",
    "task_queue": "itsm-accessories",
    "input": {"ticket_id": "TKT-77"},
}


async def test_same_key_same_workflow(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    headers = {**write_headers, "Idempotency-Key": "create-laptop-77"}
    answers = await asyncio.gather(
        *(api.post("/v1/workflows", headers=headers, json=BODY) for _ in range(6))
    )
    assert {r.status_code for r in answers} == {201}
    assert len({r.json()["id"] for r in answers}) == 1
    later = await api.post("/v1/workflows", headers=headers, json=BODY)
    assert later.json()["id"] == answers[0].json()["id"]

    other = await api.post(
        "/v1/workflows", headers=headers, json={**BODY, "input": {"ticket_id": "TKT-78"}}
    )
    assert other.status_code == 409
    assert other.json()["type"] == "conflict"

    fresh = await api.post(
        "/v1/workflows", headers={**write_headers, "Idempotency-Key": "another"}, json=BODY
    )
    assert fresh.json()["id"] != answers[0].json()["id"]
    # keys belong to the caller: another token's same key is another request
    stranger = await api.post(
        "/v1/workflows",
        headers={**admin_headers, "Idempotency-Key": "create-laptop-77"},
        json=BODY,
    )
    assert stranger.status_code == 201
    assert stranger.json()["id"] != answers[0].json()["id"]
    for wf in {answers[0].json()["id"], fresh.json()["id"], stranger.json()["id"]}:
        await api.post(f"/v1/workflows/{wf}/cancel", headers=write_headers)


async def test_retried_signal_and_cancel_answer_the_first_time(
    api: httpx.AsyncClient, worker: None, write_headers: dict[str, str], wait_for: Any
) -> None:
    wf = (await api.post("/v1/workflows", headers=write_headers, json=BODY)).json()["id"]
    await wait_for(wf, "active", steps_completed=1)
    signal = {"signal_name": "approval_received", "payload": {"decision": "approved"}}
    headers = {**write_headers, "Idempotency-Key": f"approve-{wf}"}
    first = await api.post(f"/v1/workflows/{wf}/signal", headers=headers, json=signal)
    second = await api.post(f"/v1/workflows/{wf}/signal", headers=headers, json=signal)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()

    cancel_headers = {**write_headers, "Idempotency-Key": f"cancel-{wf}"}
    cancelled = await api.post(f"/v1/workflows/{wf}/cancel", headers=cancel_headers)
    repeated = await api.post(f"/v1/workflows/{wf}/cancel", headers=cancel_headers)
    assert cancelled.status_code == repeated.status_code == 200
    assert cancelled.json() == repeated.json()
    assert cancelled.json()["status"] == "failed"
