"""Processes that start together on a fresh database all get a usable schema."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.db import make_engine

# How long the other process holds the new file's lock in the test below.
HOLD_S = 1.0

SCRIPT = """
import asyncio, sys
from service.store.db import create_schema, make_engine

async def main() -> None:
    engine = make_engine(sys.argv[1])
    await create_schema(engine)
    await engine.dispose()

asyncio.run(main())
"""


def test_concurrent_schema_creation_on_fresh_sqlite(tmp_path: Path) -> None:
    for round_ in range(1):
        url = f"sqlite+aiosqlite:///{tmp_path / f'race-{round_}.db'}"
        procs = [
            subprocess.Popen([sys.executable, "-c", SCRIPT, url], stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], errors


async def test_opening_a_new_file_waits_for_a_connection_holding_its_lock(tmp_path: Path) -> None:
    # What a process that opened the new file a moment earlier holds while it switches the file
    # to WAL (or migrates it): the write lock, in the rollback journal mode a new file starts in.
    # SQLite refuses a switch to WAL that meets it at once, without the busy timeout.
    path = tmp_path / "fresh.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE first_process_was_here (x)")
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        opening = asyncio.create_task(_journal_mode(engine))
        # the other process's turn: the opening waits it out (it neither fails nor finishes)
        done, _ = await asyncio.wait({opening}, timeout=HOLD_S)
        assert not done, opening.exception()
        holder.execute("COMMIT")
        assert await asyncio.wait_for(opening, timeout=30) == "wal"
    finally:
        holder.close()
        await engine.dispose()


async def _journal_mode(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        return str((await conn.execute(text("PRAGMA journal_mode"))).scalar_one())
