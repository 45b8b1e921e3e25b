"""The ticket service: what the API's ticket endpoints call to write, read and list tickets.

A create or update commits the ticket with its event (the outbox) and says which event it
staged; :func:`process_event_now` then processes it in this process, and any worker's
dispatcher does if this process stops first. Failures are the kinds of :mod:`service.errors`.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from service.automation.context import AutomationContext
from service.automation.engine import process_event
from service.errors import ConflictError, InvalidRequestError, NotFoundError
from service.state import Resources
from service.store import tickets as store
from service.store.idempotency import KeyClaim, claim_idempotency_key
from service.store.notifications import get_suggestion, list_notifications
from service.store.outbox import wake_dispatchers
from service.store.tickets import TicketError
from service.tickets.models import (
    NotificationPublic,
    NotificationsList,
    SuggestionPublic,
    TicketCreate,
    TicketPublic,
    TicketsPage,
    TicketUpdate,
)

__all__ = [
    "TicketWritten",
    "create_ticket",
    "get_ticket",
    "get_ticket_suggestion",
    "list_ticket_notifications",
    "list_tickets",
    "process_event_now",
    "update_ticket",
]

log = logging.getLogger("service.api")


class TicketWritten(NamedTuple):
    """A committed ticket and the event it staged for the rules (None when nothing changed)."""

    ticket: TicketPublic
    event_id: int | None


async def process_event_now(state: Resources, event_id: int) -> None:
    """Evaluate the rules on a staged event here; on failure it stays for a dispatcher."""
    try:
        await process_event(AutomationContext.of(state), event_id=event_id)
    except Exception:
        # The event stays in the outbox; a dispatcher picks it up.
        log.exception("event %s left for the dispatcher", event_id)


async def create_ticket(
    state: Resources,
    *,
    session: AsyncSession,
    request: TicketCreate,
    idempotency_key: str | None = None,
    key_scope: str = "tickets",
) -> TicketWritten:
    """Create a ticket with its on_ticket_created event, honouring the Idempotency-Key (in
    ``key_scope``): a repeated request answers the first ticket and stages no event."""
    fields = request.model_dump(mode="json")
    claim: KeyClaim | None = None
    if idempotency_key is not None:
        # Claimed in the ticket's transaction: the id is filled in once the ticket has one.
        claim = await claim_idempotency_key(
            session,
            scope=key_scope,
            key=idempotency_key,
            request=fields,
            resource_id="",
            ttl_s=state.settings.idempotency_ttl_s,
        )
        if not claim.first:
            existing = await store.get_ticket(session, ticket_id=claim.resource_id)
            if existing is None:
                raise ConflictError("the ticket created with this Idempotency-Key is gone")
            return TicketWritten(TicketPublic.model_validate(existing), None)
    try:
        ticket, event_id = await store.stage_ticket(session, fields=fields, actor="api")
    except TicketError as exc:
        raise InvalidRequestError(str(exc)) from exc
    if claim is not None:
        claim.row.resource_id = ticket["id"]
    await session.commit()
    wake_dispatchers()
    return TicketWritten(TicketPublic.model_validate(ticket), event_id)


async def list_tickets(
    session: AsyncSession,
    *,
    filters: dict[str, Any],
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> TicketsPage:
    """Tickets, newest first, whose fields equal ``filters``, paged by a ticket id either way."""
    if starting_after and ending_before:
        raise InvalidRequestError("give starting_after or ending_before, not both")
    try:
        data, has_more = await store.list_tickets(
            session,
            filters=filters,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
        )
    except TicketError as exc:
        raise InvalidRequestError(str(exc)) from exc
    return TicketsPage(has_more=has_more, data=[TicketPublic.model_validate(t) for t in data])


async def _ticket(session: AsyncSession, ticket_id: str) -> dict[str, Any]:
    ticket = await store.get_ticket(session, ticket_id=ticket_id)
    if ticket is None:
        raise NotFoundError(f"no ticket {ticket_id!r}")
    return ticket


async def get_ticket(session: AsyncSession, ticket_id: str) -> TicketPublic:
    """One ticket."""
    return TicketPublic.model_validate(await _ticket(session, ticket_id))


async def update_ticket(
    session: AsyncSession, *, ticket_id: str, request: TicketUpdate
) -> TicketWritten:
    """Change fields of a ticket; only a real change stages an on_ticket_updated event."""
    changes = request.model_dump(exclude_unset=True, mode="json")
    for name in ("title", "priority", "status"):
        if name in changes and changes[name] is None:
            raise InvalidRequestError(f"{name}: may not be null")
    try:
        ticket, event_id = await store.apply_ticket_update(
            session, ticket_id=ticket_id, fields=changes, actor="api"
        )
    except TicketError as exc:
        raise InvalidRequestError(str(exc)) from exc
    if ticket is None:
        raise NotFoundError(f"no ticket {ticket_id!r}")
    await session.commit()
    return TicketWritten(TicketPublic.model_validate(ticket), event_id)


async def list_ticket_notifications(session: AsyncSession, ticket_id: str) -> NotificationsList:
    """Notifications delivered on the ticket by the notification queue, oldest first."""
    await _ticket(session, ticket_id)
    rows = await list_notifications(session, ticket_id=ticket_id)
    return NotificationsList(data=[NotificationPublic.model_validate(r) for r in rows])


async def get_ticket_suggestion(session: AsyncSession, ticket_id: str) -> SuggestionPublic:
    """The ai-inference queue's suggestion for the ticket; not found until it has run."""
    await _ticket(session, ticket_id)
    found = await get_suggestion(session, ticket_id=ticket_id)
    if found is None:
        raise NotFoundError(f"no suggestion for {ticket_id} yet")
    return SuggestionPublic.model_validate(found)
