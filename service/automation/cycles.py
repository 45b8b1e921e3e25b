"""Refusing rule sets whose update_field actions can trigger each other forever."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from protocol_lab.domain import Rule, check_no_cycles
from service.store.rules import RuleRow, enabled_rules, rule_model

__all__ = ["check_rule_set", "rule_label"]


def rule_label(rule_id: str, name: str) -> str:
    """How a rule is named in a cycle message: its name and id."""
    return f"{name!r} ({rule_id})"


async def check_rule_set(session: AsyncSession, *, rule_id: str, rule: Rule) -> None:
    """Raise ``RuleCycleError`` naming the cycle if the enabled rules plus ``rule`` have one.

    ``rule`` replaces the stored rule of the same id (an update) or joins the set (a creation).
    The check runs in a worker thread: a large rule set must not hold up other requests.
    """
    if not rule.enabled:
        return
    rows: list[RuleRow] = await enabled_rules(session)
    pairs = [(rule_label(row.id, row.name), rule_model(row)) for row in rows if row.id != rule_id]
    pairs.append((rule_label(rule_id, rule.name), rule))
    await asyncio.to_thread(check_no_cycles, pairs)
