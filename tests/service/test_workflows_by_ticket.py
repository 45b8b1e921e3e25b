"""Reading workflows by ticket and with sub-second timestamps, on the real dev server and worker.

``GET /v1/workflows?ticket_id=TKT-<n>`` keeps the workflows started for that ticket (with the
other filters and the cursor, archived ones included as in the unfiltered list);
``timestamps=float`` gives every timestamp of the workflow reads with its sub-second part.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from stores import empty_database
from waiting import eventually

from protocol_lab.domain import TimelineEvent
from service.errors import InvalidRequestError
from service.executions import list_workflows
from service.state import Resources
from service.store.archive import list_archived, upsert_archived
from service.store.db import create_schema, make_sessionmaker
from service.temporal.ids import new_workflow_id, order_of

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


def new_ticket() -> str:
    """A ticket id no other test uses (the Temporal server is shared by the whole session)."""
    return f"TKT-{secrets.randbelow(10**11) + 10**11}"


def quick(ticket: str | None) -> dict[str, Any]:
    """A workflow that completes within a second or two."""
    return {
        "name": "VPN Access Revocation",
        "task_queue": "itsm-network",
        "trigger_type": "automatic",
        "input": {"ticket_id": ticket} if ticket else {},
        "time_scale": 100_000,
    }


def draft(ticket: str | None) -> dict[str, Any]:
    """A workflow scheduled an hour ahead: it stays a draft, nothing runs."""
    return {
        "name": "SLA Escalation",
        "task_queue": "itsm-high-priority",
        "trigger_type": "scheduled",
        "input": {"ticket_id": ticket} if ticket else {},
        "start_at": time.time() + 3600,
    }


@pytest.fixture
async def started(
    api: httpx.AsyncClient, worker: None, write_headers: dict[str, str], app_state: Resources
) -> AsyncIterator[list[str]]:
    """Ids of the workflows a test starts through :func:`start`; those still open are
    terminated afterwards."""
    ids: list[str] = []
    yield ids
    for workflow_id in ids:
        status = await api.get(f"/v1/workflows/{workflow_id}/status", headers=write_headers)
        if status.status_code == 200 and status.json()["status"] in ("draft", "active", "paused"):
            await app_state.temporal.get_workflow_handle(workflow_id).terminate("test over")


async def start(
    api: httpx.AsyncClient, headers: dict[str, str], ids: list[str], body: dict[str, Any]
) -> str:
    response = await api.post("/v1/workflows", headers=headers, json=body)
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["id"]
    ids.append(workflow_id)
    return workflow_id


async def listed(api: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[str]:
    """Every id of a list, page by page forward."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        query = dict(params) | ({"starting_after": cursor} if cursor else {})
        response = await api.get("/v1/workflows", headers=headers, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [w["id"] for w in page["data"]]
        if not page["has_more"]:
            return ids
        cursor = ids[-1]


async def lists_exactly(
    api: httpx.AsyncClient, headers: dict[str, str], expected: list[str], **params: Any
) -> list[str]:
    """Wait (visibility lags) until the list of ``params`` is ``expected``, in that order."""

    async def probe() -> list[str] | None:
        got = await listed(api, headers, **params)
        return got if got == expected else None

    found: list[str] = await eventually(probe, within_s=20, every_s=0.2)
    return found


def newest_first(*ids: str) -> list[str]:
    return sorted(ids, key=order_of, reverse=True)


async def test_ticket_filter_lists_exactly_each_tickets_workflows(
    api: httpx.AsyncClient,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
    wait_for: Any,
    started: list[str],
) -> None:
    one, two = new_ticket(), new_ticket()
    one_done = await start(api, write_headers, started, quick(one))
    two_done = await start(api, write_headers, started, quick(two))
    one_draft = await start(api, write_headers, started, draft(one))
    two_draft = await start(api, write_headers, started, draft(two))
    one_more = await start(api, write_headers, started, draft(one))
    untagged = await start(api, write_headers, started, draft(None))
    await wait_for(one_done, "completed")
    await wait_for(two_done, "completed")

    mine = newest_first(one_done, one_draft, one_more)
    theirs = newest_first(two_done, two_draft)
    await lists_exactly(api, write_headers, mine, ticket_id=one)
    await lists_exactly(api, write_headers, theirs, ticket_id=two, limit=1)
    assert untagged not in await listed(api, write_headers, ticket_id=one)

    # with the other filters
    await lists_exactly(api, write_headers, [one_done], ticket_id=one, status="completed")
    drafts = newest_first(one_draft, one_more)
    await lists_exactly(api, write_headers, drafts, ticket_id=one, status="draft")
    await lists_exactly(api, write_headers, drafts, ticket_id=one, task_queue="itsm-high-priority")
    await lists_exactly(api, write_headers, [], ticket_id=one, task_queue="itsm-fleet")
    await lists_exactly(api, write_headers, [], ticket_id=new_ticket())

    # with the cursor, both ways
    first = await api.get(
        "/v1/workflows", headers=write_headers, params={"ticket_id": one, "limit": 2}
    )
    assert first.json()["has_more"] is True
    assert [w["id"] for w in first.json()["data"]] == mine[:2]
    rest = await api.get(
        "/v1/workflows",
        headers=write_headers,
        params={"ticket_id": one, "limit": 2, "starting_after": mine[1]},
    )
    assert (rest.json()["has_more"], [w["id"] for w in rest.json()["data"]]) == (False, mine[2:])
    back = await api.get(
        "/v1/workflows",
        headers=write_headers,
        params={"ticket_id": one, "limit": 1, "ending_before": mine[2]},
    )
    assert (back.json()["has_more"], [w["id"] for w in back.json()["data"]]) == (True, [mine[1]])

    # Archived workflows stay in the ticket's list, as archived, and in status=archived.
    async def archived() -> bool:
        response = await api.post(
            "/v1/workflows/archive", headers=admin_headers, json={"older_than_s": 0}
        )
        assert response.status_code == 200, response.text
        statuses = [
            (await api.get(f"/v1/workflows/{w}/status", headers=write_headers)).json()["status"]
            for w in (one_done, two_done)
        ]
        return statuses == ["archived", "archived"]

    await eventually(archived, within_s=30, every_s=0.2)
    await lists_exactly(api, write_headers, mine, ticket_id=one)
    await lists_exactly(api, write_headers, theirs, ticket_id=two)
    await lists_exactly(api, write_headers, [one_done], ticket_id=one, status="archived")
    await lists_exactly(api, write_headers, [two_done], ticket_id=two, status="archived")
    await lists_exactly(api, write_headers, [], ticket_id=one, status="completed")
    page = (await api.get("/v1/workflows", headers=write_headers, params={"ticket_id": one})).json()
    assert {w["id"]: w["status"] for w in page["data"]} == {
        one_done: "archived",
        one_draft: "draft",
        one_more: "draft",
    }


@pytest.mark.parametrize(
    "ticket_id",
    ["", "TKT-", "TKT-1234567890123", "tkt-12", "TKT-12a", "TKT-١٢", "TKT-1' OR 'a'='a", "x" * 300],
)
async def test_a_bad_ticket_id_is_400(
    api: httpx.AsyncClient, read_headers: dict[str, str], ticket_id: str
) -> None:
    response = await api.get("/v1/workflows", headers=read_headers, params={"ticket_id": ticket_id})
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"type", "message"}
    assert body["type"] == "invalid_request"
    assert "ticket_id" in body["message"]


