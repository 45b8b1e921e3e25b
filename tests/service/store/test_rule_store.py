"""Rules, executions and scheduled episodes, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from protocol_lab.domain import Rule, Trigger, load_rules
from service.store.executions import (
    claim_execution,
    close_episodes,
    finish_execution,
    list_executions,
    open_episode,
)
from service.store.rules import (
    RuleRow,
    delete_rule,
    enabled_rules,
    get_rule,
    insert_rule,
    list_rules,
    new_rule_row,
    rotate_secret,
    rule_model,
    rules_version,
    save_rule,
)

Sessions = async_sessionmaker[AsyncSession]


async def test_rules_round_trip_and_filter(sessionmaker: Sessions) -> None:
    rules = load_rules()
    ids = []
    async with sessionmaker() as session:
        for i, rule in enumerate(rules):
            row = await insert_rule(session, row=new_rule_row(rule, now=1000.0 + i))
            ids.append(row.id)
        for rule_id, rule in zip(ids, rules, strict=True):
            row = await get_rule(session, rule_id=rule_id)
            assert row is not None
            assert rule_model(row) == rule
        created = await enabled_rules(session, trigger=Trigger.ON_TICKET_CREATED)
        assert {r.id for r in created} >= {
            rid for rid, r in zip(ids, rules, strict=True) if r.trigger is Trigger.ON_TICKET_CREATED
        }
        page = await list_rules(session, filters={"trigger": "scheduled"}, limit=10)
        assert page is not None
        assert [r.id for r in page[0]] == [
            rid for rid, r in zip(ids, rules, strict=True) if r.trigger is Trigger.SCHEDULED
        ]
        row = await get_rule(session, rule_id=ids[0])
        assert row is not None
        off = Rule.model_validate({**rule_model(row).model_dump(), "enabled": False})
        await save_rule(session, row=row, rule=off, toggled=True)
        assert ids[0] not in {r.id for r in await enabled_rules(session)}
        assert await list_rules(session, filters={}, limit=1, starting_after="rule_x") is None
        assert await delete_rule(session, rule_id=ids[0]) is True
        assert await delete_rule(session, rule_id=ids[0]) is False


async def test_the_rule_set_version_moves_with_every_write_and_only_then(
    sessionmaker: Sessions,
) -> None:
    # The dispatcher rebuilds its index when the version moves: any change to any rule, by the
    # store's functions, by the ORM or by plain SQL, must move it; reads must not.
    rule = load_rules()[0]
    async with sessionmaker() as session:
        seen = [await rules_version(session)]

        async def moved() -> bool:
            seen.append(await rules_version(session))
            await session.commit()
            return seen[-1] != seen[-2]

        row = await insert_rule(session, row=new_rule_row(rule))
        assert await moved()
        await get_rule(session, rule_id=row.id)
        await enabled_rules(session)
        await list_rules(session, filters={}, limit=5)
        assert not await moved()
        off = Rule.model_validate({**rule.model_dump(), "enabled": False})
        await save_rule(session, row=row, rule=off, toggled=True)
        assert await moved()
        await rotate_secret(session, row=row)
        assert await moved()
        await session.execute(update(RuleRow).where(RuleRow.id == row.id).values(name="renamed"))
        await session.commit()
        assert await moved()
        await session.execute(
            text("UPDATE automation_rules SET enabled = true WHERE id = :id"), {"id": row.id}
        )
        await session.commit()
        assert await moved()
        assert await delete_rule(session, rule_id=row.id) is True
        assert await moved()
        assert await delete_rule(session, rule_id=row.id) is False
        assert not await moved()
    async with sessionmaker() as other:  # another session (as another process) reads the same
        assert await rules_version(other) == seen[-1]


async def test_one_execution_per_rule_and_event(sessionmaker: Sessions) -> None:
    async def claim(key: str) -> tuple[str, bool]:
        async with sessionmaker() as session:
            row, created = await claim_execution(
                session,
                rule_id="rule_A",
                rule_name="A",
                event_key=key,
                trigger="on_ticket_created",
                action={"type": "update_field"},
                conditions=[],
                ticket_id="TKT-1",
            )
            return row.id, created

    results = await asyncio.gather(*(claim("event:1") for _ in range(5)))
    assert sum(created for _, created in results) == 1
    assert len({exe_id for exe_id, _ in results}) == 1
    other, created = await claim("event:2")
    assert created is True
    async with sessionmaker() as session:
        await finish_execution(session, execution_id=other, outcome="succeeded", job_id="j1")
        page = await list_executions(session, rule_id="rule_A", limit=10)
        assert page is not None
        data, more = page
        assert len(data) == 2
        assert more is False
        done = next(e for e in data if e["id"] == other)
        assert done["outcome"] == "succeeded"
        assert done["job_id"] == "j1"


async def test_episodes(sessionmaker: Sessions) -> None:
    async with sessionmaker() as session:
        assert await open_episode(session, rule_id="rule_S", ticket_id="TKT-1") == 1
        assert await open_episode(session, rule_id="rule_S", ticket_id="TKT-1") == 1
        assert await open_episode(session, rule_id="rule_S", ticket_id="TKT-2") == 1
        assert await close_episodes(session, rule_id="rule_S", still_matching={"TKT-2"}) == 1
        assert await open_episode(session, rule_id="rule_S", ticket_id="TKT-1") == 2
        assert await open_episode(session, rule_id="rule_S", ticket_id="TKT-2") == 1
