"""The ticket resource's schema family: requests, the ticket as answered, pages, notifications
and suggestions."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from protocol_lab.domain import Priority, TicketStatus

__all__ = [
    "NotificationPublic",
    "NotificationsList",
    "SuggestionPublic",
    "TicketCreate",
    "TicketPublic",
    "TicketUpdate",
    "TicketsPage",
]


class TicketCreate(BaseModel):
    """A new ticket."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    category: str | None = Field(default=None, max_length=64)
    priority: Priority = Priority.P3
    status: TicketStatus = TicketStatus.OPEN
    assignee: str | None = Field(default=None, max_length=128)
    requester: str | None = Field(default=None, max_length=128)


class TicketUpdate(BaseModel):
    """A partial update of a ticket; unset fields keep their value."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    category: str | None = Field(default=None, max_length=64)
    priority: Priority | None = None
    status: TicketStatus | None = None
    assignee: str | None = Field(default=None, max_length=128)
    requester: str | None = Field(default=None, max_length=128)


class TicketPublic(BaseModel):
    """A ticket as the API returns it (timestamps in Unix seconds)."""

    id: str
    title: str
    description: str | None
    category: str | None
    priority: Priority
    status: TicketStatus
    assignee: str | None
    requester: str | None
    created_at: int
    updated_at: int
    last_activity_at: int


class TicketsPage(BaseModel):
    """A page of tickets."""

    has_more: bool
    data: list[TicketPublic]


class NotificationPublic(BaseModel):
    """A notification delivered on a ticket."""

    id: str
    ticket_id: str | None
    recipient: str
    subject: str | None
    message: str
    rule_id: str | None
    delivered_to: str | None
    created_at: int


class NotificationsList(BaseModel):
    """A ticket's notifications, oldest first."""

    data: list[NotificationPublic]


class SuggestionPublic(BaseModel):
    """Category and priority suggested from the ticket's text."""

    ticket_id: str
    category: str
    category_confidence: float
    priority: str
    priority_confidence: float
    model: str
    created_at: int
