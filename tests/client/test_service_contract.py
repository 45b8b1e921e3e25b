"""Every request the client makes is one the real service declares in its OpenAPI document.

The client is driven through a MockTransport that checks each request against
``service.app.create_app().openapi()``: the path and method exist, every query parameter and
body field is declared, required body fields are present, and every POST the service
deduplicates carries an ``Idempotency-Key``. Each request is answered with an example of the
operation's documented success schema (every required field, the first enum value), which the
client must parse into its model, so a method that expects another model than the operation
answers fails. The app is only built, not started.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from protocol_lab.client import Client, NotFoundError
from service.app import create_app

JSONObject = dict[str, Any]


class OpenApiChecker:
    """A MockTransport handler that records how requests depart from an OpenAPI document."""

    def __init__(self, spec: JSONObject) -> None:
        self.spec = spec
        self.problems: list[str] = []
        self.called: set[tuple[str, str]] = set()
        self.routes = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path, ops)
            for path, ops in spec["paths"].items()
        ]

    def _resolve(self, schema: JSONObject) -> JSONObject:
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.spec["components"]["schemas"][name]
        for option in schema.get("anyOf", []):
            if option.get("type") != "null":
                return self._resolve(option)
        return schema

    def example(self, schema: JSONObject, name: str = "") -> Any:
        """A value of ``schema``: required fields (and constants), one alternative, one array
        item."""
        while "$ref" in schema:
            schema = self.spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][0]
        if "oneOf" in schema:
            # The last shape: for steps a signal step, free of the cross-field rules an
            # activity step has (an integration step names its integration).
            return self.example(schema["oneOf"][-1], name)
        if "anyOf" in schema:
            real = [o for o in schema["anyOf"] if o.get("type") != "null"]
            return self.example(real[0], name) if real else None
        kind = schema.get("type")
        if kind == "object" and "properties" in schema:
            required = schema.get("required", [])
            return {
                field: self.example(prop, field)
                for field, prop in schema["properties"].items()
                if field in required or "const" in prop  # an answer carries its tags
            }
        examples: JSONObject = {"object": {}, "string": "x_1", "integer": 1, "number": 1.5}
        if kind == "array":
            return [self.example(schema.get("items", {}), name)]
        if kind == "boolean":
            return name != "has_more"  # a one-page list
        return examples.get(str(kind))

    def answer(self, op: JSONObject) -> httpx.Response:
        """The operation's first documented success, with an example body."""
        code = min(c for c in op["responses"] if c.startswith("2"))
        content = op["responses"][code].get("content", {}).get("application/json")
        if content is None:
            return httpx.Response(int(code))
        return httpx.Response(int(code), json=self.example(content["schema"]))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode("ascii").split("?")[0]
        method = request.method.lower()
        where = f"{request.method} {path}"
        matches = [(t, ops) for rx, t, ops in self.routes if rx.match(path)]
        if not matches or method not in matches[0][1]:
            self.problems.append(f"{where}: no such operation")
            return httpx.Response(404, json={"type": "not_found", "message": "no route"})
        template, ops = matches[0]
        op = ops[method]
        self.called.add((request.method, template))
        declared = {p["name"]: p for p in op.get("parameters", [])}
        queries = {n for n, p in declared.items() if p["in"] == "query"}
        for name, value in request.url.params.multi_items():
            if name not in queries:
                self.problems.append(f"{where}: undeclared query parameter {name!r}")
                continue
            schema = self._resolve(declared[name]["schema"])
            if "enum" in schema and value not in schema["enum"]:
                self.problems.append(f"{where}: {name}={value!r} is not one of {schema['enum']}")
            if "pattern" in schema and not re.search(schema["pattern"], value):
                self.problems.append(f"{where}: {name}={value!r} does not match its pattern")
        if "Idempotency-Key" in declared and "Idempotency-Key" not in request.headers:
            self.problems.append(f"{where}: the service deduplicates it, but no Idempotency-Key")
        body = httpx.Response(200, content=request.content).json() if request.content else None
        schema_ref = op.get("requestBody", {}).get("content", {}).get("application/json")
        if schema_ref is None:
            if body not in (None, {}):
                self.problems.append(f"{where}: sends a body the operation does not take")
        elif isinstance(body, dict):
            schema = self._resolve(schema_ref["schema"])
            for name in body:
                if name not in schema.get("properties", {}):
                    self.problems.append(f"{where}: undeclared body field {name!r}")
            for name in schema.get("required", []):
                if name not in body:
                    self.problems.append(f"{where}: required body field {name!r} missing")
        elif op.get("requestBody", {}).get("required"):
            self.problems.append(f"{where}: a body is required")
        return self.answer(op)


