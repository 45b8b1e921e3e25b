"""``/metrics`` on the real service: request latency by route template, workflow starts, rule
firings and how their executions ended, the outbox's lag, BullMQ job counts per queue and state,
and workflows per task queue and status from Temporal's visibility."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from waiting import eventually

from protocol_lab.domain import JobQueue, TaskQueue
from service.stack import free_port

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

NOTIFY_RULE = {
    "name": "Metrics: tell the desk about P4 requests",
    "trigger": "on_ticket_created",
    "conditions": {"priority": "P4"},
    "action": {
        "type": "send_notification",
        "channel": "email",
        "recipient": "desk@example.com",
        "message": "New request {{ticket.title}}",
    },
}


async def _scrape(api: httpx.AsyncClient) -> Samples:
    r = await api.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_timed_by_route_template(
    api: httpx.AsyncClient, read_headers: dict[str, str]
) -> None:
    before = await _scrape(api)
    codes: set[int] = set()
    for _ in range(3):
        r = await api.get("/v1/workflows/wf_doesnotexist0000", headers=read_headers)
        codes.add(r.status_code)
    [code] = codes
    assert code in (400, 404), code
    r = await api.get("/no/such/page")
    assert r.status_code == 404
    after = await _scrape(api)
    route = {"method": "GET", "route": "/v1/workflows/{workflow_id}", "status": str(code)}
    count = "protocol_http_request_duration_seconds_count"
    assert _value(after, count, **route) - _value(before, count, **route) == 3, route
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert _value(after, count, **unmatched) - _value(before, count, **unmatched) == 1
    made_up = await api.request("BREW", "/v1/workflows")
    assert made_up.status_code in (401, 405), made_up.text
    brewed = await _scrape(api)
    assert not any(dict(labels).get("method") == "BREW" for _, labels in brewed)
    assert any(dict(labels).get("method") == "other" for _, labels in brewed)
    # The ids themselves never become labels: the label set stays bounded.
    assert not any("wf_doesnotexist" in str(key) for key in after)


async def test_workflow_starts_and_workflows_by_status(
    api: httpx.AsyncClient, worker: None, write_headers: dict[str, str]
) -> None:
    labels = {"task_queue": "itsm-workflows", "trigger_type": "manual"}
    before = _value(await _scrape(api), "protocol_workflow_starts_total", **labels)
    r = await api.post(
        "/v1/workflows",
        headers=write_headers,
        json={"name": "Password Reset", "task_queue": "itsm-workflows", "trigger_type": "manual"},
    )
    assert r.status_code == 201, r.text
    after = await _scrape(api)
    assert _value(after, "protocol_workflow_starts_total", **labels) == before + 1
    # Every task queue and status has its gauge; the new workflow is counted by visibility.
    for queue in TaskQueue:
        assert (
            "protocol_workflows",
            frozenset({"task_queue": queue.value, "status": "completed"}.items()),
        ) in after

    async def counted() -> bool:
        samples = await _scrape(api)
        return (
            sum(
                _value(samples, "protocol_workflows", task_queue="itsm-workflows", status=status)
                for status in ("running", "completed", "failed")
            )
            >= 1
        )

    await eventually(counted, within_s=30)


async def test_rule_firings_outbox_and_queues(
    api: httpx.AsyncClient,
    worker: None,
    write_headers: dict[str, str],
) -> None:
    before = await _scrape(api)
    for queue in JobQueue:
        for state in ("waiting", "active", "completed", "failed", "delayed", "paused"):
            assert (
                "protocol_queue_jobs",
                frozenset({"queue": queue.value, "state": state}.items()),
            ) in before
    assert ("protocol_outbox_lag_seconds", frozenset()) in before

    r = await api.post("/v1/automation/rules", headers=write_headers, json=NOTIFY_RULE)
    assert r.status_code == 201, r.text
    r = await api.post(
        "/v1/tickets", headers=write_headers, json={"title": "New laptop", "priority": "P4"}
    )
    assert r.status_code == 201, r.text
    fired = {"trigger": "on_ticket_created"}

    async def settled() -> Samples | None:
        samples = await _scrape(api)
        firings = _value(samples, "protocol_rule_firings_total", **fired)
        succeeded = _value(samples, "protocol_rule_executions_total", outcome="succeeded")
        events = sum(
            _value(samples, "protocol_outbox_events", status=s)
            for s in ("pending", "processing", "done", "failed")
        )
        grew = (
            firings > _value(before, "protocol_rule_firings_total", **fired)
            and succeeded > _value(before, "protocol_rule_executions_total", outcome="succeeded")
            and events
            > sum(
                _value(before, "protocol_outbox_events", status=s)
                for s in ("pending", "processing", "done", "failed")
            )
        )
        return samples if grew else None

    samples = await eventually(settled, within_s=30)
    # The notification job went onto the email queue (in some state).
    assert (
        sum(
            value
            for (name, labels), value in samples.items()
            if name == "protocol_queue_jobs" and dict(labels)["queue"] == JobQueue.EMAIL.value
        )
        >= 1
    )
    # Nothing is waiting any more: the lag reads zero once every event is processed.

    async def caught_up() -> bool:
        return _value(await _scrape(api), "protocol_outbox_lag_seconds") == 0.0

    await eventually(caught_up, within_s=30)


WORKER_METRICS = """
import sys
import httpx
from service.observability import metrics
metrics.serve_worker_metrics(sys.argv[1])
metrics.rule_fired("on_ticket_created")
metrics.rule_executed("failed", 2)
metrics.workflow_started("itsm-network", "automatic")
print(httpx.get(f"http://{sys.argv[1]}/metrics", timeout=10).text)
"""


def test_the_worker_serves_its_counters_beside_the_sdk_metrics() -> None:
    # Its own process: the Temporal runtime it installs is process-wide.
    address = f"127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-c", WORKER_METRICS, address], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(
        line.startswith("protocol_rule_firings_total{")
        and 'trigger="on_ticket_created"' in line
        and line.endswith(" 1")
        for line in lines
    ), lines
    assert any(
        line.startswith("protocol_rule_executions_total{")
        and 'outcome="failed"' in line
        and line.endswith(" 2")
        for line in lines
    ), lines
    assert any(
        line.startswith("protocol_workflow_starts_total{") and 'task_queue="itsm-network"' in line
        for line in lines
    ), lines
