"""Imports every table module so ``Base.metadata`` knows them all (used by ``create_schema``).

A new module of the store that defines tables is added here by name; ``tests/service/store``
checks that the migrations give exactly this metadata's schema.
"""

from __future__ import annotations

from service.store import (
    archive,
    assets,
    definitions,
    drafts,
    executions,
    idempotency,
    notifications,
    outbox,
    rules,
    tickets,
)

__all__ = [
    "archive",
    "assets",
    "definitions",
    "drafts",
    "executions",
    "idempotency",
    "notifications",
    "outbox",
    "rules",
    "tickets",
]
