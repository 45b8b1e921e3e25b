"""Smoke: a workflow started through the API runs to completion on the real worker."""

from __future__ import annotations

import asyncio

import httpx
import pytest

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


async def test_vpn_revocation_runs(
    api: httpx.AsyncClient, worker: None, write_headers: dict[str, str]
) -> None:
    r = await api.post(
        "/v1/workflows",
        headers=write_headers,
        json={
            "name": "VPN Access Revocation",
            "task_queue": "itsm-network",
            "input": {"ticket_id": "TKT-5102", "user_id": "usr_9xKmPq"},
            "time_scale": 100000,
        },
    )
    assert r.status_code == 200, r.text
    wf = r.json()
    print(wf)
    for _ in range(100):
        s = await api.get(f"/v1/workflows/{wf['id']}/status", headers=write_headers)
        print(s.json())
        if s.json()["status"] != "active":
            break
        await asyncio.sleep(0.2)
    g = await api.get(f"/v1/workflows/{wf['id']}", headers=write_headers)
    for e in g.json()["timeline"]:
        print(e)
    assert g.json()["status"] == "completed"
