"""The OpenAPI document describes every workflow endpoint, its models and its errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


@pytest.fixture(scope="module")
async def document(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def _ref(schema: dict[str, Any]) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[-1]


async def test_every_workflow_endpoint_is_described(document: dict[str, Any]) -> None:
    paths = document["paths"]
    expected = {
        ("/v1/workflows", "get"): "WorkflowPage",
        ("/v1/workflows", "post"): "Workflow",
        ("/v1/workflows/{workflow_id}", "get"): "Workflow",
        ("/v1/workflows/{workflow_id}/status", "get"): "WorkflowStatusView",
        ("/v1/workflows/{workflow_id}/signal", "post"): "SignalResult",
        ("/v1/workflows/{workflow_id}/cancel", "post"): "CancelResult",
        ("/v1/workflows/{workflow_id}/pause", "post"): "ControlResult",
        ("/v1/workflows/{workflow_id}/resume", "post"): "ControlResult",
    }
    operation_ids = set()
    for (path, method), model in expected.items():
        operation = paths[path][method]
        operation_ids.add(operation["operationId"])
        answer = "201" if (path, method) == ("/v1/workflows", "post") else "200"
        ok = operation["responses"][answer]["content"]["application/json"]["schema"]
        assert _ref(ok) == model, (path, method)
        for code in ("401", "403", "404", "503"):
            if path == "/v1/workflows" and code == "404":
                continue
            error = operation["responses"][code]["content"]["application/json"]["schema"]
            assert _ref(error) == "ErrorBody", (path, method, code)
        assert operation["security"] == [{"HTTPBearer": []}]
        assert operation["summary"]
        assert operation["description"]
    assert len(operation_ids) == len(expected)
    listing = {p["name"] for p in paths["/v1/workflows"]["get"]["parameters"]}
    assert listing == {
        "status",
        "task_queue",
        "ticket_id",
        "name",
        "trigger_type",
        "created_after",
        "created_before",
        "limit",
        "starting_after",
        "ending_before",
        "timestamps",
    }
    create = paths["/v1/workflows"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"]}


async def test_models_carry_the_spec_fields_and_enums(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    workflow = schemas["Workflow"]["properties"]
    assert set(workflow) == {
        "id",
        "name",
        "status",
        "trigger_type",
        "task_queue",
        "started_at",
        "completed_at",
        "timeline",
        "ticket_id",  # beside the page's fields: the structured fields the analyses read
    }
    assert schemas["WorkflowStatus"]["enum"] == [
        "draft",
        "active",
        "paused",
        "completed",
        "failed",
        "archived",
    ]
    assert schemas["TriggerType"]["enum"] == ["automatic", "manual", "scheduled", "event_based"]
    assert len(schemas["TaskQueue"]["enum"]) == 5
    assert set(schemas["TimelineEntry"]["properties"]) == {
        "event",
        "timestamp",
        "detail",
        "step",
        "attempt",
        "outcome",
        "actor",
    }
    assert schemas["Outcome"]["enum"] == [
        "completed",
        "timed_out",
        "rejected",
        "cancelled",
        "failed",
    ]
    assert len(schemas["EventType"]["enum"]) == 12
    assert set(schemas["WorkflowCreate"]["required"]) == {"name", "task_queue"}
    assert set(schemas["SignalRequest"]["required"]) == {"signal_name"}
    assert set(schemas["WorkflowPage"]["properties"]) == {"has_more", "data"}
    assert set(schemas["ErrorBody"]["properties"]) == {"type", "message"}
    assert set(schemas["SignalResult"]["properties"]) == {
        "id",
        "signal_name",
        "accepted",
        "reason",  # why a signal was not accepted
        "status",
        "current_step",
    }


async def test_ticket_filter_and_timestamp_format_are_described(document: dict[str, Any]) -> None:
    paths, schemas = document["paths"], document["components"]["schemas"]
    listing = {p["name"]: p for p in paths["/v1/workflows"]["get"]["parameters"]}
    ticket = listing["ticket_id"]
    assert ticket["description"]
    pattern = next(s for s in ticket["schema"]["anyOf"] if s.get("type") == "string")
    assert pattern["pattern"] == "^TKT-[0-9]{1,12}$"
    assert pattern["maxLength"] == 16
    for path in (
        "/v1/workflows",
        "/v1/workflows/{workflow_id}",
        "/v1/workflows/{workflow_id}/status",
    ):
        parameter = {p["name"]: p for p in paths[path]["get"]["parameters"]}["timestamps"]
        assert "sub-second" in parameter["description"]
        assert _ref(parameter["schema"]) == "Timestamps"
    assert schemas["Timestamps"]["enum"] == ["int", "float"]

    def number(schema: dict[str, Any]) -> None:
        kinds = {s.get("type") for s in schema["anyOf"]}
        assert {"integer", "number"} <= kinds, schema
        assert "sub-second" in schema["description"] or "float" in schema["description"]

    number(schemas["TimelineEntry"]["properties"]["timestamp"])
    number(schemas["Workflow"]["properties"]["started_at"])
    number(schemas["Workflow"]["properties"]["completed_at"])
    number(schemas["WorkflowStatusView"]["properties"]["started_at"])
