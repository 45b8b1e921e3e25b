"""Tickets: the ITSM records whose events automation rules react to."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "DERIVED_FIELDS",
    "TICKET_FIELDS",
    "WRITABLE_FIELDS",
    "Priority",
    "TicketStatus",
]


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
