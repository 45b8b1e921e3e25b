"""Helpers of the automation tests: rules and their executions read through the API."""

from __future__ import annotations

from typing import Any

import httpx
from waiting import eventually

__all__ = ["P1_RULE", "eventually", "executions", "settled"]

P1_RULE: dict[str, Any] = {
    "name": "Auto-assign P1 tickets to on-call",
    "trigger": "on_ticket_created",
    "conditions": {"priority": "P1", "category": "incident"},
    "action": {
        "type": "start_workflow",
        "workflow_name": "P1 Incident Response",
        "task_queue": "itsm-high-priority",
    },
}


async def executions(
    api: httpx.AsyncClient, rule_id: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """All executions of a rule (newest first, one page of 100)."""
    r = await api.get(
        f"/v1/automation/rules/{rule_id}/executions",
        headers=headers,
        params={"limit": 100, **params},
    )
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def settled(
    api: httpx.AsyncClient, rule_id: str, headers: dict[str, str], count: int
) -> list[dict[str, Any]]:
    """Wait until a rule has ``count`` executions, none pending; return them."""

    async def probe() -> list[dict[str, Any]] | None:
        data = await executions(api, rule_id, headers)
        if len(data) >= count and all(e["outcome"] != "pending" for e in data):
            return data
        return None

    return await eventually(probe)
