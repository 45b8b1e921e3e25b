"""Reading a replay back: the replayed workflows' real timelines on the script's simulated clock.

:func:`load_replayed` reads the replayed workflows back (the API's timelines, or the exact
Temporal histories when a Temporal address is given) and maps their wall-clock timestamps
onto simulated time, so :mod:`protocol_lab.compare` can set them beside the simulation
(:func:`simulated_timelines`, cut at the same instant).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from protocol_lab.domain import TIMELINE_SCHEMA

if TYPE_CHECKING:
    from protocol_lab.analytics import Timelines
    from protocol_lab.client import AsyncClient
    from protocol_lab.replay.player import ReplayResult
    from protocol_lab.sim import SimulationResult

__all__ = ["load_replayed", "simulated_timelines", "to_simulated_time"]


def to_simulated_time(
    events: pl.DataFrame, *, started_at: datetime, origin: datetime, compression: float
) -> pl.DataFrame:
    """Map wall-clock timestamps of a replay onto the script's simulated clock."""
    t0 = int(started_at.timestamp() * 1_000_000)
    o = int(origin.timestamp() * 1_000_000)
    us = pl.col("timestamp").dt.epoch("us")
    mapped = ((us - t0).cast(pl.Float64) * compression).round().cast(pl.Int64) + o
    return events.with_columns(mapped.cast(pl.Datetime("us", "UTC")).alias("timestamp"))


async def _fetch_api(client: AsyncClient, ids: Sequence[str], concurrency: int) -> list[Any]:
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(workflow_id: str) -> Any:
        async with gate:
            return (await client.get_workflow(workflow_id, precise_timestamps=True)).raw

    return list(await asyncio.gather(*(one(w) for w in ids)))


async def _fetch_temporal(
    address: str, namespace: str, ids: Sequence[str], concurrency: int
) -> list[dict[str, Any]]:
    """Exact (sub-second) timelines from the histories, with the shared history mapper."""
    from protocol_lab.domain.extras import MissingExtraError
    from protocol_lab.domain.history import build_timeline

    try:
        from temporalio.client import Client as TemporalClient
    except ImportError as exc:
        raise MissingExtraError("temporal", "Reading timelines from Temporal", exc.name) from exc

    client = await TemporalClient.connect(address, namespace=namespace)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(workflow_id: str) -> list[dict[str, Any]]:
        async with gate:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
        timeline = await build_timeline(
            workflow_id, list(history.events), converter=client.data_converter
        )
        return [e.to_dict() for e in timeline.events]

    chunks = await asyncio.gather(*(one(w) for w in ids))
    return [row for chunk in chunks for row in chunk]


async def load_replayed(
    result: ReplayResult,
    client: AsyncClient,
    *,
    temporal_address: str | None = None,
    temporal_namespace: str = "default",
    concurrency: int = 16,
    cut: bool = True,
) -> Timelines:
    """The replayed workflows' real timelines, on the script's simulated clock.

    Read through the API (``GET /v1/workflows/{id}?timestamps=float``: sub-second timestamps)
    or, with ``temporal_address``, from the Temporal histories with the shared history mapper
    (microseconds). With ``cut``, events after the script's cut-off are dropped (as the
    simulation is cut there). Workflow attributes: ``ticket_id`` and ``sim_workflow_id`` (the
    script's names), and the real ids in ``workflow_id``.
    """
    from protocol_lab.analytics import Timelines

    real_ids = list(dict.fromkeys(result.workflows.values()))
    back = {real: sim for sim, real in result.workflows.items()}
    scripted = {w.workflow: w for w in result.script.workflows}
    if temporal_address is not None:
        rows = await _fetch_temporal(temporal_address, temporal_namespace, real_ids, concurrency)
        raw = Timelines.from_records(rows)
    else:
        items = await _fetch_api(client, real_ids, concurrency)
        raw = Timelines.from_records(items)
    events = raw.events.collect()
    events = to_simulated_time(
        events,
        started_at=result.started_at,
        origin=result.script.origin,
        compression=result.compression,
    )
    cutoff = result.script.origin + timedelta(seconds=result.script.end_s)
    if cut:
        events = events.filter(pl.col("timestamp") <= cutoff)
    events = events.cast(
        dict(TIMELINE_SCHEMA)  # type: ignore[arg-type]
    )
    attributes = pl.DataFrame(
        {
            "workflow_id": real_ids,
            "sim_workflow_id": [back[r] for r in real_ids],
            "ticket_id": [
                scripted[back[r]].ticket if back[r] in scripted else None for r in real_ids
            ],
        },
        schema={"workflow_id": pl.String, "sim_workflow_id": pl.String, "ticket_id": pl.String},
    )
    return Timelines.from_frame(events, attributes, check=False)


def simulated_timelines(result: SimulationResult, *, until_s: float | None = None) -> Timelines:
    """The simulation's timelines cut at ``until_s`` (same cut as a truncated script)."""
    from protocol_lab.analytics import Timelines

    events = result.recorder.events_frame(origin=result.origin, since_s=0.0)
    if until_s is not None:
        cutoff = result.origin + timedelta(seconds=until_s)
        events = events.filter(pl.col("timestamp") <= cutoff)
    attributes = result.recorder.workflows_frame(origin=result.origin, since_s=0.0).select(
        "workflow_id",
        pl.col("workflow_id").alias("sim_workflow_id"),
        "ticket_id",
        pl.col("priority").cast(pl.String),
        "category",
    )
    return Timelines.from_frame(events, attributes, check=False)
