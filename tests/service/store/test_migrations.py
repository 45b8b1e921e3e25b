"""Schema migrations on SQLite and PostgreSQL: an empty database gets exactly the models'
schema; a database at the previous revision, or made by the last release before migrations
(no version recorded), is upgraded with every row kept; processes upgrading together do not
trip over each other; ``protocol-lab db upgrade`` applies them by hand."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine
from stores import Backend, empty_database

from service.store import tables  # noqa: F401  (every table on Base.metadata)
from service.store.db import Base, create_schema, make_engine, make_sessionmaker
from service.store.migrate import SchemaError, _turn, current_revision, head_revision, upgrade
from service.store.outbox import add_event
from service.store.rules import get_rule, list_rules, rule_model

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
ROWS_PER_TABLE = 3
# Processes starting together on one database in the tests of taking turns.
PROCESSES = 6
STARTS = {
    "type": "start_workflow",
    "workflow_name": "Password Reset",
    "task_queue": "itsm-workflows",
    "trigger_type": "automatic",
    "input": {},
}
NOTIFIES = {"type": "send_notification", "channel": "email", "recipient": "a", "message": "b"}


def _baseline() -> sa.MetaData:
    """The tables of revision 1, as its migration defines them."""
    config = Config()
    config.set_main_option("script_location", "service.store:migrations")
    script = ScriptDirectory.from_config(config).get_revision("0001")
    assert script is not None
    baseline = script.module.BASELINE
    assert isinstance(baseline, sa.MetaData)
    return baseline


def _value(table: str, column: sa.Column[Any], k: int) -> Any:
    """A distinct value of the column's type for row ``k`` (text columns hold JSON)."""
    if table == "automation_rules":  # rules the service can read back
        if column.name == "action":
            return json.dumps([STARTS, NOTIFIES] if k == 0 else (STARTS if k == 1 else NOTIFIES))
        if column.name == "trigger":
            return "on_ticket_created"
        if column.name == "conditions":
            return "{}"
        if column.name == "schedule_interval_s":
            return None
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return k % 2 == 0
    if isinstance(kind, sa.BigInteger):
        return 10**15 + k
    if isinstance(kind, sa.Integer):
        return k + 1
    if isinstance(kind, sa.Float):
        return 1_700_000_000.25 + k
    if isinstance(kind, sa.Text):
        return json.dumps({"table": table, "column": column.name, "row": k})
    assert isinstance(kind, sa.String)
    text = f"{column.name}-{k}"
    return text[: kind.length] if kind.length else text


def _rows(table: sa.Table) -> list[dict[str, Any]]:
    return [
        {c.name: _value(table.name, c, k) for c in table.columns} for k in range(ROWS_PER_TABLE)
    ]


async def _fill(engine: AsyncEngine, baseline: sa.MetaData) -> dict[str, list[dict[str, Any]]]:
    written = {table.name: _rows(table) for table in baseline.sorted_tables}
    async with engine.begin() as conn:
        for table in baseline.sorted_tables:
            # Serial keys are left to the database, as the service leaves them (1, 2, 3 here).
            serial = {c.name for c in table.primary_key.columns if c.autoincrement is True}
            rows = [
                {k: v for k, v in row.items() if k not in serial} for row in written[table.name]
            ]
            await conn.execute(table.insert(), rows)
    return written


async def _read(engine: AsyncEngine, baseline: sa.MetaData) -> dict[str, list[dict[str, Any]]]:
    """Every row of the baseline's tables, in the baseline's columns, by primary key."""
    found: dict[str, list[dict[str, Any]]] = {}
    async with engine.connect() as conn:
        for table in baseline.sorted_tables:
            query = sa.select(*(sa.column(c.name) for c in table.columns)).select_from(
                sa.table(table.name)
            )
            order = [sa.column(c.name) for c in table.primary_key.columns]
            result = await conn.execute(query.order_by(*order))
            found[table.name] = [dict(row._mapping) for row in result]
    return found


