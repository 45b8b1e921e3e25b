"""A rules table made before cron schedules and the actions table is brought up to date when
the schema is created, on SQLite and PostgreSQL: the column is added and the stored rules'
actions are listed, so the list filters find rules saved before them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from stores import Backend, empty_database

from service.store.db import create_schema, make_sessionmaker
from service.store.rules import get_rule, list_rules, rule_dict, rule_model

OLD_TABLE = """
CREATE TABLE automation_rules (
    id VARCHAR(32) PRIMARY KEY, name VARCHAR(200), trigger VARCHAR(32), conditions TEXT,
    action TEXT, enabled BOOLEAN, schedule_interval_s FLOAT, secret VARCHAR(128),
    created_at FLOAT, updated_at FLOAT, toggled_at FLOAT
)
"""
STARTS = {
    "type": "start_workflow",
    "workflow_name": "Password Reset",
    "task_queue": "itsm-workflows",
    "trigger_type": "automatic",
    "input": {},
}
NOTIFIES = {"type": "send_notification", "channel": "email", "recipient": "a", "message": "b"}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_an_older_rules_table_is_brought_up_to_date(
    backend: Backend, tmp_path: Path, postgres_url: str
) -> None:
    async with empty_database(backend, folder=tmp_path, postgres_url=postgres_url) as engine:
        async with engine.begin() as conn:
            await conn.execute(text(OLD_TABLE))
            for i, action in enumerate((STARTS, NOTIFIES)):
                await conn.execute(
                    text(
                        "INSERT INTO automation_rules (id, name, trigger, conditions, action,"
                        " enabled, created_at, updated_at) VALUES"
                        " (:id, :name, 'on_ticket_created', '{}', :action, true, :at, :at)"
                    ),
                    {
                        "id": f"rule_old{i}",
                        "name": f"old {i}",
                        "action": json.dumps(action),
                        "at": i,
                    },
                )
        await create_schema(engine)
        await create_schema(engine)  # a second start finds it done
        sessions = make_sessionmaker(engine)
        async with sessions() as session:
            for action_type, expected in (
                ("start_workflow", "rule_old0"),
                ("send_notification", "rule_old1"),
            ):
                page = await list_rules(session, filters={"action_type": action_type}, limit=10)
                assert page is not None
                assert [row.id for row in page[0]] == [expected]
            page = await list_rules(session, filters={"workflow_name": "Password Reset"}, limit=10)
            assert page is not None
            assert [row.id for row in page[0]] == ["rule_old0"]
            row = await get_rule(session, rule_id="rule_old0")
            assert row is not None
            assert row.schedule_cron is None
            # Stored before actions were echoed as sent: shown as stored.
            assert rule_dict(row)["action"] == STARTS
            assert rule_model(row).steps[0].type == "start_workflow"
