"""The ticket endpoints: create, read, update, list; notifications and suggestions.

Handlers take the request apart and call :mod:`service.tickets.service`; the schemas are
:mod:`service.tickets.models`. The event a write stages is processed after the answer is sent
(a background task), and by any worker's dispatcher if this process stops first.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header, Query, status

from protocol_lab.domain import Priority, TicketStatus
from service.api.deps import ReadAuth, SessionDep, StateDep, WriteAuth, idempotency_scope
from service.tickets.models import (
    NotificationsList,
    SuggestionPublic,
    TicketCreate,
    TicketPublic,
    TicketsPage,
    TicketUpdate,
)
from service.tickets.service import (
    create_ticket,
    get_ticket,
    get_ticket_suggestion,
    list_ticket_notifications,
    list_tickets,
    process_event_now,
    update_ticket,
)

__all__ = ["router"]

router = APIRouter(prefix="/tickets", tags=["tickets"])


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
    written = await create_ticket(
        state,
        session=session,
        request=body,
        idempotency_key=idempotency_key,
        key_scope=idempotency_scope(principal, "tickets"),
    )
    if written.event_id is not None:
        background.add_task(process_event_now, state, written.event_id)
    return written.ticket


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
    return await list_tickets(
        session,
        filters=filters,
        limit=limit,
        starting_after=starting_after,
        ending_before=ending_before,
    )


@router.get("/{ticket_id}", response_model=TicketPublic, summary="Retrieve a ticket")
async def retrieve(ticket_id: str, session: SessionDep, _: ReadAuth) -> TicketPublic:
    """One ticket."""
    return await get_ticket(session, ticket_id)


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
    written = await update_ticket(session, ticket_id=ticket_id, request=body)
    if written.event_id is not None:
        background.add_task(process_event_now, state, written.event_id)
    return written.ticket


@router.get(
    "/{ticket_id}/notifications",
    response_model=NotificationsList,
    summary="List a ticket's notifications",
)
async def notifications(ticket_id: str, session: SessionDep, _: ReadAuth) -> NotificationsList:
    """Notifications delivered on the ticket by the notification queue."""
    return await list_ticket_notifications(session, ticket_id)


@router.get(
    "/{ticket_id}/suggestion",
    response_model=SuggestionPublic,
    summary="Suggested category and priority",
)
async def suggestion(ticket_id: str, session: SessionDep, _: ReadAuth) -> SuggestionPublic:
    """The ai-inference queue's suggestion for the ticket (404 until it has run)."""
    return await get_ticket_suggestion(session, ticket_id)