def _differences(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [d for d in compare_metadata(context, Base.metadata) if d[0] != "remove_table"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_empty_database_gets_the_models_schema(
    backend: Backend, tmp_path: Path, postgres_url: str
) -> None:
    async with empty_database(backend, folder=tmp_path, postgres_url=postgres_url) as engine:
        assert await current_revision(engine) is None
        await create_schema(engine)
        assert await current_revision(engine) == head_revision() == "0004"
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []


@pytest.mark.parametrize("versioned", [True, False], ids=["at-revision-1", "release-unversioned"])
@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_upgrade_keeps_every_row(
    backend: Backend, versioned: bool, tmp_path: Path, postgres_url: str
) -> None:
    baseline = _baseline()
    async with empty_database(backend, folder=tmp_path, postgres_url=postgres_url) as engine:
        await upgrade(engine, "0001")
        if not versioned:  # what the release's create_all left: the tables and no version
            async with engine.begin() as conn:
                await conn.execute(sa.text("DROP TABLE alembic_version"))
            assert await current_revision(engine) is None
        else:
            assert await current_revision(engine) == "0001"
        written = await _fill(engine, baseline)
        assert await _read(engine, baseline) == written  # the check itself reads what is there

        await create_schema(engine)  # what the service does when it starts

        assert await current_revision(engine) == head_revision()
        assert await _read(engine, baseline) == written
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
        sessions = make_sessionmaker(engine)
        async with sessions() as session:
            # The rules stored before the actions table are found by their actions.
            page = await list_rules(session, filters={"workflow_name": "Password Reset"}, limit=10)
            assert page is not None
            assert sorted(row.id for row in page[0]) == ["id-0", "id-1"]
            page = await list_rules(session, filters={"action_type": "send_notification"}, limit=9)
            assert page is not None
            assert sorted(row.id for row in page[0]) == ["id-0", "id-2"]
            rule = await get_rule(session, rule_id="id-0")
            assert rule is not None
            assert rule.schedule_cron is None
            assert [step.type for step in rule_model(rule).steps] == [
                "start_workflow",
                "send_notification",
            ]
            # A new event's id is above every id the old rows hold: none is handed out twice.
            new_event = await add_event(session, kind="on_ticket_created", payload={})
            await session.commit()
            assert new_event > ROWS_PER_TABLE


@pytest.mark.parametrize("backend", BACKENDS)
async def test_processes_upgrading_together_take_turns(
    backend: Backend, tmp_path: Path, postgres_url: str
) -> None:
    async with empty_database(backend, folder=tmp_path, postgres_url=postgres_url) as engine:
        others = [await _same_database(engine) for _ in range(PROCESSES - 1)]
        try:
            await asyncio.gather(*(upgrade(e) for e in [engine, *others]))
        finally:
            for other in others:
                await other.dispose()
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_process_on_a_current_store_does_not_wait_for_the_migration_lock(
    backend: Backend, tmp_path: Path, postgres_url: str
) -> None:
    # Another process holds the lock processes migrate under (on SQLite the write lock, as a
    # writer mid-transaction does); a store at the newest revision opens all the same, where
    # before it waited out the busy timeout and failed with "database is locked".
    async with empty_database(backend, folder=tmp_path, postgres_url=postgres_url) as engine:
        await create_schema(engine)
        holder, starter = await _same_database(engine), await _same_database(engine)
        try:
            async with holder.connect() as conn, _turn(conn):
                await asyncio.wait_for(create_schema(starter), timeout=20)
        finally:
            await holder.dispose()
            await starter.dispose()
        assert await current_revision(engine) == head_revision()


async def _same_database(engine: AsyncEngine, *, isolation: str | None = None) -> AsyncEngine:
    """Another engine (another process's pool) on the database of ``engine``; on PostgreSQL,
    ``isolation`` is its sessions' default transaction isolation (as a server's, database's or
    role's default would make it)."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "postgresql":
        return make_engine(url)
    async with engine.connect() as conn:
        schema = (await conn.execute(sa.text("SELECT current_schema()"))).scalar_one()
    server_settings = {"search_path": schema}
    if isolation is not None:
        server_settings["default_transaction_isolation"] = isolation
    return make_engine(url, connect_args={"server_settings": server_settings})


@pytest.mark.postgres
@pytest.mark.parametrize("isolation", ["read committed", "repeatable read", "serializable"])
async def test_processes_take_turns_under_any_default_isolation(
    isolation: str, tmp_path: Path, postgres_url: str
) -> None:
    # Each waits for the lock, then must see what the one before it committed: a snapshot taken
    # before its turn came would miss the version table and migrate again.
    async with empty_database("postgres", folder=tmp_path, postgres_url=postgres_url) as engine:
        processes = [await _same_database(engine, isolation=isolation) for _ in range(PROCESSES)]
        try:
            await asyncio.gather(*(upgrade(e) for e in processes))
        finally:
            for process in processes:
                await process.dispose()
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []


async def test_a_database_of_a_newer_version_is_refused_with_a_reason(tmp_path: Path) -> None:
    async with empty_database("sqlite", folder=tmp_path) as engine:
        await create_schema(engine)
        with pytest.raises(SchemaError, match="cannot upgrade the database to 'nope'"):
            await upgrade(engine, "nope")
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(SchemaError, match="revision '9999', which this version"):
            await create_schema(engine)
        assert await current_revision(engine) == "9999"  # nothing was changed


def test_the_command_applies_the_migrations(tmp_path: Path) -> None:
    env = {**os.environ, "STATE_DIR": str(tmp_path / "state")}
    env.pop("DATABASE_URL", None)
    command = [sys.executable, "-m", "protocol_lab.cli", "db"]
    first = subprocess.run([*command, "upgrade"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"schema revision none -> {head_revision()}"
    current = subprocess.run([*command, "current"], env=env, capture_output=True, text=True)
    assert current.stdout.strip() == f"revision {head_revision()} (newest {head_revision()})"
