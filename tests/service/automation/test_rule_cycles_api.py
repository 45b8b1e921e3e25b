"""The rule endpoints' loop check, over real HTTP: large rule sets answer promptly.

The service runs in uvicorn on a loopback port (in a thread) on a store of its own, so a check
that blocked the server's event loop would show as a client timeout here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import serving

from service.app import create_app
from service.settings import Settings

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

# Ample for one rule creation; an exponential check takes about a minute for the 11th rule.
PROMPT_S = 10.0


@pytest.fixture(scope="module")
def live_url(service_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service in uvicorn on a loopback port, with a store of its own."""
    state: Path = tmp_path_factory.mktemp("rule-cycles-live")
    settings = service_settings.model_copy(
        update={"state_dir": state, "database_url": f"sqlite+aiosqlite:///{state / 'db.sqlite'}"}
    )
    with serving(create_app(settings), name="rule-cycles-uvicorn") as url:
        yield url


def _routing(i: int, assignee: str) -> dict[str, Any]:
    return {
        "name": f"route c{i}",
        "trigger": "on_ticket_updated",
        "conditions": {"category": f"c{i}"},
        "action": {"type": "update_field", "field": "assignee", "value": assignee},
    }


def test_the_eleventh_routing_rule_is_accepted_promptly(
    live_url: str, write_headers: dict[str, str]
) -> None:
    with httpx.Client(base_url=live_url, headers=write_headers, timeout=PROMPT_S) as client:
        for i in range(11):
            r = client.post("/v1/automation/rules", json=_routing(i, "alice"))
            assert r.status_code == 201, r.text
        r = client.get("/v1/automation/rules", params={"enabled": True, "limit": 100})
        assert len(r.json()["data"]) == 11


def test_a_distinct_person_per_category_is_accepted(
    live_url: str, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    with httpx.Client(base_url=live_url, headers=write_headers, timeout=PROMPT_S) as client:
        ids = []
        for i in range(100, 102):
            r = client.post("/v1/automation/rules", json=_routing(i, f"agent{i}"))
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        for rule_id in ids:
            r = client.delete(f"/v1/automation/rules/{rule_id}", headers=admin_headers)
            assert r.status_code == 200


def test_a_status_ping_pong_is_refused_naming_both_rules(
    live_url: str, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    def flip(name: str, when: str, to: str) -> dict[str, Any]:
        return {
            "name": name,
            "trigger": "on_ticket_updated",
            "conditions": {"status": when},
            "action": {"type": "update_field", "field": "status", "value": to},
        }

    with httpx.Client(base_url=live_url, headers=write_headers, timeout=PROMPT_S) as client:
        a = client.post("/v1/automation/rules", json=flip("Park", "in_progress", "pending"))
        assert a.status_code == 201, a.text
        b = client.post("/v1/automation/rules", json=flip("Resume", "pending", "in_progress"))
        assert b.status_code == 409, b.text
        body = b.json()
        assert body["type"] == "conflict"
        assert "'Park'" in body["message"]
        assert "'Resume'" in body["message"]
        r = client.delete(f"/v1/automation/rules/{a.json()['id']}", headers=admin_headers)
        assert r.status_code == 200
