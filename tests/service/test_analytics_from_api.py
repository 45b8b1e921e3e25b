"""The analytics loader reads real workflows back from the running API, following every page."""

from __future__ import annotations

from typing import Any

import httpx
import polars as pl
from fastapi import FastAPI

from protocol_lab.analytics import Timelines
from protocol_lab.client import AsyncClient
from protocol_lab.domain import load_catalog


async def test_timelines_from_the_live_api_match_the_workflows(
    worker: None,
    service_app: FastAPI,
    api: httpx.AsyncClient,
    write_headers: dict[str, str],
    read_headers: dict[str, str],
    wait_for: Any,
) -> None:
    created = []
    for n in range(3):
        answer = await api.post(
            "/v1/workflows",
            headers=write_headers,
            json={
                "name": "Password Reset",
                "task_queue": "itsm-workflows",
                "input": {"ticket_id": f"TKT-9{n}"},
            },
        )
        assert answer.status_code == 201, answer.text
        created.append(answer.json()["id"])
    for workflow_id in created:
        answer = await api.post(
            f"/v1/workflows/{workflow_id}/signal",
            headers=write_headers,
            json={"signal_name": "identity_verified", "payload": {"verified_by": "usr_1"}},
        )
        assert answer.json()["accepted"] is True

    for workflow_id in created:
        await wait_for(workflow_id, "completed")

    client = AsyncClient(
        base_url="http://testserver",
        token=read_headers["Authorization"].removeprefix("Bearer "),
        transport=httpx.ASGITransport(app=service_app),
    )
    async with client:
        timelines = await Timelines.afrom_api(client, task_queue="itsm-workflows", progress=False)

    mine = timelines.workflows.filter(pl.col("workflow_id").is_in(created)).collect()
    assert mine.height == 3
    assert set(mine["workflow_name"]) == {"Password Reset"}
    # The API's timestamps are whole seconds; at this time scale a run may fit in one.
    assert (mine["cycle_time_s"] >= 0).all()
    assert mine["completed_at"].is_not_null().all()
    assert set(mine["status"]) == {"completed"}
    assert set(mine["ticket_id"]) == {"TKT-90", "TKT-91", "TKT-92"}
    events = timelines.events.filter(pl.col("workflow_id").is_in(created)).collect()
    plan_steps = {step.id for step in load_catalog()["Password Reset"].steps}
    seen_steps = set(events["step"].drop_nulls())
    assert seen_steps <= plan_steps
    assert "reset_password" in seen_steps
    per_workflow = events.group_by("workflow_id").agg(
        pl.col("event").cast(pl.String).eq("workflow_completed").sum().alias("completions")
    )
    assert per_workflow["completions"].to_list() == [1, 1, 1]
