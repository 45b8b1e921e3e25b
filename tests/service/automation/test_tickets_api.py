"""The ticket endpoints: fields, validation, filters, pagination, updates as events."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


async def test_create_read_update_ticket(
    api: httpx.AsyncClient, write_headers: dict[str, str], read_headers: dict[str, str]
) -> None:
    r = await api.post(
        "/v1/tickets",
        headers=write_headers,
        json={"title": "VPN broken", "category": "network", "requester": "ann@example.com"},
    )
    assert r.status_code == 201, r.text
    ticket = r.json()
    assert set(ticket) == {
        "id",
        "title",
        "description",
        "category",
        "priority",
        "status",
        "assignee",
        "requester",
        "created_at",
        "updated_at",
        "last_activity_at",
    }
    assert ticket["id"].startswith("TKT-")
    assert int(ticket["id"][4:]) > 0
    assert ticket["priority"] == "P3"
    assert ticket["status"] == "open"
    assert ticket["created_at"] == ticket["updated_at"] == ticket["last_activity_at"]
    r = await api.get(f"/v1/tickets/{ticket['id']}", headers=read_headers)
    assert r.json() == ticket
    r = await api.patch(
        f"/v1/tickets/{ticket['id']}",
        headers=write_headers,
        json={"status": "in_progress", "assignee": "bob"},
    )
    assert r.status_code == 200
    assert r.json()["status"] == "in_progress"
    assert r.json()["assignee"] == "bob"
    assert r.json()["title"] == "VPN broken"
    r = await api.patch(f"/v1/tickets/{ticket['id']}", headers=write_headers, json={})
    assert r.status_code == 200
    assert r.json()["status"] == "in_progress"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "x", "priority": "P5"},
        {"title": "x", "status": "done"},
        {"title": "x", "id": "TKT-1"},
        {"title": "x" * 201},
        {"title": 5},
    ],
)
async def test_invalid_tickets_are_refused(
    api: httpx.AsyncClient, write_headers: dict[str, str], body: dict[str, object]
) -> None:
    r = await api.post("/v1/tickets", headers=write_headers, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "invalid_request"


async def test_update_errors(api: httpx.AsyncClient, write_headers: dict[str, str]) -> None:
    ticket = (await api.post("/v1/tickets", headers=write_headers, json={"title": "t"})).json()
    url = f"/v1/tickets/{ticket['id']}"
    assert (await api.patch(url, headers=write_headers, json={"status": None})).status_code == 400
    assert (await api.patch(url, headers=write_headers, json={"created_at": 1})).status_code == 400
    r = await api.patch("/v1/tickets/TKT-99999999", headers=write_headers, json={"title": "y"})
    assert r.status_code == 404
    assert r.json()["type"] == "not_found"
    assert (await api.get("/v1/tickets/nonsense", headers=write_headers)).status_code == 404


async def test_filters_and_pagination(
    api: httpx.AsyncClient, write_headers: dict[str, str]
) -> None:
    ids = []
    for i in range(5):
        r = await api.post(
            "/v1/tickets",
            headers=write_headers,
            json={"title": f"paged {i}", "category": "pagination", "priority": "P4"},
        )
        ids.append(r.json()["id"])
    page = (
        await api.get(
            "/v1/tickets", headers=write_headers, params={"category": "pagination", "limit": 2}
        )
    ).json()
    assert page["has_more"] is True
    assert [t["id"] for t in page["data"]] == ids[::-1][:2]
    seen = [t["id"] for t in page["data"]]
    while page["has_more"]:
        page = (
            await api.get(
                "/v1/tickets",
                headers=write_headers,
                params={"category": "pagination", "limit": 2, "starting_after": seen[-1]},
            )
        ).json()
        seen += [t["id"] for t in page["data"]]
    assert seen == ids[::-1]
    back = (
        await api.get(
            "/v1/tickets",
            headers=write_headers,
            params={"category": "pagination", "ending_before": ids[0], "limit": 2},
        )
    ).json()
    assert [t["id"] for t in back["data"]] == [ids[2], ids[1]]
    assert back["has_more"] is True
    r = await api.get(
        "/v1/tickets",
        headers=write_headers,
        params={"category": "pagination", "status": "open", "priority": "P4", "limit": 100},
    )
    assert len(r.json()["data"]) == 5
    r = await api.get("/v1/tickets", headers=write_headers, params={"status": "weird"})
    assert r.status_code == 400
    r = await api.get("/v1/tickets", headers=write_headers, params={"starting_after": "x"})
    assert r.status_code == 400


async def test_idempotent_ticket_creation(
    api: httpx.AsyncClient, write_headers: dict[str, str]
) -> None:
    headers = {**write_headers, "Idempotency-Key": "ticket-key-1"}
    first = await api.post("/v1/tickets", headers=headers, json={"title": "once"})
    second = await api.post("/v1/tickets", headers=headers, json={"title": "once"})
    assert first.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    third = await api.post("/v1/tickets", headers=headers, json={"title": "twice"})
    assert third.status_code == 409
