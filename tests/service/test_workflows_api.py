"""The workflow endpoints against the real Temporal dev server and worker: create, retrieve,
status, the statuses a workflow goes through, validation errors and scheduled starts."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from live_server import serving
from waiting import eventually

from protocol_lab.domain import load_catalog
from service.app import create_app
from service.settings import Settings
from service.state import Resources
from service.temporal.ids import order_of

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

WORKFLOW_KEYS = {
    "id",
    "name",
    "status",
    "trigger_type",
    "task_queue",
    "started_at",
    "completed_at",
    "timeline",
    "ticket_id",  # beside the page's fields: the ticket it was started for
}
STATUS_KEYS = {
    "id",
    "status",
    "current_step",
    "steps_completed",
    "steps_total",
    "started_at",
    "elapsed_seconds",
}


def spec_part(event: dict[str, Any]) -> dict[str, Any]:
    """The fields of a timeline event that the API page shows."""
    return {key: event[key] for key in ("event", "timestamp", "detail")}


async def create(api: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await api.post("/v1/workflows", headers=headers, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_create_answers_the_spec_shape(
    api: httpx.AsyncClient, worker: None, write_headers: dict[str, str]
) -> None:
    wf = await create(
        api,
        write_headers,
        name="VPN Access Revocation",
        task_queue="itsm-network",
        trigger_type="manual",
        input={"ticket_id": "TKT-5102", "user_id": "usr_9xKmPq"},
    )
    assert set(wf) == WORKFLOW_KEYS
    assert wf["id"].startswith("wf_")
    assert len(wf["id"]) == 17
    assert wf["name"] == "VPN Access Revocation"
    assert (wf["status"], wf["trigger_type"], wf["task_queue"]) == (
        "active",
        "manual",
        "itsm-network",
    )
    assert abs(wf["started_at"] - time.time()) < 60
    assert wf["completed_at"] is None
    assert [spec_part(e) for e in wf["timeline"]] == [
        {"event": "workflow_started", "timestamp": wf["started_at"], "detail": "Manually initiated"}
    ]


async def test_a_run_completes_with_a_timeline_of_the_plan(
    api: httpx.AsyncClient, worker: None, write_headers: dict[str, str], wait_for: Any
) -> None:
    wf = await create(
        api,
        write_headers,
        name="VPN Access Revocation",
        task_queue="itsm-network",
        trigger_type="automatic",
        input={"ticket_id": "TKT-4829"},
        time_scale=100_000,
    )
    status = await wait_for(wf["id"], "completed")
    assert status["current_step"] is None
    assert (status["steps_completed"], status["steps_total"]) == (6, 6)

    got = (await api.get(f"/v1/workflows/{wf['id']}", headers=write_headers)).json()
    assert set(got) == WORKFLOW_KEYS
    assert got["status"] == "completed"
    assert got["completed_at"] >= got["started_at"]
    timeline = got["timeline"]
    assert spec_part(timeline[0]) == {
        "event": "workflow_started",
        "timestamp": got["started_at"],
        "detail": "Triggered by ticket TKT-4829",
    }
    assert timeline[-1]["event"] == "workflow_completed"
    plan = load_catalog()["VPN Access Revocation"]
    started = [e["detail"] for e in timeline if e["event"] == "activity_started"]
    assert started == [step.detail for step in plan.steps]
    completed = [e["detail"] for e in timeline if e["event"] == "activity_completed"]
    assert completed[0] == "User found in directory"
    assert completed[3] == "Awaiting security confirmation: no response in time, continued"
    assert completed[4] == "Audit record written"
    stamps = [e["timestamp"] for e in timeline]
    assert stamps == sorted(stamps)


async def test_status_of_a_waiting_workflow(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
    wait_for: Any,
    app_state: Resources,
) -> None:
    wf = await create(
        api,
        write_headers,
        name="Laptop Provisioning - New Hire",
        task_queue="itsm-accessories",
        trigger_type="automatic",
        input={"ticket_id": "TKT-4829"},
    )
    status = await wait_for(wf["id"], "active", steps_completed=1)
    assert set(status) == STATUS_KEYS
    assert status["current_step"] == "Awaiting manager approval"
    assert (status["steps_completed"], status["steps_total"]) == (1, 5)
    assert 0 <= status["elapsed_seconds"] < 120  # started moments ago, in wall seconds
    got = (await api.get(f"/v1/workflows/{wf['id']}", headers=write_headers)).json()
    assert [(e["event"], e["detail"]) for e in got["timeline"]] == [
        ("workflow_started", "Triggered by ticket TKT-4829"),
        ("activity_started", "Checking asset availability"),
        ("activity_completed", "Asset availability checked"),
        ("activity_started", "Awaiting manager approval"),
    ]
    # the execution answers the same through its query
    handle = app_state.temporal.get_workflow_handle(wf["id"])
    state = await handle.query("state")
    assert state["current_step"] == "Awaiting manager approval"
    assert state["awaiting_signal"] == "approval_received"
    await api.post(f"/v1/workflows/{wf['id']}/cancel", headers=write_headers)


async def test_failed_when_a_wait_times_out(
    api: httpx.AsyncClient, worker: None, write_headers: dict[str, str], wait_for: Any
) -> None:
    wf = await create(api, write_headers, name="Password Reset", task_queue="itsm-workflows")
    await wait_for(wf["id"], "failed")
    got = (await api.get(f"/v1/workflows/{wf['id']}", headers=write_headers)).json()
    assert got["status"] == "failed"
    assert got["completed_at"] is not None
    assert spec_part(got["timeline"][-1]) == {
        "event": "workflow_failed",
        "timestamp": got["completed_at"],
        "detail": "Awaiting identity verification timed out",
    }


async def test_scheduled_workflow_is_draft_until_its_time(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
    read_headers: dict[str, str],
    wait_for: Any,
) -> None:
    start_at = int(time.time()) + 4
    wf = await create(
        api,
        write_headers,
        name="SLA Escalation",
        task_queue="itsm-high-priority",
        trigger_type="scheduled",
        start_at=start_at,
        time_scale=100_000,
    )
    assert (wf["status"], wf["started_at"], wf["timeline"]) == ("draft", start_at, [])
    status = (await api.get(f"/v1/workflows/{wf['id']}/status", headers=read_headers)).json()
    assert status["status"] == "draft"
    assert status["current_step"] == "Notifying team lead"

    async def listed_as_draft() -> bool:
        listed = await api.get("/v1/workflows", headers=read_headers, params={"status": "draft"})
        return wf["id"] in {w["id"] for w in listed.json()["data"]}

    await eventually(listed_as_draft, within_s=10)
    refused = await api.post(
        f"/v1/workflows/{wf['id']}/signal",
        headers=write_headers,
        json={"signal_name": "ticket_picked_up"},
    )
    assert refused.status_code == 409
    assert refused.json()["type"] == "conflict"

    await wait_for(wf["id"], "completed", within=60)
    got = (await api.get(f"/v1/workflows/{wf['id']}", headers=read_headers)).json()
    assert got["timeline"][0]["event"] == "workflow_started"
    assert got["timeline"][0]["detail"] == "Started on schedule"
    assert got["timeline"][0]["timestamp"] >= start_at - 1


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": "Nope", "task_queue": "itsm-network"}, "Laptop Provisioning - New Hire"),
        ({"name": "Password Reset", "task_queue": "itsm-nowhere"}, "itsm-high-priority"),
        ({"task_queue": "itsm-network"}, "name"),
        ({"name": "Password Reset"}, "task_queue"),
        (
            {"name": "Password Reset", "task_queue": "itsm-workflows", "trigger_type": "sometimes"},
            "event_based",
        ),
        (
            {
                "name": "Password Reset",
                "task_queue": "itsm-workflows",
                "schedule": {"interval_s": 3600},
            },
            "scheduled",
        ),
        (
            {
                "name": "Password Reset",
                "task_queue": "itsm-workflows",
                "trigger_type": "scheduled",
                "start_at": time.time() + 60,
                "schedule": {"interval_s": 3600},
            },
            "not both",
        ),
        (
            {
                "name": "Password Reset",
                "task_queue": "itsm-workflows",
                "trigger_type": "scheduled",
                "schedule": {"interval_s": 5},
            },
            "60",
        ),
        (
            {
                "name": "Password Reset",
                "task_queue": "itsm-workflows",
                "trigger_type": "scheduled",
                "schedule": {"interval_s": 3600, "cron": "@daily"},
            },
            "exactly one",
        ),
        (
            {
                "name": "Password Reset",
                "task_queue": "itsm-workflows",
                "trigger_type": "scheduled",
                "schedule": {"cron": "* * *"},
            },
            "5 fields",
        ),
        (
            {
                "name": "Password Reset",
                "task_queue": "itsm-workflows",
                "trigger_type": "scheduled",
                "schedule": {},
            },
            "exactly one",
        ),
        (
            {"name": "Password Reset", "task_queue": "itsm-workflows", "start_at": 1},
            "scheduled",
        ),
    ],
)
async def test_create_refuses_bad_requests(
    api: httpx.AsyncClient, write_headers: dict[str, str], body: dict[str, Any], needle: str
) -> None:
    response = await api.post("/v1/workflows", headers=write_headers, json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "invalid_request"
    assert needle in error["message"]
    assert set(error) == {"type", "message"}


async def test_unknown_workflow_is_404(
    api: httpx.AsyncClient, read_headers: dict[str, str], write_headers: dict[str, str]
) -> None:
    for path in ("", "/status"):
        response = await api.get(f"/v1/workflows/wf_00000000000{path}", headers=read_headers)
        assert response.status_code == 404
        assert response.json()["type"] == "not_found"
    for action in ("signal", "cancel", "pause", "resume"):
        body = {"signal_name": "x"} if action == "signal" else None
        response = await api.post(
            f"/v1/workflows/wf_00000000000/{action}", headers=write_headers, json=body
        )
        assert response.status_code == 404, (action, response.text)


async def test_list_filters_and_bad_parameters(
    api: httpx.AsyncClient, worker: None, write_headers: dict[str, str], wait_for: Any
) -> None:
    wf = await create(
        api, write_headers, name="Password Reset", task_queue="itsm-workflows", time_scale=1
    )
    await wait_for(wf["id"], "active")

    async def listed_active() -> list[dict[str, Any]] | None:
        page = await api.get(
            "/v1/workflows",
            headers=write_headers,
            params={"status": "active", "task_queue": "itsm-workflows", "limit": 100},
        )
        assert page.status_code == 200
        data: list[dict[str, Any]] = page.json()["data"]
        return data if wf["id"] in {w["id"] for w in data} else None

    data = await eventually(listed_active, within_s=10)
    assert {(w["status"], w["task_queue"]) for w in data} == {("active", "itsm-workflows")}
    mine = next(w for w in data if w["id"] == wf["id"])
    first = spec_part(mine["timeline"][0])
    assert (first["event"], first["detail"]) == ("workflow_started", "Manually initiated")
    # the create answers its own clock's second; the history's event may fall in the next one
    assert 0 <= first["timestamp"] - wf["started_at"] <= 1
    archived = await api.get("/v1/workflows", headers=write_headers, params={"status": "archived"})
    assert archived.status_code == 200  # other modules' archived workflows may be listed
    assert {w["status"] for w in archived.json()["data"]} <= {"archived"}
    assert wf["id"] not in {w["id"] for w in archived.json()["data"]}
    for params in (
        {"status": "sleeping"},
        {"task_queue": "elsewhere"},
        {"limit": 0},
        {"limit": 101},
        {"starting_after": "wf_00000000001", "ending_before": "wf_00000000002"},
        {"starting_after": "not-a-workflow"},
    ):
        response = await api.get("/v1/workflows", headers=write_headers, params=params)
        assert response.status_code == 400, params
        assert response.json()["type"] == "invalid_request"
    await api.post(f"/v1/workflows/{wf['id']}/cancel", headers=write_headers)


async def test_the_spec_curl_body_with_line_continuations_is_accepted(
    api: httpx.AsyncClient, write_headers: dict[str, str]
) -> None:
    # exactly the bytes `curl -d '{\ ... }'` sends for the API page's example
    body = (
        b'{\\\n    "name": "VPN Access Revocation",\\\n    "task_queue": "itsm-network",\\\n'
        b'    "trigger_type": "manual",\\\n'
        b'    "input": { "ticket_id": "TKT-5102", "user_id": "usr_9xKmPq" }\\\n  }'
    )
    headers = {**write_headers, "Content-Type": "application/json"}
    response = await api.post("/v1/workflows", headers=headers, content=body)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "VPN Access Revocation"
    await api.post(f"/v1/workflows/{response.json()['id']}/cancel", headers=write_headers)
    broken = await api.post("/v1/workflows", headers=headers, content=b'{"name": \\\n')
    assert broken.status_code == 400
    assert broken.json()["type"] == "invalid_request"


async def test_cancelling_a_draft_means_it_never_starts(
    api: httpx.AsyncClient, worker: None, write_headers: dict[str, str]
) -> None:
    wf = await create(
        api,
        write_headers,
        name="SLA Escalation",
        task_queue="itsm-high-priority",
        trigger_type="scheduled",
        start_at=time.time() + 3600,
    )
    response = await api.post(
        f"/v1/workflows/{wf['id']}/cancel", headers=write_headers, json={"reason": "Not needed"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "failed"
    assert [spec_part(e) for e in body["timeline"]] == [
        {"event": "workflow_cancelled", "timestamp": body["cancelled_at"], "detail": "Not needed"}
    ]
    got = (await api.get(f"/v1/workflows/{wf['id']}", headers=write_headers)).json()
    assert got["started_at"] is None
    assert got["completed_at"] == body["cancelled_at"]


async def test_list_by_closed_status(
    api: httpx.AsyncClient, worker: None, write_headers: dict[str, str], wait_for: Any
) -> None:
    failed = await create(api, write_headers, name="Password Reset", task_queue="itsm-workflows")
    done = await create(
        api, write_headers, name="SLA Escalation", task_queue="itsm-high-priority", time_scale=1e5
    )
    await wait_for(failed["id"], "failed")
    await wait_for(done["id"], "completed")
    for status, wf in (("failed", failed), ("completed", done)):

        async def listed(status: str = status, wf_id: str = wf["id"]) -> list[Any] | None:
            page = await api.get(
                "/v1/workflows", headers=write_headers, params={"status": status, "limit": 100}
            )
            data: list[dict[str, Any]] = page.json()["data"]
            return data if wf_id in {w["id"] for w in data} else None

        data = await eventually(listed, within_s=10)
        assert {w["status"] for w in data} == {status}
        assert all(w["completed_at"] is not None for w in data)


async def test_a_step_in_progress_is_on_the_timeline(
    api: httpx.AsyncClient, worker: None, write_headers: dict[str, str]
) -> None:
    # At real time the first step runs for tens of seconds: Temporal's history has no start for
    # it until it closes, so the API reads it from the execution's pending activities.
    wf = await create(
        api,
        write_headers,
        name="Device Enrollment",
        task_queue="itsm-fleet",
        time_scale=1,
    )

    async def first_step_running() -> list[tuple[str, str]] | None:
        got = (await api.get(f"/v1/workflows/{wf['id']}", headers=write_headers)).json()
        events = [(e["event"], e["detail"]) for e in got["timeline"]]
        return events if len(events) >= 2 else None

    events = await eventually(first_step_running, within_s=30)
    await api.post(f"/v1/workflows/{wf['id']}/cancel", headers=write_headers)
    assert events == [
        ("workflow_started", "Manually initiated"),
        ("activity_started", "Registering device"),
    ]


async def test_lists_filter_by_name_trigger_type_and_creation_time(
    api: httpx.AsyncClient,
    worker: None,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
) -> None:
    ticket = f"TKT-{int(time.time() * 1000) % 10**9}"
    made = []
    for name, queue, trigger in (
        ("Password Reset", "itsm-workflows", "manual"),
        ("Password Reset", "itsm-workflows", "event_based"),
        ("VPN Access Revocation", "itsm-network", "manual"),
    ):
        wf = await create(
            api,
            write_headers,
            name=name,
            task_queue=queue,
            trigger_type=trigger,
            input={"ticket_id": ticket},
        )
        made.append(wf["id"])
    first, second, third = made

    async def ids(**params: Any) -> list[str]:
        response = await api.get(
            "/v1/workflows", headers=read_headers, params={"ticket_id": ticket, **params}
        )
        assert response.status_code == 200, response.text
        return [w["id"] for w in response.json()["data"]]

    async def all_listed() -> bool:
        return await ids() == [third, second, first]

    await eventually(all_listed)
    assert await ids(name="Password Reset") == [second, first]
    assert await ids(trigger_type="manual") == [third, first]
    assert await ids(name="Password Reset", trigger_type="manual") == [first]
    assert await ids(name="Nothing Like It") == []
    millisecond = 1_000_000  # ProtocolOrder units
    after = (order_of(second) - millisecond) / 1e9
    before = (order_of(third) - millisecond) / 1e9
    assert await ids(created_after=after) == [third, second]
    assert await ids(created_before=before) == [second, first]
    assert await ids(created_after=after, created_before=before) == [second]
    # The cursor pages through a filtered list.
    page = await api.get(
        "/v1/workflows",
        headers=read_headers,
        params={"ticket_id": ticket, "created_after": after, "limit": 1},
    )
    assert ([w["id"] for w in page.json()["data"]], page.json()["has_more"]) == ([third], True)
    assert await ids(created_after=after, limit=1, starting_after=third) == [second]
    assert await ids(created_after=after, limit=5, starting_after=second) == []
    assert await ids(created_before=before, ending_before=first) == [second]
    for wf in made:
        await api.post(f"/v1/workflows/{wf}/cancel", headers=write_headers)


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"trigger_type": "sometimes"}, "trigger_type"),
        ({"created_after": -1}, "created_after"),
        ({"created_before": "yesterday"}, "created_before"),
        ({"created_after": 1e12}, "created_after"),
        ({"created_after": 2000, "created_before": 1000}, "earlier"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
    ],
)
async def test_bad_list_filters_are_refused(
    api: httpx.AsyncClient, read_headers: dict[str, str], params: dict[str, Any], needle: str
) -> None:
    response = await api.get("/v1/workflows", headers=read_headers, params=params)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "invalid_request"
    assert needle in response.json()["message"]


# The workflow examples of the API page, as a shell runs them; only the host, the token and the
# example's workflow id are put in.
PAGE_CURL_EXAMPLES = {
    "list": """curl -G http://localhost:3000/v1/workflows \\
  -H "Authorization: Bearer {token}" \\
  -d status="active" \\
  -d limit=10""",
    "create": """curl http://localhost:3000/v1/workflows \\
  -H "Authorization: Bearer {token}" \\
  -H "Content-Type: application/json" \\
  -d '{\\
    "name": "VPN Access Revocation",\\
    "task_queue": "itsm-network",\\
    "trigger_type": "manual",\\
    "input": { "ticket_id": "TKT-5102", "user_id": "usr_9xKmPq" }\\
  }'""",
    "retrieve": """curl http://localhost:3000/v1/workflows/wf_7bR3kLmNpQ9xYz \\
  -H "Authorization: Bearer {token}\"""",
    "status": """curl http://localhost:3000/v1/workflows/wf_7bR3kLmNpQ9xYz/status \\
  -H "Authorization: Bearer {token}\"""",
    "signal": """curl http://localhost:3000/v1/workflows/wf_7bR3kLmNpQ9xYz/signal \\
  -H "Authorization: Bearer {token}" \\
  -H "Content-Type: application/json" \\
  -d '{\\
    "signal_name": "approval_received",\\
    "payload": { "approved_by": "usr_3mKpLq", "decision": "approved" }\\
  }'""",
    "cancel": """curl -X POST http://localhost:3000/v1/workflows/wf_7bR3kLmNpQ9xYz/cancel \\
  -H "Authorization: Bearer {token}\"""",
}