async def test_the_service_refuses_a_bad_ticket_id(app_state: Resources) -> None:
    with pytest.raises(InvalidRequestError):
        await list_workflows(app_state, ticket_id="TKT-12 OR 1=1")


@pytest.mark.parametrize("path", ["/v1/workflows", "/v1/workflows/wf_00000000000/status"])
async def test_an_unknown_timestamps_format_is_400(
    api: httpx.AsyncClient, read_headers: dict[str, str], path: str
) -> None:
    response = await api.get(path, headers=read_headers, params={"timestamps": "double"})
    assert response.status_code == 400, response.text
    assert "timestamps" in response.json()["message"]


def timestamps_of(workflow: dict[str, Any]) -> list[Any]:
    return [
        workflow["started_at"],
        workflow["completed_at"],
        *(e["timestamp"] for e in workflow["timeline"]),
    ]


def agree(precise: dict[str, Any], whole: dict[str, Any]) -> None:
    """``precise`` is ``whole`` with float timestamps whose floors are the whole seconds."""
    floats, ints = timestamps_of(precise), timestamps_of(whole)
    assert len(floats) == len(ints)
    for value, second in zip(floats, ints, strict=True):
        if second is None:
            assert value is None
            continue
        assert type(second) is int
        assert type(value) is float
        assert math.floor(value) == second
    plain = {k: v for k, v in precise.items() if k not in ("started_at", "completed_at")}
    plain["timeline"] = [{**e, "timestamp": math.floor(e["timestamp"])} for e in plain["timeline"]]
    assert plain == {k: v for k, v in whole.items() if k not in ("started_at", "completed_at")}


