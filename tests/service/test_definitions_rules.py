"""A workflow defined over the API is started by a rule: a real rule firing on a real ticket
event through the outbox, the engine in the real worker and Temporal; the workflow then
appears in the lists (by name and by ticket)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
import pytest
from test_definitions_api import DEFINITION
from waiting import eventually

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


async def test_a_rule_starts_a_definition_added_at_run_time(
    api: httpx.AsyncClient,
    worker: None,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    name = f"Mailbox On Request {uuid.uuid4().hex[:8]}"
    rule_body = {
        "name": f"start {name}",
        "trigger": "on_ticket_created",
        "conditions": {"title": name},
        "action": {"type": "start_workflow", "workflow_name": name, "task_queue": "itsm-workflows"},
    }
    # Before the definition exists, a rule may not name it.
    refused = await api.post("/v1/automation/rules", headers=write_headers, json=rule_body)
    assert refused.status_code == 400, refused.text
    assert "workflow_name" in refused.json()["message"]

    definition = copy.deepcopy(DEFINITION)
    defined = await api.post(
        f"/v1/workflow-definitions/{name}", headers=admin_headers, json=definition
    )
    assert defined.status_code == 201, defined.text
    created = await api.post("/v1/automation/rules", headers=write_headers, json=rule_body)
    assert created.status_code == 201, created.text
    rule = created.json()

    ticket = await api.post(
        "/v1/tickets", headers=write_headers, json={"title": name, "priority": "P3"}
    )
    assert ticket.status_code == 201, ticket.text
    ticket_id = ticket.json()["id"]

    async def fired() -> dict[str, Any] | None:
        response = await api.get(
            f"/v1/automation/rules/{rule['id']}/executions", headers=read_headers
        )
        assert response.status_code == 200, response.text
        done = [e for e in response.json()["data"] if e["outcome"] != "pending"]
        return done[0] if done else None

    execution = await eventually(fired, within_s=60)
    assert execution["outcome"] == "succeeded", execution
    workflow_id = execution["workflow_id"]

    async def listed(**params: Any) -> bool:
        response = await api.get("/v1/workflows", headers=read_headers, params=params)
        assert response.status_code == 200, response.text
        return any(w["id"] == workflow_id for w in response.json()["data"])

    await eventually(lambda: listed(ticket_id=ticket_id))
    await eventually(lambda: listed(name=name, limit=100))
    wf = (await api.get(f"/v1/workflows/{workflow_id}", headers=read_headers)).json()
    assert (wf["name"], wf["trigger_type"], wf["task_queue"]) == (
        name,
        "automatic",
        "itsm-workflows",
    )
    assert wf["timeline"][0]["event"] == "workflow_started"
    await api.post(f"/v1/workflows/{workflow_id}/cancel", headers=write_headers)
    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)