async def _curl(example: str, *, url: str, token: str, workflow_id: str = "") -> tuple[int, Any]:
    """Run one page example with the real curl; (HTTP status, JSON body)."""
    command = (
        PAGE_CURL_EXAMPLES[example]
        .replace("http://localhost:3000", url)
        .replace("{token}", token)
        .replace("wf_7bR3kLmNpQ9xYz", workflow_id)
        + " -s -w '\\n%{http_code}'"
    )
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", command, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    body, _, code = out.decode().rpartition("\n")
    return int(code), json.loads(body)


async def test_the_page_curl_examples_pass_unchanged(
    worker: None, service_settings: Settings, write_headers: dict[str, str], wait_for: Any
) -> None:
    token = write_headers["Authorization"].removeprefix("Bearer ")
    with serving(create_app(service_settings), name="curl-examples") as url:
        code, created = await _curl("create", url=url, token=token)
        assert code == 201, created
        assert (created["name"], created["status"], created["trigger_type"]) == (
            "VPN Access Revocation",
            "active",
            "manual",
        )
        assert created["timeline"][0]["detail"] == "Manually initiated"
        code, listed = await _curl("list", url=url, token=token)
        assert code == 200, listed
        assert set(listed) == {"has_more", "data"}
        assert len(listed["data"]) <= 10
        assert all(w["status"] == "active" for w in listed["data"])

        laptop = await asyncio.to_thread(
            httpx.post,
            f"{url}/v1/workflows",
            headers=write_headers,
            json={"name": "Laptop Provisioning - New Hire", "task_queue": "itsm-accessories"},
        )
        assert laptop.status_code == 201, laptop.text
        wf = laptop.json()["id"]
        await wait_for(wf, "active", steps_completed=1)
        code, got = await _curl("retrieve", url=url, token=token, workflow_id=wf)
        assert (code, got["id"]) == (200, wf)
        code, status = await _curl("status", url=url, token=token, workflow_id=wf)
        assert (code, status["current_step"]) == (200, "Awaiting manager approval")
        code, signalled = await _curl("signal", url=url, token=token, workflow_id=wf)
        assert code in (200, 202), signalled
        assert (signalled["signal_name"], signalled["accepted"]) == ("approval_received", True)
        code, cancelled = await _curl("cancel", url=url, token=token, workflow_id=wf)
        assert code in (200, 202), cancelled
        assert cancelled["id"] == wf
        await _curl("cancel", url=url, token=token, workflow_id=created["id"])
