"""A replay against the real stack: every call made once, every workflow found, timelines back;
and a replay that survives a restart of the worker and of the API in its middle."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import timedelta

import polars as pl
import pytest
from scipy import stats
from waiting import eventually, eventually_sync

from protocol_lab.client import AsyncClient, StartWorkflowAction, Ticket
from protocol_lab.compare import compare
from protocol_lab.demo import ServiceHandle, warm_up
from protocol_lab.replay import (
    Action,
    ReplayResult,
    ReplayScript,
    load_replayed,
    patient_retry,
    replay_async,
    simulated_timelines,
)
from protocol_lab.sim import SimulationResult
from service.stack import _port_open

from .conftest import COMPRESSION


async def _play(
    live: ServiceHandle,
    script: ReplayScript,
    *,
    on_action: object = None,
) -> tuple[ReplayResult, list[dict[str, object]], dict[tuple[str, str], list[str]]]:
    async with AsyncClient(
        base_url=live.base_url, token=live.token, retry=patient_retry(), timeout=30.0
    ) as client:
        await warm_up(client)
        played = await replay_async(
            script,
            client,
            compression=COMPRESSION,
            concurrency=8,
            progress=False,
            on_action=on_action,  # type: ignore[arg-type]
        )
        tickets = [t async for t in client.aiter_tickets(requester=f"replay-{played.run_id}")]
        ours = {t.id for t in tickets}
        started: dict[tuple[str, str], list[str]] = {}
        async for rule in client.aiter_rules():
            action = rule.action
            if not isinstance(action, StartWorkflowAction):
                continue
            async for ex in client.aiter_rule_executions(rule.id, page_size=100):
                if ex.workflow_id and ex.ticket_id in ours:
                    key = (ex.ticket_id, action.workflow_name)
                    started.setdefault(key, []).append(ex.workflow_id)
        return played, tickets, started


def _check_nothing_lost_or_doubled(
    script: ReplayScript,
    played: ReplayResult,
    tickets: list[Ticket],
    started: dict[tuple[str, str], list[str]],
) -> None:
    creations = [a for a in script.actions if a.kind == "create_ticket"]
    # every scripted ticket exists exactly once
    assert len(tickets) == len(creations)
    assert len({t.id for t in tickets}) == len(creations)
    assert set(played.tickets.values()) == {t.id for t in tickets}
    # every scripted workflow was started exactly once, and no other
    assert all(len(ids) == 1 for ids in started.values()), started
    expected = Counter(
        (played.tickets[w.ticket], w.workflow_name)
        for w in script.workflows
        if w.ticket in played.tickets
    )
    assert Counter({k: len(v) for k, v in started.items()}) == expected
    assert set(played.workflows) == {w.workflow for w in script.workflows}
    assert len(set(played.workflows.values())) == len(played.workflows)
    # the replay found (in each ticket's workflow list) the very workflows the rules started
    assert set(played.workflows.values()) == {i for ids in started.values() for i in ids}


def test_warm_up_returns_once_the_worker_has_taken_the_first_step(live: ServiceHandle) -> None:
    # The workflow's status names its first step from the start; what shows the worker ran is
    # the timeline: the first step started before the warm-up's cancel.
    async def warm() -> list[str]:
        async with AsyncClient(
            base_url=live.base_url, token=live.token, retry=patient_retry(), timeout=30.0
        ) as client:
            workflow_id = await warm_up(client)
            return [entry.event for entry in (await client.get_workflow(workflow_id)).timeline]

    events = asyncio.run(warm())
    assert events[:2] == ["workflow_started", "activity_started"]


def test_replay_makes_every_call_once_and_reads_timelines_back(
    live: ServiceHandle, small_script: tuple[ReplayScript, SimulationResult]
) -> None:
    script, simulation = small_script
    played, tickets, started = asyncio.run(_play(live, script))
    assert not played.errors, [(e.index, e.kind, e.due_s, e.detail) for e in played.errors]
    _check_nothing_lost_or_doubled(script, played, tickets, started)
    # a signal is taken, or refused when its wait already timed out on the service (at this
    # compression a one-hour timeout lasts one second of wall time)
    signals = played.summary().filter(pl.col("kind") == "signal").row(0, named=True)
    assert signals["ok"] + signals["refused"] == script.counts()["signal"]
    assert signals["ok"] > 0

    async def back(*, temporal: bool) -> object:
        async with AsyncClient(base_url=live.base_url, token=live.token) as client:
            return await load_replayed(
                played,
                client,
                temporal_address=live.temporal_address if temporal else None,
                temporal_namespace=live.temporal_namespace,
                cut=False,
            )

    through_api = asyncio.run(back(temporal=False))
    real = asyncio.run(back(temporal=True))
    # Through the public API alone, the workflows that had closed have the histories' events
    # at the same times, to within a simulated second (whole wall seconds would be up to
    # COMPRESSION simulated seconds off; float rounding of wall time, times COMPRESSION, is
    # what the second allows for).
    columns = ["workflow_id", "event", "timestamp"]
    api_events = through_api.events.collect().select(columns)  # type: ignore[attr-defined]
    history_events = real.events.collect().select(columns)  # type: ignore[attr-defined]
    terminal = ["workflow_completed", "workflow_failed", "workflow_cancelled"]
    closed = api_events.filter(pl.col("event").cast(pl.String).is_in(terminal))
    ids = closed["workflow_id"].to_list()
    assert ids
    mine = api_events.filter(pl.col("workflow_id").is_in(ids)).sort("timestamp")
    theirs = history_events.filter(pl.col("workflow_id").is_in(ids))
    assert mine.height == theirs.height
    matched = mine.join_asof(
        theirs.sort("timestamp").rename({"timestamp": "history_timestamp"}),
        left_on="timestamp",
        right_on="history_timestamp",
        by=["workflow_id", "event"],
        strategy="nearest",
        tolerance="1s",
        check_sortedness=False,  # both sorted by time above; polars cannot check within groups
    )
    assert matched["history_timestamp"].null_count() == 0, matched
    workflows = real.workflows.collect()  # type: ignore[attr-defined]
    assert workflows.height == len(script.workflows)
    assert set(workflows["sim_workflow_id"]) == {w.workflow for w in script.workflows}
    # timestamps are on the simulated clock, inside the script's window
    window_end = script.origin + timedelta(seconds=script.end_s)
    assert workflows["started_at"].min() >= script.origin
    sim = simulated_timelines(simulation, until_s=script.end_s)
    comparison = compare(sim, real, by="workflow_name", as_of=window_end)  # type: ignore[arg-type]
    counts = comparison.counts
    assert (counts["started_sim"] == counts["started_real"]).all(), counts
    table = comparison.cycle_times.drop_nulls("ks")
    assert table.height >= 2
    # each distance is the one between the two sides' closed cycle times, computed afresh here
    sim_wf = sim.workflows.collect()
    for row in table.iter_rows(named=True):
        a, b = (
            frame.filter(pl.col("workflow_name").cast(pl.String) == row["workflow_name"])[
                "cycle_time_s"
            ]
            .drop_nulls()
            .to_numpy()
            for frame in (sim_wf, workflows)
        )
        assert row["ks"] == pytest.approx(stats.ks_2samp(a, b).statistic)
        assert row["wasserstein_s"] == pytest.approx(stats.wasserstein_distance(a, b))
    # and the service's log against itself is at no distance
    itself = compare(real, real, by="workflow_name", as_of=window_end)  # type: ignore[arg-type]
    assert (itself.cycle_times.drop_nulls("ks")["ks"] == 0).all()


def test_replay_survives_worker_and_api_restarts(
    live: ServiceHandle, small_script: tuple[ReplayScript, SimulationResult]
) -> None:
    script, _ = small_script
    stack = live.stack
    worker = next(c for c in stack.children if c.name == "worker")
    api = next(c for c in stack.children if c.name == "api")
    host, port = live.base_url.removeprefix("http://").split(":")
    n = len(script.actions)
    restarted: list[str] = []

    def restart_worker() -> None:
        worker.kill()
        worker.start()
        restarted.append("worker")

    def restart_api() -> None:
        api.kill()
        api.start()
        eventually_sync(lambda: _port_open(host, int(port)), within_s=60)
        restarted.append("api")

    def disturb(index: int, action: Action) -> None:
        if index == n // 3:
            threading.Thread(target=restart_worker).start()
        elif index == (2 * n) // 3:
            threading.Thread(target=restart_api).start()

    played, tickets, started = asyncio.run(_play(live, script, on_action=disturb))
    assert restarted == ["worker", "api"]
    assert not played.errors, [(e.index, e.kind, e.due_s, e.detail) for e in played.errors]
    _check_nothing_lost_or_doubled(script, played, tickets, started)

    async def outcomes() -> list[tuple[str, str]]:
        async with AsyncClient(base_url=live.base_url, token=live.token) as client:

            async def read() -> list[tuple[str, str]]:
                found = []
                for workflow_id in played.workflows.values():
                    workflow = await client.get_workflow(workflow_id)
                    last = workflow.timeline[-1].outcome if workflow.timeline else None
                    found.append((str(workflow.status), str(last)))
                return found

            async def all_closed() -> list[tuple[str, str]] | None:
                found = await read()
                return found if all(s != "active" for s, _ in found) else None

            try:
                return await eventually(all_closed, within_s=30, every_s=0.5)
            except AssertionError:  # the late ones may still be running: checked below
                return await read()

    # The restarts cost no workflow: none is stuck, and every failure is the plan's own
    # (a wait that timed out, a rejection, an emulated integration failure: its outcome says
    # which), never a lost activity or a lost signal.
    found = asyncio.run(outcomes())
    late = sum(1 for w in script.workflows if w.started_s > script.end_s - 4 * 3600)
    assert sum(1 for s, _ in found if s == "active") <= late
    reasons = [outcome for s, outcome in found if s == "failed"]
    assert set(reasons) <= {"timed_out", "rejected", "failed"}, reasons
    assert sum(1 for s, _ in found if s == "completed") > len(found) // 2