@pytest.fixture(scope="module")
def checker() -> OpenApiChecker:
    """A checker on the service's OpenAPI document."""
    return OpenApiChecker(create_app().openapi())


@pytest.fixture
def api(checker: OpenApiChecker) -> Iterator[Client]:
    """A client whose requests go to the checker."""
    checker.problems.clear()
    with Client(
        base_url="http://api.test", token="t", transport=httpx.MockTransport(checker)
    ) as client:
        yield client


def test_every_client_request_is_declared_by_the_service(
    api: Client, checker: OpenApiChecker
) -> None:
    action = {
        "type": "start_workflow",
        "workflow_name": "SLA Escalation",
        "task_queue": "itsm-high-priority",
    }
    api.list_workflows(status="active", task_queue="itsm-network", limit=5, starting_after="wf_1")
    api.list_workflows(ending_before="wf_9")
    list(api.iter_workflows(status="failed", task_queue="itsm-fleet", page_size=50))
    api.list_workflows(ticket_id="TKT-1", precise_timestamps=True)
    list(api.iter_workflows(ticket_id="TKT-1", precise_timestamps=True))
    api.list_workflows(
        name="SLA Escalation",
        trigger_type="scheduled",
        created_after=1_700_000_000,
        created_before=1_800_000_000.5,
    )
    api.start_workflow("wf_1")
    api.create_workflow(
        name="SLA Escalation",
        task_queue="itsm-workflows",
        trigger_type="scheduled",
        schedule={"cron": "0 9 * * MON-FRI"},
    )
    api.list_workflow_definitions()
    api.get_workflow_definition("SLA Escalation", version=1)
    step = {"kind": "signal", "id": "ok", "signal": "ok", "detail": "d", "done": "d"}
    api.create_workflow_definition(
        name="Mailbox", task_queue="itsm-workflows", steps=[step | {"timeout_s": 60}]
    )
    api.update_workflow_definition(
        "Mailbox",
        task_queue="itsm-workflows",
        steps=[step | {"timeout_s": 60}],
        description="d",
        category="access",
    )
    api.list_rules(action_type="start_workflow", workflow_name="SLA Escalation", limit=1)
    api.create_rule(
        name="Daily digest",
        trigger="scheduled",
        actions=[action, action],
        schedule_cron="0 9 * * *",
    )
    api.update_rule("rule_1", actions=[action], schedule_cron=None)
    api.rotate_rule_secret("rule_1")
    api.get_workflow("wf_1", precise_timestamps=True)
    api.get_workflow_status("wf_1", precise_timestamps=True)
    api.create_workflow(
        name="VPN Access Revocation",
        task_queue="itsm-network",
        trigger_type="scheduled",
        input={"ticket_id": "TKT-1"},
        start_at=1_800_000_000,
        time_scale=3600.0,
    )
    api.get_workflow("wf_1")
    api.get_workflow_status("wf_1")
    api.signal_workflow("wf_1", signal_name="approval_received", payload={"ok": True})
    api.pause_workflow("wf_1", reason="maintenance")
    api.resume_workflow("wf_1", reason="done")
    api.cancel_workflow("wf_1", reason="duplicate")
    api.list_rules(trigger="scheduled", enabled=True, limit=3, ending_before="rule_9")
    list(api.iter_rules(trigger="webhook", enabled=False))
    api.create_rule(
        name="Escalate stale tickets after 24h",
        trigger="scheduled",
        conditions={"status": "open", "idle_hours": 24},
        action=action,
        enabled=False,
        schedule_interval_s=3600.0,
    )
    api.get_rule("rule_1")
    api.update_rule(
        "rule_1",
        name="n",
        trigger="scheduled",
        conditions=None,
        action=action,
        enabled=True,
        schedule_interval_s=60.0,
    )
    api.delete_rule("rule_1")
    api.toggle_rule("rule_1")
    api.list_rule_executions("rule_1", ticket_id="TKT-1", limit=2, starting_after="exec_1")
    list(api.iter_rule_executions("rule_1", ticket_id="TKT-1"))
    api.test_rule("rule_1", ticket_id="TKT-1", ticket={"priority": "P1"}, previous={}, payload={})
    api.create_ticket(
        title="Core switch down",
        description="d",
        category="incident",
        priority="P1",
        status="open",
        assignee="usr_1",
        requester="usr_2",
    )
    api.get_ticket("TKT-1")
    api.update_ticket(
        "TKT-1",
        title="t",
        description=None,
        category="c",
        priority="P2",
        status="pending",
        assignee=None,
        requester="usr_3",
    )
    api.list_tickets(status="open", priority="P1", category="c", assignee="a", requester="r")
    list(api.iter_tickets(status="open", priority="P1", category="c", assignee="a", requester="r"))
    api.get_job_queues()
    assert checker.problems == []
    expected = {
        ("GET", "/v1/workflows"),
        ("POST", "/v1/workflows"),
        ("GET", "/v1/workflows/{workflow_id}"),
        ("GET", "/v1/workflows/{workflow_id}/status"),
        ("POST", "/v1/workflows/{workflow_id}/signal"),
        ("POST", "/v1/workflows/{workflow_id}/cancel"),
        ("POST", "/v1/workflows/{workflow_id}/pause"),
        ("POST", "/v1/workflows/{workflow_id}/resume"),
        ("POST", "/v1/workflows/{workflow_id}/start"),
        ("GET", "/v1/workflow-definitions"),
        ("POST", "/v1/workflow-definitions"),
        ("GET", "/v1/workflow-definitions/{name}"),
        ("PUT", "/v1/workflow-definitions/{name}"),
        ("POST", "/v1/automation/rules/{rule_id}/secret"),
        ("GET", "/v1/automation/rules"),
        ("POST", "/v1/automation/rules"),
        ("GET", "/v1/automation/rules/{rule_id}"),
        ("PATCH", "/v1/automation/rules/{rule_id}"),
        ("DELETE", "/v1/automation/rules/{rule_id}"),
        ("POST", "/v1/automation/rules/{rule_id}/toggle"),
        ("GET", "/v1/automation/rules/{rule_id}/executions"),
        ("POST", "/v1/automation/rules/{rule_id}/test"),
        ("POST", "/v1/tickets"),
        ("GET", "/v1/tickets"),
        ("GET", "/v1/tickets/{ticket_id}"),
        ("PATCH", "/v1/tickets/{ticket_id}"),
        ("GET", "/v1/jobs/queues"),
    }
    assert checker.called == expected


