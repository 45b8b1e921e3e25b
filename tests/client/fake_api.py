"""A small in-memory fake of the protocol-lab API, served to the client through MockTransport.

It answers in the API's shapes (the client parses every answer into its models) and follows
its conventions (bearer tokens, ``{"type", "message"}`` errors, cursor
pagination with ``limit`` / ``starting_after`` / ``ending_before``, ``Idempotency-Key`` replay
on POSTs) over workflows, automation rules and their executions, tickets and job queues, and
can inject faults: error statuses (with ``Retry-After``), connection errors before a request
is handled, and lost responses after it was handled.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

GOOD_TOKEN = "tok_write"
READ_ONLY_TOKEN = "tok_read"
NOW = 1_708_732_800

JSONObject = dict[str, Any]


class FakeApiError(Exception):
    """Raised inside a handler to answer with an API error."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message


@dataclass
class Fault:
    """One injected fault: an error status, a connection error, or a lost response."""

    kind: str  # "status" | "connect" | "lost"
    status: int = 503
    retry_after: str | None = None
    type: str = "api_error"


@dataclass
class Seen:
    """A request as the fake received it."""

    method: str
    path: str  # as sent, percent-encoding kept
    params: dict[str, str]
    headers: httpx.Headers
    body: Any


@dataclass
class FakeApi:
    """The fake service; ``transport`` gives a MockTransport serving it."""

    workflows: dict[str, JSONObject] = field(default_factory=dict)
    rules: dict[str, JSONObject] = field(default_factory=dict)
    executions: dict[str, list[JSONObject]] = field(default_factory=dict)
    tickets: dict[str, JSONObject] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    idempotent: dict[str, tuple[str, str, Any, httpx.Response]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- set-up helpers ----------------------------------------------------------------------

    @property
    def transport(self) -> httpx.MockTransport:
        """A transport serving this fake to Client and AsyncClient alike."""
        return httpx.MockTransport(self.handle)

    def inject(self, *faults: Fault) -> None:
        """Queue faults, applied one per request in order."""
        self.faults.extend(faults)

    def seed_workflows(self, count: int, *, task_queue: str = "itsm-workflows") -> list[str]:
        """Add ``count`` workflows (every third one completed); return their ids in order."""
        ids = []
        for _ in range(count):
            n = next(self._ids)
            wf_id = f"wf_{n:04d}"
            self.workflows[wf_id] = {
                "id": wf_id,
                "name": f"Workflow {n}",
                "status": "completed" if n % 3 == 0 else "active",
                "trigger_type": "manual",
                "task_queue": task_queue,
                "started_at": NOW + n,
                "completed_at": None,
                "timeline": [],
            }
            ids.append(wf_id)
        return ids

    def seed_executions(self, rule_id: str, count: int) -> list[str]:
        """Give rule ``rule_id`` ``count`` executions (on TKT-0 and TKT-1 in turn); their ids."""
        rule = self.rules[rule_id]
        self.executions[rule_id] = [
            {
                "id": f"exec_{n}",
                "rule_id": rule_id,
                "rule_name": rule["name"],
                "trigger": rule["trigger"],
                "event": "ticket_created",
                "event_id": n,
                "ticket_id": f"TKT-{n % 2}",
                "depth": 0,
                "conditions": [],
                "action": rule["action"],
                "action_index": 0,
                "outcome": "succeeded",
                "detail": None,
                "workflow_id": None,
                "job_id": None,
                "fired_at": NOW + n,
                "finished_at": NOW + n,
            }
            for n in range(count)
        ]
        return [e["id"] for e in self.executions[rule_id]]

    def requests_to(self, method: str, path: str) -> list[Seen]:
        """The requests received for ``method path``."""
        return [s for s in self.seen if s.method == method and s.path == path]

    # -- serving ---------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (the MockTransport handler)."""
        body = json.loads(request.content) if request.content else None
        seen = Seen(
            request.method,
            request.url.raw_path.decode("ascii").split("?")[0],
            dict(request.url.params),
            request.headers,
            body,
        )
        self.seen.append(seen)
        fault = self.faults.popleft() if self.faults else None
        if fault is not None and fault.kind == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return _error(fault.status, fault.type, "injected fault", headers=headers)
        response = self._answer(request, seen)
        if fault is not None and fault.kind == "lost":
            raise httpx.ReadTimeout("response lost", request=request)
        return response

    def _answer(self, request: httpx.Request, seen: Seen) -> httpx.Response:
        auth = request.headers.get("Authorization")
        if auth not in (f"Bearer {GOOD_TOKEN}", f"Bearer {READ_ONLY_TOKEN}"):
            return _error(401, "authentication_error", "missing or invalid bearer token")
        if auth == f"Bearer {READ_ONLY_TOKEN}" and request.method != "GET":
            return _error(403, "permission_error", "token scope 'read' cannot write")
        key = request.headers.get("Idempotency-Key")
        if key is not None and key in self.idempotent:
            method, path, body, stored = self.idempotent[key]
            if (method, path, body) != (seen.method, seen.path, seen.body):
                return _error(409, "conflict", "idempotency key reused with other parameters")
            return httpx.Response(
                stored.status_code, content=stored.content, headers=stored.headers
            )
        try:
            status, payload = self._route(seen)
        except FakeApiError as failure:
            response = _error(failure.status, failure.type, failure.message)
        else:
            if payload is None:
                response = httpx.Response(status)
            elif isinstance(payload, str):
                response = httpx.Response(status, text=payload)
            else:
                response = httpx.Response(status, json=payload)
        if key is not None and seen.method == "POST" and response.status_code < 500:
            self.idempotent[key] = (seen.method, seen.path, seen.body, response)
        return response

    def _route(self, seen: Seen) -> tuple[int, Any]:
        parts = seen.path.strip("/").split("/")
        if parts[0] != "v1":
            raise FakeApiError(404, "not_found", f"no route {seen.path}")
        parts = [unquote(p) for p in parts[1:]]
        routes: list[tuple[str, list[str], Callable[..., tuple[int, Any]]]] = [
            ("GET", ["workflows"], self._list_workflows),
            ("POST", ["workflows"], self._create_workflow),
            ("GET", ["workflows", "*"], self._get_workflow),
            ("GET", ["workflows", "*", "status"], self._workflow_status),
            ("POST", ["workflows", "*", "signal"], self._signal),
            ("POST", ["workflows", "*", "cancel"], self._cancel),
            ("POST", ["workflows", "*", "pause"], self._pause),
            ("POST", ["workflows", "*", "resume"], self._resume),
            ("GET", ["automation", "rules"], self._list_rules),
            ("POST", ["automation", "rules"], self._create_rule),
            ("GET", ["automation", "rules", "*"], self._get_rule),
            ("PATCH", ["automation", "rules", "*"], self._patch_rule),
            ("DELETE", ["automation", "rules", "*"], self._delete_rule),
            ("POST", ["automation", "rules", "*", "toggle"], self._toggle_rule),
            ("GET", ["automation", "rules", "*", "executions"], self._executions),
            ("POST", ["automation", "rules", "*", "test"], self._test_rule),
            ("GET", ["tickets"], self._list_tickets),
            ("POST", ["tickets"], self._create_ticket),
            ("GET", ["tickets", "*"], self._get_ticket),
            ("PATCH", ["tickets", "*"], self._patch_ticket),
            ("GET", ["jobs", "queues"], self._job_queues),
            ("GET", ["test", "text"], lambda seen: (200, "plain text, not JSON")),
            ("GET", ["test", "empty"], lambda seen: (204, None)),
        ]
        for method, pattern, handler in routes:
            if len(pattern) != len(parts) or method != seen.method:
                continue
            if all(p == "*" or p == a for p, a in zip(pattern, parts, strict=True)):
                args = [a for p, a in zip(pattern, parts, strict=True) if p == "*"]
                return handler(seen, *args)
        raise FakeApiError(404, "not_found", f"no route {seen.method} {seen.path}")

    # -- workflows -------------------------------------------------------------------------

    def _workflow(self, wf_id: str) -> JSONObject:
        if wf_id not in self.workflows:
            raise FakeApiError(404, "not_found", f"no workflow {wf_id!r}")
        return self.workflows[wf_id]

    def _list_workflows(self, seen: Seen) -> tuple[int, Any]:
        return 200, _paginate(list(self.workflows.values()), seen.params, ("status", "task_queue"))

    def _create_workflow(self, seen: Seen) -> tuple[int, Any]:
        body = _require(seen.body, "name", "task_queue")
        n = next(self._ids)
        wf_id = f"wf_{n:04d}"
        trigger = body.get("trigger_type", "manual")
        scheduled = trigger == "scheduled"
        workflow = {
            "id": wf_id,
            "name": body["name"],
            "status": "draft" if scheduled else "active",
            "trigger_type": trigger,
            "task_queue": body["task_queue"],
            "started_at": None if scheduled else NOW,
            "completed_at": None,
            "ticket_id": body.get("input", {}).get("ticket_id"),
            "timeline": [] if scheduled else [{"event": "workflow_started", "timestamp": NOW}],
        }
        self.workflows[wf_id] = workflow
        return 201, workflow

    def _get_workflow(self, seen: Seen, wf_id: str) -> tuple[int, Any]:
        return 200, self._workflow(wf_id)

    def _workflow_status(self, seen: Seen, wf_id: str) -> tuple[int, Any]:
        wf = self._workflow(wf_id)
        return 200, {
            "id": wf_id,
            "status": wf["status"],
            "current_step": None,
            "steps_completed": 0,
            "steps_total": 3,
            "started_at": wf["started_at"],
            "elapsed_seconds": 0,
        }

    def _signal(self, seen: Seen, wf_id: str) -> tuple[int, Any]:
        wf = self._workflow(wf_id)
        body = _require(seen.body, "signal_name")
        accepted = wf["status"] == "active"
        return 200, {
            "id": wf_id,
            "signal_name": body["signal_name"],
            "accepted": accepted,
            "reason": None if accepted else f"the workflow is {wf['status']}",
            "status": wf["status"],
            "current_step": None,
        }

    def _cancel(self, seen: Seen, wf_id: str) -> tuple[int, Any]:
        wf = self._workflow(wf_id)
        if wf["status"] not in ("active", "paused", "draft"):
            raise FakeApiError(409, "conflict", f"workflow {wf_id} is {wf['status']}")
        wf["status"] = "failed"
        reason = (seen.body or {}).get("reason") or "Cancelled by user"
        event = {"event": "workflow_cancelled", "timestamp": NOW, "detail": reason}
        wf["timeline"].append(event)
        return 200, {"id": wf_id, "status": "failed", "cancelled_at": NOW, "timeline": [event]}

    def _transition(self, seen: Seen, wf_id: str, *, src: str, dst: str) -> tuple[int, Any]:
        wf = self._workflow(wf_id)
        if wf["status"] != src:
            raise FakeApiError(409, "conflict", f"workflow {wf_id} is {wf['status']}, not {src}")
        wf["status"] = dst
        event = "workflow_paused" if dst == "paused" else "workflow_resumed"
        detail = (seen.body or {}).get("reason") or ""
        wf["timeline"].append({"event": event, "timestamp": NOW, "detail": detail})
        return 200, {
            "id": wf_id,
            "status": dst,
            "current_step": None,
            "steps_completed": 0,
            "steps_total": 3,
        }

    def _pause(self, seen: Seen, wf_id: str) -> tuple[int, Any]:
        return self._transition(seen, wf_id, src="active", dst="paused")

    def _resume(self, seen: Seen, wf_id: str) -> tuple[int, Any]:
        return self._transition(seen, wf_id, src="paused", dst="active")

    # -- rules -----------------------------------------------------------------------------

    def _rule(self, rule_id: str) -> JSONObject:
        if rule_id not in self.rules:
            raise FakeApiError(404, "not_found", f"no rule {rule_id!r}")
        return self.rules[rule_id]

    def _list_rules(self, seen: Seen) -> tuple[int, Any]:
        return 200, _paginate(list(self.rules.values()), seen.params, ("trigger", "enabled"))

    def _create_rule(self, seen: Seen) -> tuple[int, Any]:
        body = _require(seen.body, "name", "trigger", "action")
        if body["trigger"] not in (
            "on_ticket_created",
            "on_ticket_updated",
            "scheduled",
            "webhook",
        ):
            raise FakeApiError(400, "invalid_request", f"unknown trigger {body['trigger']!r}")
        rule_id = f"rule_{next(self._ids):04d}"
        rule = {
            "id": rule_id,
            "name": body["name"],
            "trigger": body["trigger"],
            "conditions": body.get("conditions", {}),
            "action": body["action"],
            "enabled": body.get("enabled", True),
            "created_at": NOW,
            "updated_at": NOW,
        }
        self.rules[rule_id] = rule
        self.executions[rule_id] = []
        return 201, rule

    def _get_rule(self, seen: Seen, rule_id: str) -> tuple[int, Any]:
        return 200, self._rule(rule_id)

    def _patch_rule(self, seen: Seen, rule_id: str) -> tuple[int, Any]:
        rule = self._rule(rule_id)
        # As the API: a null field is left as it was.
        rule.update({k: v for k, v in (seen.body or {}).items() if v is not None})
        return 200, rule

    def _delete_rule(self, seen: Seen, rule_id: str) -> tuple[int, Any]:
        self._rule(rule_id)
        del self.rules[rule_id]
        return 200, {"id": rule_id, "deleted": True}

    def _toggle_rule(self, seen: Seen, rule_id: str) -> tuple[int, Any]:
        rule = self._rule(rule_id)
        rule["enabled"] = not rule["enabled"]
        return 200, {
            "id": rule_id,
            "name": rule["name"],
            "enabled": rule["enabled"],
            "toggled_at": NOW,
        }

    def _executions(self, seen: Seen, rule_id: str) -> tuple[int, Any]:
        self._rule(rule_id)
        return 200, _paginate(self.executions[rule_id], seen.params, ("ticket_id",))

    def _test_rule(self, seen: Seen, rule_id: str) -> tuple[int, Any]:
        rule = self._rule(rule_id)
        body = seen.body or {}
        unknown = set(body) - {"ticket_id", "ticket", "previous", "payload"}
        if unknown:
            raise FakeApiError(400, "invalid_request", f"unknown field(s) {sorted(unknown)}")
        ticket = dict(self._ticket(body["ticket_id"])) if "ticket_id" in body else {}
        ticket.update(body.get("ticket") or {})
        if not ticket and "payload" not in body:
            raise FakeApiError(400, "invalid_request", "give ticket_id, ticket or payload")
        fires = all(ticket.get(k) == v for k, v in rule["conditions"].items())
        return 200, {
            "rule_id": rule_id,
            "would_fire": fires and rule["enabled"],
            "matched": fires,
            "enabled": rule["enabled"],
            "reason": "conditions hold" if fires else "a condition does not hold",
            "checks": [],
            "action": rule["action"],
            "actions": [rule["action"]],
            "ticket_id": body.get("ticket_id"),
        }

    # -- tickets ---------------------------------------------------------------------------

    def _ticket(self, ticket_id: str) -> JSONObject:
        if ticket_id not in self.tickets:
            raise FakeApiError(404, "not_found", f"no ticket {ticket_id!r}")
        return self.tickets[ticket_id]

    def _list_tickets(self, seen: Seen) -> tuple[int, Any]:
        keys = ("status", "priority", "category", "assignee", "requester")
        return 200, _paginate(list(self.tickets.values()), seen.params, keys)

    def _create_ticket(self, seen: Seen) -> tuple[int, Any]:
        body = _require(seen.body, "title")
        ticket_id = f"TKT-{next(self._ids)}"
        optional = ("description", "category", "assignee", "requester")
        ticket = {"id": ticket_id, "status": "open", "priority": "P3", **dict.fromkeys(optional)}
        ticket.update(body)
        ticket.update(created_at=NOW, updated_at=NOW, last_activity_at=NOW)
        self.tickets[ticket_id] = ticket
        return 201, ticket

    def _get_ticket(self, seen: Seen, ticket_id: str) -> tuple[int, Any]:
        return 200, self._ticket(ticket_id)

    def _patch_ticket(self, seen: Seen, ticket_id: str) -> tuple[int, Any]:
        ticket = self._ticket(ticket_id)
        ticket.update(seen.body or {})
        return 200, ticket

    def _job_queues(self, seen: Seen) -> tuple[int, Any]:
        counts = {"waiting": 0, "active": 0, "completed": 3, "failed": 1, "delayed": 0}
        queues = [
            {"name": q, "purpose": f"{q} jobs", "concurrency": 2, "counts": counts}
            for q in ("email", "notification")
        ]
        return 200, {"data": queues}


def _error(
    status: int, type_: str, message: str, *, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json={"type": type_, "message": message}, headers=headers)


def _require(body: Any, *names: str) -> JSONObject:
    if not isinstance(body, dict):
        raise FakeApiError(400, "invalid_request", "a JSON object body is required")
    missing = [n for n in names if n not in body]
    if missing:
        raise FakeApiError(400, "invalid_request", f"missing field(s): {', '.join(missing)}")
    return body


def _paginate(
    items: list[JSONObject], params: dict[str, str], filters: tuple[str, ...]
) -> JSONObject:
    """The API's cursor pagination over ``items`` (in list order), after equality filters."""
    for name in filters:
        if name in params:
            want: Any = params[name]
            if name == "enabled":
                if want not in ("true", "false"):
                    raise FakeApiError(400, "invalid_request", "enabled must be true or false")
                want = want == "true"
            items = [i for i in items if i.get(name) == want]
    try:
        limit = int(params.get("limit", "10"))
    except ValueError:
        raise FakeApiError(400, "invalid_request", "limit must be an integer") from None
    if not 1 <= limit <= 100:
        raise FakeApiError(400, "invalid_request", "limit must be within 1..100")
    if "starting_after" in params and "ending_before" in params:
        raise FakeApiError(400, "invalid_request", "starting_after and ending_before are exclusive")
    ids = [i["id"] for i in items]
    if "ending_before" in params:
        cursor = params["ending_before"]
        if cursor not in ids:
            raise FakeApiError(400, "invalid_request", f"unknown cursor {cursor!r}")
        end = ids.index(cursor)
        start = max(0, end - limit)
        return {"has_more": start > 0, "data": items[start:end]}
    start = 0
    if "starting_after" in params:
        cursor = params["starting_after"]
        if cursor not in ids:
            raise FakeApiError(400, "invalid_request", f"unknown cursor {cursor!r}")
        start = ids.index(cursor) + 1
    page = items[start : start + limit]
    return {"has_more": start + limit < len(items), "data": page}
