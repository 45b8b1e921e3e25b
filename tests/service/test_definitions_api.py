"""Workflow definitions over the API against the real service: the catalog listed as version 1,
a definition added and versioned by an admin, validated like the YAML and bounded, started by
POST /v1/workflows, and a running workflow keeping the version it started with."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
import pytest

from protocol_lab.domain import load_catalog

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

BASE = "/v1/workflow-definitions"

DEFINITION: dict[str, Any] = {
    "task_queue": "itsm-workflows",
    "description": "Grant a shared mailbox after the owner approves.",
    "category": "access",
    "steps": [
        {
            "id": "owner_approval",
            "kind": "signal",
            "signal": "approval_received",
            "detail": "Awaiting mailbox owner approval",
            "done": "Mailbox owner approved",
            "timeout_s": 86400,
        },
        {
            "id": "grant_access",
            "kind": "activity",
            "activity": "integration",
            "integration": "exchange",
            "detail": "Granting mailbox access",
            "done": "Mailbox access granted",
            "duration": {"dist": "fixed", "seconds": 5},
        },
    ],
}


def fresh_name() -> str:
    return f"Shared Mailbox {uuid.uuid4().hex[:8]}"


async def test_the_catalog_is_listed_as_version_1(
    api: httpx.AsyncClient, read_headers: dict[str, str]
) -> None:
    response = await api.get(BASE, headers=read_headers)
    assert response.status_code == 200, response.text
    listed = {d["name"]: d for d in response.json()["data"]}
    catalog = load_catalog()
    assert set(catalog) <= set(listed)
    laptop = listed["Laptop Provisioning - New Hire"]
    assert (laptop["version"], laptop["builtin"], laptop["created_at"]) == (1, True, None)
    assert laptop["task_queue"] == "itsm-accessories"
    assert laptop["signals"] == sorted(catalog["Laptop Provisioning - New Hire"].signals)
    waits = [s for s in laptop["steps"] if s["kind"] == "signal"]
    assert waits
    assert all(s["timeout_s"] > 0 and s["on_timeout"] for s in waits)
    one = await api.get(f"{BASE}/Laptop Provisioning - New Hire", headers=read_headers)
    assert one.json() == laptop
    missing = await api.get(f"{BASE}/No Such Workflow", headers=read_headers)
    assert missing.status_code == 404


async def test_an_admin_adds_and_versions_a_definition(
    api: httpx.AsyncClient,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    name = fresh_name()
    refused = await api.post(f"{BASE}/{name}", headers=write_headers, json=DEFINITION)
    assert refused.status_code == 403
    created = await api.post(f"{BASE}/{name}", headers=admin_headers, json=DEFINITION)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["version"], body["builtin"]) == (name, 1, False)
    assert body["signals"] == ["approval_received"]
    assert body["steps"][0]["timeout_s"] == 86400
    again = await api.post(f"{BASE}/{name}", headers=admin_headers, json=DEFINITION)
    assert again.status_code == 409

    changed = copy.deepcopy(DEFINITION)
    changed["steps"][1]["done"] = "Mailbox access granted (v2)"
    second = await api.put(f"{BASE}/{name}", headers=admin_headers, json=changed)
    assert second.status_code == 201, second.text
    assert second.json()["version"] == 2
    retried = await api.put(f"{BASE}/{name}", headers=admin_headers, json=changed)
    assert (retried.status_code, retried.json()["version"]) == (200, 2)

    listed = (await api.get(BASE, headers=read_headers)).json()["data"]
    assert [d["version"] for d in listed if d["name"] == name] == [2]
    first = await api.get(f"{BASE}/{name}", headers=read_headers, params={"version": 1})
    assert first.json()["steps"][1]["done"] == "Mailbox access granted"

    in_body = await api.post(BASE, headers=admin_headers, json={**DEFINITION, "name": fresh_name()})
    assert in_body.status_code == 201, in_body.text


async def test_a_builtin_definition_is_versioned_from_2(
    api: httpx.AsyncClient, read_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    builtin = (await api.get(f"{BASE}/Password Reset", headers=read_headers)).json()
    body = {k: builtin[k] for k in ("task_queue", "description", "category", "steps")}
    same = await api.put(f"{BASE}/Password Reset", headers=admin_headers, json=body)
    assert (same.status_code, same.json()["version"]) == (200, 1)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d["steps"][1].update(activity="teleport"), "activity"),
        (lambda d: d["steps"].append(copy.deepcopy(d["steps"][0])), "duplicate step id"),
        (lambda d: d["steps"][0].update(timeout_s=-1), "timeout_s"),
        (lambda d: d["steps"][0].update(timeout_s=90 * 86400), "timeout_s"),
        (lambda d: d["steps"][0].update(detail="x" * 500), "200 characters"),
        (lambda d: d.update(steps=[]), "steps"),
        (
            lambda d: d.update(
                steps=[{**d["steps"][1], "id": f"s{i}", "kind": "activity"} for i in range(51)]
            ),
            "steps",
        ),
        (lambda d: d.update(name="Another Name"), "differs"),
        (lambda d: d.update(task_queue="itsm-nowhere"), "task_queue"),
        (lambda d: d["steps"][1].update(activity="enqueue_job"), "queue"),
    ],
)
async def test_bad_definitions_are_refused_with_the_field(
    api: httpx.AsyncClient, admin_headers: dict[str, str], change: Any, needle: str
) -> None:
    definition = copy.deepcopy(DEFINITION)
    change(definition)
    response = await api.post(f"{BASE}/{fresh_name()}", headers=admin_headers, json=definition)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "invalid_request"
    assert needle in response.json()["message"]


@pytest.mark.parametrize(("name", "code"), [(" leading", 400), ("x" * 101, 400), ("a/b", 404)])
async def test_bad_names_are_refused(
    api: httpx.AsyncClient, admin_headers: dict[str, str], name: str, code: int
) -> None:
    response = await api.put(f"{BASE}/{name}", headers=admin_headers, json=DEFINITION)
    assert response.status_code == code, response.text


async def test_a_defined_workflow_runs_and_keeps_its_version(
    api: httpx.AsyncClient,
    worker: None,
    read_headers: dict[str, str],
    admin_headers: dict[str, str],
    wait_for: Any,
) -> None:
    name = fresh_name()
    created = await api.post(f"{BASE}/{name}", headers=admin_headers, json=DEFINITION)
    assert created.status_code == 201, created.text
    started = await api.post(
        "/v1/workflows",
        headers=admin_headers,
        json={"name": name, "task_queue": "itsm-workflows", "input": {"ticket_id": "TKT-9001"}},
    )
    assert started.status_code == 201, started.text
    wf = started.json()
    assert wf["name"] == name
    status = await wait_for(wf["id"], "active")
    assert status["current_step"] == "Awaiting mailbox owner approval"
    assert status["steps_total"] == 2

    changed = copy.deepcopy(DEFINITION)
    changed["steps"][1]["done"] = "Mailbox access granted (v2)"
    changed["steps"].append({**changed["steps"][1], "id": "notify_owner"})
    assert (await api.put(f"{BASE}/{name}", headers=admin_headers, json=changed)).status_code == 201

    signal = {"signal_name": "approval_received", "payload": {"decision": "approved"}}
    signalled = await api.post(
        f"/v1/workflows/{wf['id']}/signal", headers=admin_headers, json=signal
    )
    assert signalled.status_code in (200, 202), signalled.text
    done = await wait_for(wf["id"], "completed")
    assert (done["steps_completed"], done["steps_total"]) == (2, 2)
    timeline = (await api.get(f"/v1/workflows/{wf['id']}", headers=read_headers)).json()["timeline"]
    texts = [event["detail"] for event in timeline]
    assert "Mailbox access granted" in texts
    assert "Mailbox access granted (v2)" not in texts

    newer = await api.post(
        "/v1/workflows", headers=admin_headers, json={"name": name, "task_queue": "itsm-workflows"}
    )
    assert (await wait_for(newer.json()["id"], "active"))["steps_total"] == 3
    await api.post(f"/v1/workflows/{newer.json()['id']}/cancel", headers=admin_headers)


async def test_an_unknown_name_lists_the_defined_ones(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    name = fresh_name()
    await api.post(f"{BASE}/{name}", headers=admin_headers, json=DEFINITION)
    response = await api.post(
        "/v1/workflows",
        headers=admin_headers,
        json={"name": "Nothing Like It", "task_queue": "itsm-workflows"},
    )
    assert response.status_code == 400
    assert name in response.json()["message"]
    assert "Password Reset" in response.json()["message"]


async def test_every_create_is_documented_as_201(api: httpx.AsyncClient) -> None:
    document = (await api.get("/openapi.json")).json()
    paths = document["paths"]
    creates = [
        "/v1/workflows",
        "/v1/automation/rules",
        "/v1/tickets",
        "/v1/workflow-definitions",
        "/v1/workflow-definitions/{name}",
    ]
    for path in creates:
        answers = paths[path]["post"]["responses"]
        assert "201" in answers, path
        assert "200" not in answers, path
    put = paths["/v1/workflow-definitions/{name}"]["put"]["responses"]
    assert {"200", "201", "403", "409"} <= set(put)
    listed = paths["/v1/workflow-definitions"]["get"]["responses"]["200"]
    assert listed["content"]["application/json"]["schema"]["$ref"].endswith(
        "WorkflowDefinitionList"
    )
    start = paths["/v1/workflows/{workflow_id}/start"]["post"]["responses"]
    assert {"200", "409"} <= set(start)