def test_the_checker_catches_what_the_service_does_not_declare(
    api: Client, checker: OpenApiChecker
) -> None:
    api.request("GET", "/v1/workflows", params={"colour": "blue"})
    api.request("GET", "/v1/workflows", params={"timestamps": "double", "ticket_id": "T-1"})
    api.request("POST", "/v1/tickets", json={"title": "x", "mood": "grumpy"})
    api.request("POST", "/v1/tickets", json={"description": "no title"})
    api.request(
        "POST", "/v1/workflows", json={"name": "n", "task_queue": "q"}, idempotency_key=None
    )
    with pytest.raises(NotFoundError):
        api.request("GET", "/v1/nothing/here")
    assert checker.problems == [
        "GET /v1/workflows: undeclared query parameter 'colour'",
        "GET /v1/workflows: timestamps='double' is not one of ['int', 'float']",
        "GET /v1/workflows: ticket_id='T-1' does not match its pattern",
        "POST /v1/tickets: undeclared body field 'mood'",
        "POST /v1/tickets: required body field 'title' missing",
        "GET /v1/nothing/here: no such operation",
    ]
    checker.problems.clear()
    body = {"name": "n", "task_queue": "q"}
    checker(api.build_request("POST", "/v1/workflows", json=body, auto_idempotency_key=False))
    assert checker.problems == [
        "POST /v1/workflows: the service deduplicates it, but no Idempotency-Key"
    ]