async def test_precise_timestamps_agree_with_the_whole_seconds(
    api: httpx.AsyncClient,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
    wait_for: Any,
    started: list[str],
) -> None:
    ticket = new_ticket()
    done = await start(api, write_headers, started, quick(ticket))
    waiting = await start(api, write_headers, started, draft(ticket))
    await wait_for(done, "completed")

    async def read(workflow_id: str, suffix: str = "", **params: Any) -> dict[str, Any]:
        response = await api.get(
            f"/v1/workflows/{workflow_id}{suffix}", headers=write_headers, params=params
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    whole = await read(done)
    precise = await read(done, timestamps="float")
    assert await read(done, timestamps="int") == whole
    agree(precise, whole)
    assert len(timestamps_of(precise)) > 10
    # microsecond times: at least one of a dozen stamps is not on a whole second
    assert any(v != math.floor(v) for v in timestamps_of(precise))
    assert precise["started_at"] <= precise["timeline"][0]["timestamp"]
    stamps = [e["timestamp"] for e in precise["timeline"]]
    assert stamps == sorted(stamps)
    # the close as the history has it (100 ns) and as visibility has it (1 us)
    assert abs(stamps[-1] - precise["completed_at"]) < 2e-6  # plus float rounding

    status, precise_status = (
        await read(done, "/status"),
        await read(done, "/status", timestamps="float"),
    )
    assert type(precise_status["started_at"]) is float
    assert precise_status["started_at"] == precise["started_at"]
    assert math.floor(precise_status["started_at"]) == status["started_at"]
    assert precise_status | {"started_at": status["started_at"]} == status

    drafted = await read(waiting, timestamps="float")
    assert type(drafted["started_at"]) is float
    assert math.floor(drafted["started_at"]) == (await read(waiting))["started_at"]

    async def page(**params: Any) -> dict[str, Any] | None:
        response = await api.get(
            "/v1/workflows", headers=write_headers, params={"ticket_id": ticket} | params
        )
        body: dict[str, Any] = response.json()
        return body if len(body["data"]) == 2 else None

    listed_whole = await eventually(page, within_s=20, every_s=0.2)
    listed_precise = await page(timestamps="float")
    assert listed_precise is not None
    assert [w["id"] for w in listed_precise["data"]] == [waiting, done]
    assert listed_precise["data"][1] == precise
    for p, w in zip(listed_precise["data"], listed_whole["data"], strict=True):
        agree(p, w)

    # From the archive, the same sub-second times.
    async def archived() -> bool:
        response = await api.post(
            "/v1/workflows/archive", headers=admin_headers, json={"older_than_s": 0}
        )
        assert response.status_code == 200, response.text
        return bool((await read(done))["status"] == "archived")

    await eventually(archived, within_s=30, every_s=0.2)
    assert await read(done, timestamps="float") == precise | {"status": "archived"}
    assert await read(done) == whole | {"status": "archived"}
    archived_status = await read(done, "/status", timestamps="float")
    assert archived_status == precise_status | {"status": "archived"}
    archived_page = await page(timestamps="float")
    assert archived_page is not None
    assert archived_page["data"][1] == precise | {"status": "archived"}


# -- the archive table made before ticket_id existed ------------------------------------------

_OLD_ARCHIVE = """
CREATE TABLE workflow_archive (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    task_queue VARCHAR(64) NOT NULL,
    trigger_type VARCHAR(32) NOT NULL,
    status VARCHAR(16) NOT NULL,
    reason TEXT,
    started_at FLOAT,
    completed_at FLOAT NOT NULL,
    protocol_order BIGINT NOT NULL,
    steps_completed INTEGER NOT NULL,
    steps_total INTEGER NOT NULL,
    timeline TEXT NOT NULL,
    archived_at FLOAT NOT NULL
)
"""


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", id="postgresql", marks=pytest.mark.postgres)]
)
async def old_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres_url: str
) -> AsyncIterator[AsyncEngine]:
    """An empty database holding an archive table as an older version made it."""
    async with empty_database(
        request.param, folder=tmp_path_factory.mktemp("old"), postgres_url=postgres_url
    ) as engine:
        async with engine.begin() as conn:
            await conn.execute(text(_OLD_ARCHIVE))
        yield engine


async def test_an_older_archive_table_gains_the_ticket_column(old_store: AsyncEngine) -> None:
    base = 1_800_000_000.25
    old_id, new_id = new_workflow_id(now=base), new_workflow_id(now=base + 1)
    async with old_store.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO workflow_archive VALUES (:id, 'Password Reset', 'itsm-workflows',"
                " 'manual', 'completed', NULL, :at, :at, :order, 1, 1, '[]', :at)"
            ),
            {"id": old_id, "at": base, "order": order_of(old_id)},
        )
    for _ in range(2):  # idempotent
        await create_schema(old_store)
    async with old_store.connect() as conn:
        columns = await conn.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns("workflow_archive")}
        )
        indexes = await conn.run_sync(
            lambda sync: {i["name"] for i in inspect(sync).get_indexes("workflow_archive")}
        )
    assert "ticket_id" in columns
    assert "ix_workflow_archive_ticket_order" in indexes
    sessions = make_sessionmaker(old_store)
    async with sessions() as session:
        await upsert_archived(
            session,
            workflow_id=new_id,
            name="Password Reset",
            task_queue="itsm-workflows",
            trigger_type="manual",
            ticket_id="TKT-7",
            status="completed",
            reason=None,
            started_at=base + 1,
            completed_at=base + 2,
            protocol_order=order_of(new_id),
            steps_completed=1,
            steps_total=1,
            timeline=[
                TimelineEvent(new_id, "Password Reset", "itsm-workflows", "manual", "x", base + 1)
            ],
            archived_at=base + 3,
        )
        assert [r.id for r in await list_archived(session, ticket_id="TKT-7")] == [new_id]
        assert [r.id for r in await list_archived(session)] == [new_id, old_id]
        assert await list_archived(session, ticket_id="TKT-8") == []
