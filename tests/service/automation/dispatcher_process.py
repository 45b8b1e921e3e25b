"""One outbox dispatcher in a process of its own, for the tests of several dispatchers at once.

Run: ``python dispatcher_process.py DATABASE_URL SCHEMA REDIS_URL PREFIX STATE_DIR`` (SCHEMA is
the PostgreSQL ``search_path``, ``-`` for SQLite). It prints ``ready``, waits for a line on
stdin (so that every dispatcher starts at once), then processes outbox events in batches until
no event is left unfinished, and prints how many it finished as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/: the waiting helpers

from sqlalchemy import func, select
from temporalio.client import Client
from waiting import eventually

from protocol_lab.domain import load_catalog
from service.automation.context import AutomationContext
from service.automation.engine import process_pending
from service.jobs.producer import JobProducer
from service.settings import Settings
from service.store.db import make_engine, make_sessionmaker
from service.store.outbox import OutboxRow

BATCH = 20


async def main(database_url: str, schema: str, redis_url: str, prefix: str, state: str) -> None:
    """Dispatch until the outbox is finished; print the count of events this process finished."""
    kwargs: dict[str, Any] = {}
    if schema != "-":
        kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
    engine = make_engine(database_url, **kwargs)
    sessions = make_sessionmaker(engine)
    jobs = JobProducer(redis_url, prefix=prefix)
    ctx = AutomationContext(
        sessionmaker=sessions,
        temporal=await Client.connect("127.0.0.1:1", lazy=True),  # the rules start no workflow
        jobs=jobs,
        settings=Settings(redis_url=redis_url, state_dir=Path(state)),
        catalog=load_catalog(),
    )
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.to_thread(sys.stdin.readline)
    finished = batches = 0

    async def outbox_finished() -> bool:
        nonlocal finished, batches
        done = await process_pending(ctx, limit=BATCH)
        finished += done
        batches += 1 if done else 0
        async with sessions() as session:
            unfinished = await session.execute(
                select(func.count(OutboxRow.id)).where(
                    OutboxRow.status.in_(["pending", "processing"])
                )
            )
            return unfinished.scalar() == 0

    try:
        await eventually(outbox_finished, within_s=120, every_s=0.02)
    finally:
        await jobs.close()
        await engine.dispose()
    sys.stdout.write(json.dumps({"finished": finished, "batches": batches}) + "\n")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
