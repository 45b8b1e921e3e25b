"""Cursor pagination over a few hundred workflows, both directions, with and without filters:
pages never skip or repeat a workflow, newest first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from waiting import eventually

from protocol_lab.domain import TaskQueue
from service.state import Resources
from service.temporal.ids import order_of

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

QUEUES = [q.value for q in TaskQueue]
PER_KIND = 150


@pytest.fixture(scope="module")
async def population(
    api: httpx.AsyncClient, worker: None, write_headers: dict[str, str], app_state: Resources
) -> AsyncIterator[dict[str, dict[str, str]]]:
    """300 workflows: 150 drafts (scheduled an hour ahead) and 150 active (waiting for an
    approval), spread over the five task queues. Maps id -> {status, task_queue}."""
    gate = asyncio.Semaphore(16)
    created: dict[str, dict[str, str]] = {}

    async def one(index: int, draft: bool) -> None:
        queue = QUEUES[index % len(QUEUES)]
        body: dict[str, Any] = {
            "name": "Laptop Provisioning - New Hire",
            "task_queue": queue,
            "time_scale": 1,
        }
        if draft:
            body |= {"trigger_type": "scheduled", "start_at": time.time() + 3600}
        async with gate:
            response = await api.post("/v1/workflows", headers=write_headers, json=body)
        assert response.status_code == 201, response.text
        created[response.json()["id"]] = {
            "status": "draft" if draft else "active",
            "task_queue": queue,
        }

    await asyncio.gather(*(one(i, draft) for i in range(PER_KIND) for draft in (True, False)))
    lowest = min(order_of(i) for i in created)
    client = app_state.temporal

    async def all_visible() -> bool:  # visibility is eventually consistent
        visible = await client.count_workflows(f"ProtocolOrder >= {lowest}")
        running = await client.count_workflows(
            f"ProtocolOrder >= {lowest} AND ProtocolStatus = 'active'"
        )
        return visible.count >= len(created) and running.count >= PER_KIND

    await eventually(all_visible, within_s=10)
    yield created

    async def terminate(workflow_id: str) -> None:
        async with gate:
            await client.get_workflow_handle(workflow_id).terminate("pagination test over")

    await asyncio.gather(*(terminate(workflow_id) for workflow_id in created))


async def walk(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    params: dict[str, Any],
    *,
    backwards: bool,
    oldest: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every item over all pages; backwards comes back from the oldest item with ending_before."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    if backwards:
        if oldest is None:
            oldest = (await walk(api, headers, params, backwards=False))[-1]
        cursor = oldest["id"]
        items = [oldest]
    while True:
        query = dict(params)
        if cursor is not None:
            query["ending_before" if backwards else "starting_after"] = cursor
        response = await api.get("/v1/workflows", headers=headers, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["data"]) <= params["limit"]
        if backwards:
            items = page["data"] + items
        else:
            items += page["data"]
        if not page["has_more"]:
            return items
        assert len(page["data"]) == params["limit"]
        cursor = page["data"][0 if backwards else -1]["id"]


def check_order(items: list[dict[str, Any]]) -> list[str]:
    ids = [w["id"] for w in items]
    assert len(ids) == len(set(ids)), "a workflow was repeated"
    orders = [order_of(i) for i in ids]
    assert orders == sorted(orders, reverse=True), "not newest first"
    return ids


async def test_all_pages_forward_and_backward(
    api: httpx.AsyncClient,
    read_headers: dict[str, str],
    population: dict[str, dict[str, str]],
) -> None:
    params = {"limit": 37}
    items = await walk(api, read_headers, params, backwards=False)
    forward = check_order(items)
    assert set(population) <= set(forward)
    back = await walk(api, read_headers, params, backwards=True, oldest=items[-1])
    assert check_order(back) == forward


@pytest.mark.parametrize(
    ("status", "queue"),
    [
        ("draft", "itsm-fleet"),
        ("active", "itsm-accessories"),
        ("draft", None),
        (None, "itsm-network"),
    ],
)
async def test_filtered_pages(
    api: httpx.AsyncClient,
    read_headers: dict[str, str],
    population: dict[str, dict[str, str]],
    status: str | None,
    queue: str | None,
) -> None:
    params: dict[str, Any] = {"limit": 9}
    if status:
        params["status"] = status
    if queue:
        params["task_queue"] = queue
    items = await walk(api, read_headers, params, backwards=False)
    ids = check_order(items)
    for item in items:
        assert status is None or item["status"] == status
        assert queue is None or item["task_queue"] == queue
    expected = {
        i
        for i, w in population.items()
        if (status is None or w["status"] == status) and (queue is None or w["task_queue"] == queue)
    }
    assert expected <= set(ids)
    back = await walk(api, read_headers, params, backwards=True, oldest=items[-1])
    assert check_order(back) == ids


async def test_default_page_is_ten_newest(
    api: httpx.AsyncClient, read_headers: dict[str, str], population: dict[str, dict[str, str]]
) -> None:
    page = (await api.get("/v1/workflows", headers=read_headers)).json()
    assert len(page["data"]) == 10
    assert page["has_more"] is True
    check_order(page["data"])
    newest = max(population, key=order_of)
    assert order_of(page["data"][0]["id"]) >= order_of(newest)
