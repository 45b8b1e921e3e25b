"""Scheduled rules on a cron expression: checked on save, run by a Temporal Schedule whose
calendar fires exactly when the expression does."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from automation_helpers import P1_RULE
from temporalio.client import Client

from protocol_lab.domain.cron import next_fire
from service.automation.schedules import schedule_id

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

STALE = {**P1_RULE, "trigger": "scheduled", "conditions": {"status": "open", "idle_hours": 24}}


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"schedule_cron": "every monday"}, "schedule_cron"),
        ({"schedule_cron": "*/5 * * * * *"}, "seconds field is not supported"),
        ({"schedule_cron": "0 0 L * *"}, "not supported"),
        ({"schedule_cron": "0 0 * * 1#2"}, "not supported"),
        ({"schedule_cron": "0 0 31 2 *"}, "not a valid cron expression"),
        ({"schedule_cron": "61 * * * *"}, "not a valid cron expression"),
        ({"schedule_cron": "@reboot"}, "unknown macro"),
        ({"schedule_cron": "0 9 * * *", "schedule_interval_s": 60}, "not both"),
        ({"schedule_cron": "0 9 * * *", "trigger": "on_ticket_created"}, "only for scheduled"),
        ({"schedule_cron": "0 " * 100}, "schedule_cron"),
    ],
)
async def test_bad_cron_expressions_are_refused_on_save(
    api: httpx.AsyncClient, write_headers: dict[str, str], extra: dict[str, Any], fragment: str
) -> None:
    body = {**STALE, **extra}
    if body["trigger"] != "scheduled":
        body["conditions"] = {"status": "open"}
    r = await api.post("/v1/automation/rules", headers=write_headers, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "invalid_request"
    assert fragment in r.json()["message"]


async def _next_times(client: Client, rule_id: str) -> list[datetime]:
    desc = await client.get_schedule_handle(schedule_id(rule_id)).describe()
    return [t.astimezone(UTC) for t in desc.info.next_action_times]


def _cron_times(expression: str, after: datetime, count: int) -> list[datetime]:
    times = []
    for _ in range(count):
        after = next_fire(expression, after)
        times.append(after)
    return times


@pytest.mark.parametrize(
    "expression",
    [
        "*/20 9-17 * * mon-fri",
        # Both day fields restricted: cron fires on the 1st and 15th *and* on every Sunday.
        "30 6 1,15 * sun",
        "@daily",
    ],
)
async def test_the_schedule_fires_when_the_cron_expression_does(
    api: httpx.AsyncClient,
    temporal_client: Client,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
    expression: str,
) -> None:
    r = await api.post(
        "/v1/automation/rules", headers=write_headers, json={**STALE, "schedule_cron": expression}
    )
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["schedule_cron"] == expression
    assert "schedule_interval_s" not in rule
    planned = await _next_times(temporal_client, rule["id"])
    assert len(planned) >= 5
    # Temporal lists the next runs from now; cron's, from just before the first of them.
    expected = _cron_times(expression, planned[0] - timedelta(seconds=1), len(planned))
    assert planned == expected

    # An interval replaces the cron expression, and the other way round.
    r = await api.patch(
        f"/v1/automation/rules/{rule['id']}",
        headers=write_headers,
        json={"schedule_interval_s": 7200},
    )
    assert r.status_code == 200, r.text
    assert r.json()["schedule_interval_s"] == 7200
    assert "schedule_cron" not in r.json()
    desc = await temporal_client.get_schedule_handle(schedule_id(rule["id"])).describe()
    assert desc.schedule.spec.intervals[0].every == timedelta(hours=2)
    assert not desc.schedule.spec.calendars
    r = await api.patch(
        f"/v1/automation/rules/{rule['id']}",
        headers=write_headers,
        json={"schedule_cron": "0 12 * * *"},
    )
    assert r.status_code == 200, r.text
    assert "schedule_interval_s" not in r.json()
    planned = await _next_times(temporal_client, rule["id"])
    assert all((t.hour, t.minute, t.second) == (12, 0, 0) for t in planned)
    assert {b - a for a, b in itertools.pairwise(planned)} == {timedelta(days=1)}
    await api.delete(f"/v1/automation/rules/{rule['id']}", headers=admin_headers)
