"""Tickets, the events rules react to: create, read, update, list; notifications and suggestions.

A create or update commits the ticket with its event (the outbox); the event is then processed
right away in this process, and by any worker's dispatcher if this process stops first.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Header, Query, status
from pydantic import BaseModel, ConfigDict, Field

from protocol_lab.domain import Priority, TicketStatus
from service.api.deps import ReadAuth, SessionDep, StateDep, WriteAuth, idempotency_scope
from service.api.errors import ApiError
from service.automation.context import AutomationContext
from service.automation.engine import process_event
from service.store.idempotency import KeyClaim, claim_idempotency_key
from service.store.notifications import get_suggestion, list_notifications
from service.store.outbox import wake_dispatchers
from service.store.tickets import (
    TicketError,
    apply_ticket_update,
    get_ticket,
    list_tickets,
    stage_ticket,
)

__all__ = ["router"]

log = logging.getLogger("service.api")

router = APIRouter(prefix="/tickets", tags=["tickets"])


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


async def _process(state: Any, event_id: int) -> None:
    try:
        await process_event(AutomationContext.from_state(state), event_id=event_id)
    except Exception:
        # The event stays in the outbox; a dispatcher picks it up.
        log.exception("event %s left for the dispatcher", event_id)


@router.post(
    "",
    response_model=TicketPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a ticket",
)
async def create(
    body: TicketCreate,
    session: SessionDep,
    state: StateDep,
    background: BackgroundTasks,
    principal: WriteAuth,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> TicketPublic:
    """Create a ticket; the enabled on_ticket_created rules are evaluated on it."""
    fields = body.model_dump(mode="json")
    claim: KeyClaim | None = None
    if idempotency_key is not None:
        # Claimed in the ticket's transaction: the id is filled in once the ticket has one.
        claim = await claim_idempotency_key(
            session,
            scope=idempotency_scope(principal, "tickets"),
            key=idempotency_key,
            request=fields,
            resource_id="",
            ttl_s=state.settings.idempotency_ttl_s,
        )
        if not claim.first:
            existing = await get_ticket(session, ticket_id=claim.resource_id)
            if existing is None:
                raise ApiError.conflict("the ticket created with this Idempotency-Key is gone")
            return TicketPublic.model_validate(existing)
    try:
        ticket, event_id = await stage_ticket(session, fields=fields, actor="api")
    except TicketError as exc:
        raise ApiError.invalid(str(exc)) from exc
    if claim is not None:
        claim.row.resource_id = ticket["id"]
    await session.commit()
    wake_dispatchers()
    background.add_task(_process, state, event_id)
    return TicketPublic.model_validate(ticket)


@router.get("", response_model=TicketsPage, summary="List tickets")
async def list_all(
    session: SessionDep,
    _: ReadAuth,
    status_: Annotated[TicketStatus | None, Query(alias="status")] = None,
    priority: Priority | None = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    assignee: Annotated[str | None, Query(max_length=128)] = None,
    requester: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[
        str | None, Query(max_length=32, description="Cursor: a ticket id")
    ] = None,
    ending_before: Annotated[
        str | None, Query(max_length=32, description="Cursor: a ticket id")
    ] = None,
) -> TicketsPage:
    """Tickets, newest first, filtered by status, priority, category, assignee, requester."""
    if starting_after and ending_before:
        raise ApiError.invalid("give starting_after or ending_before, not both")
    filters = {
        name: value
        for name, value in (
            ("status", status_.value if status_ else None),
            ("priority", priority.value if priority else None),
            ("category", category),
            ("assignee", assignee),
            ("requester", requester),
        )
        if value is not None
    }
    try:
        data, has_more = await list_tickets(
            session,
            filters=filters,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
        )
    except TicketError as exc:
        raise ApiError.invalid(str(exc)) from exc
    return TicketsPage(has_more=has_more, data=[TicketPublic.model_validate(t) for t in data])


async def _ticket(session: SessionDep, ticket_id: str) -> dict[str, Any]:
    ticket = await get_ticket(session, ticket_id=ticket_id)
    if ticket is None:
        raise ApiError.not_found(f"no ticket {ticket_id!r}")
    return ticket


@router.get("/{ticket_id}", response_model=TicketPublic, summary="Retrieve a ticket")
async def retrieve(ticket_id: str, session: SessionDep, _: ReadAuth) -> TicketPublic:
    """One ticket."""
    return TicketPublic.model_validate(await _ticket(session, ticket_id))


@router.patch("/{ticket_id}", response_model=TicketPublic, summary="Update a ticket")
async def update(
    ticket_id: str,
    body: TicketUpdate,
    session: SessionDep,
    state: StateDep,
    background: BackgroundTasks,
    _: WriteAuth,
) -> TicketPublic:
    """Change fields of a ticket; a real change fires the enabled on_ticket_updated rules."""
    changes = body.model_dump(exclude_unset=True, mode="json")
    for name in ("title", "priority", "status"):
        if name in changes and changes[name] is None:
            raise ApiError.invalid(f"{name}: may not be null")
    try:
        ticket, event_id = await apply_ticket_update(
            session, ticket_id=ticket_id, fields=changes, actor="api"
        )
    except TicketError as exc:
        raise ApiError.invalid(str(exc)) from exc
    if ticket is None:
        raise ApiError.not_found(f"no ticket {ticket_id!r}")
    await session.commit()
    if event_id is not None:
        background.add_task(_process, state, event_id)
    return TicketPublic.model_validate(ticket)


@router.get(
    "/{ticket_id}/notifications",
    response_model=NotificationsList,
    summary="List a ticket's notifications",
)
async def notifications(ticket_id: str, session: SessionDep, _: ReadAuth) -> NotificationsList:
    """Notifications delivered on the ticket by the notification queue."""
    await _ticket(session, ticket_id)
    rows = await list_notifications(session, ticket_id=ticket_id)
    return NotificationsList(data=[NotificationPublic.model_validate(r) for r in rows])


@router.get(
    "/{ticket_id}/suggestion",
    response_model=SuggestionPublic,
    summary="Suggested category and priority",
)
async def suggestion(ticket_id: str, session: SessionDep, _: ReadAuth) -> SuggestionPublic:
    """The ai-inference queue's suggestion for the ticket (404 until it has run)."""
    await _ticket(session, ticket_id)
    found = await get_suggestion(session, ticket_id=ticket_id)
    if found is None:
        raise ApiError.not_found(f"no suggestion for {ticket_id} yet")
    return SuggestionPublic.model_validate(found)
