"""Jobs added by hand: admin only, an allow-list per queue, namespaced ids, secrets never shown."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from protocol_lab.domain import JobQueue
from service.state import Resources

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

ADD = "/v1/jobs/queues/{queue}/jobs"


async def _add(
    api: httpx.AsyncClient, headers: dict[str, str], queue: str, **body: Any
) -> httpx.Response:
    return await api.post(ADD.format(queue=queue), headers=headers, json=body)


async def test_only_an_admin_adds_jobs(
    api: httpx.AsyncClient, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    r = await _add(api, write_headers, "export", name="tickets")
    assert r.status_code == 403, r.text
    assert r.json() == {"type": "permission_error", "message": "this token lacks the 'admin' scope"}
    r = await _add(api, admin_headers, "export", name="tickets", job_id="admin-export-1")
    assert r.status_code == 202, r.text
    assert r.json()["name"] == "tickets"


@pytest.mark.parametrize("queue", ["email", "notification", "webhook-delivery", "audit"])
async def test_queues_that_reach_people_or_urls_take_no_manual_jobs(
    api: httpx.AsyncClient, admin_headers: dict[str, str], queue: str
) -> None:
    data = {"url": "https://attacker.example/hook", "to": "victim@example.com", "payload": {}}
    r = await _add(api, admin_headers, queue, name="ticket_event", data=data)
    assert r.status_code == 403, r.text
    assert r.json()["type"] == "permission_error"
    assert f"{queue!r} takes no jobs added by hand" in r.json()["message"]


async def test_only_listed_job_names_and_data_fields(
    api: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    r = await _add(api, admin_headers, "maintenance", name="drop_everything")
    assert r.status_code == 400, r.text
    assert "'drop_everything'" in r.json()["message"]
    assert "'prune'" in r.json()["message"]

    r = await _add(
        api, admin_headers, "maintenance", name="prune", data={"retention_days": 3, "url": "x"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "invalid_request"
    assert "data.url" in r.json()["message"]
    assert "retention_days" in r.json()["message"]

    r = await _add(api, admin_headers, "report-generation", name="sla", data={"by": "secret"})
    assert r.status_code == 400, r.text
    assert "data.by" in r.json()["message"]

    r = await _add(api, admin_headers, "sync", name="resync", data={"ticket_id": "TKT-3"})
    assert r.status_code == 202, r.text
    assert r.json()["data"] == {"ticket_id": "TKT-3"}


async def test_caller_job_ids_cannot_take_an_internal_id(
    api: httpx.AsyncClient, admin_headers: dict[str, str], app_state: Resources
) -> None:
    internal = await app_state.jobs.enqueue(
        JobQueue.AI_INFERENCE, "suggest", {"ticket_id": "TKT-1"}, job_id="ai-TKT-1"
    )
    r = await _add(
        api,
        admin_headers,
        "ai-inference",
        name="suggest",
        data={"ticket_id": "TKT-2"},
        job_id=internal,
    )
    assert r.status_code == 202, r.text
    assert r.json()["id"] == "manual-ai-TKT-1"
    assert r.json()["data"] == {"ticket_id": "TKT-2"}
    job = await app_state.jobs.queue(JobQueue.AI_INFERENCE).getJob(internal)
    assert job is not None
    assert job.data == {"ticket_id": "TKT-1"}

    r = await _add(api, admin_headers, "export", name="tickets", job_id="../../escape")
    assert r.status_code == 400, r.text
    assert "job_id" in r.json()["message"]


async def test_secrets_in_job_data_are_redacted_on_read(
    api: httpx.AsyncClient, read_headers: dict[str, str], app_state: Resources
) -> None:
    data = {
        "url": "https://hooks.example/x",
        "secret": "s3cr3t",
        "payload": {"Authorization": "Bearer abc", "api_token": "t0k", "note": "kept"},
        "headers": [{"password": "pw", "name": "kept"}],
    }
    job_id = await app_state.jobs.enqueue(
        JobQueue.WEBHOOK_DELIVERY, "ticket_event", data, job_id="redaction-probe", delay_ms=600_000
    )
    one = await api.get(f"/v1/jobs/queues/webhook-delivery/jobs/{job_id}", headers=read_headers)
    assert one.status_code == 200, one.text
    expected = {
        "url": "https://hooks.example/x",
        "secret": "[redacted]",
        "payload": {"Authorization": "[redacted]", "api_token": "[redacted]", "note": "kept"},
        "headers": [{"password": "[redacted]", "name": "kept"}],
    }
    assert one.json()["data"] == expected
    listed = await api.get(
        "/v1/jobs/queues/webhook-delivery/jobs",
        headers=read_headers,
        params={"state": "delayed", "limit": 100},
    )
    [probe] = [j for j in listed.json()["data"] if j["id"] == job_id]
    assert probe["data"] == expected
    assert "s3cr3t" not in listed.text


async def test_the_allow_list_is_documented(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/jobs/queues/{queue}/jobs"]["post"]
    text = operation["description"]
    for expected in ("report-generation", "`sla`", "retention_days", "admin", "manual-"):
        assert expected in text, expected
    assert "webhook-delivery" in text
