"""Tickets: the ITSM records whose events automation rules react to."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

__all__ = [
    "DERIVED_FIELDS",
    "TICKET_FIELDS",
    "TICKET_ID_PATTERN",
    "WRITABLE_FIELDS",
    "Priority",
    "TicketStatus",
    "ticket_number",
]

# ASCII digits only: ``\d`` and ``str.isdigit`` also admit other scripts' digits (``²``, ``١``).
TICKET_ID_PATTERN: Final = re.compile(r"TKT-([0-9]{1,12})", re.ASCII)


def ticket_number(ticket_id: str) -> int | None:
    """The number of a ticket id ``TKT-<n>`` (1 to 12 ASCII digits); None for anything else."""
    match = TICKET_ID_PATTERN.fullmatch(ticket_id)
    return int(match.group(1)) if match else None


class Priority(StrEnum):
    """Ticket priority, P1 most urgent."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class TicketStatus(StrEnum):
    """Ticket lifecycle states."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


TICKET_FIELDS: Final = frozenset(
    {
        "id",
        "title",
        "description",
        "category",
        "priority",
        "status",
        "assignee",
        "requester",
        "created_at",
        "updated_at",
        "last_activity_at",
    }
)

# Fields computed at match time from timestamps (hours, float).
DERIVED_FIELDS: Final = frozenset({"idle_hours", "age_hours"})

# Fields an update_field action may set, with the values each accepts (None: free text).
WRITABLE_FIELDS: Final[dict[str, frozenset[str] | None]] = {
    "status": frozenset(s.value for s in TicketStatus),
    "priority": frozenset(p.value for p in Priority),
    "category": None,
    "assignee": None,
    "title": None,
    "description": None,
}
