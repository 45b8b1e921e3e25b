"""Processes that start together on a fresh database all get a usable schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
