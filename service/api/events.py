"""The rule dispatcher's outbox events, for operators: re-drive the events that failed.

An event fails when it could not be processed before ``EVENT_RETRY_HOURS`` (Temporal or Redis
down that long) or failed permanently. Re-driving queues it again: its failed executions are
performed again, those that succeeded are not (executions are unique per event and rule).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import AdminAuth, SessionDep
from service.store.outbox import redrive_events

__all__ = ["router"]

router = APIRouter(prefix="/automation/events", tags=["events"])

MAX_REDRIVE = 10_000
# Event ids are SQL integers: 64-bit, positive.
EventId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class RedriveRequest(BaseModel):
    """Which failed events to queue again (all of them when no ids are given)."""

    model_config = ConfigDict(extra="forbid")

    event_ids: list[EventId] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REDRIVE,
        description="only these events (those of them that failed or have failed executions)",
    )
    limit: int = Field(
        default=1000, ge=1, le=MAX_REDRIVE, description="re-drive at most this many, oldest first"
    )


class RedriveResult(BaseModel):
    """The events queued again."""

    requeued: int = Field(description="how many events were queued again")
    event_ids: list[int] = Field(description="their ids, oldest first")


@router.post("/redrive", response_model=RedriveResult, summary="Re-drive failed events")
async def redrive(
    session: SessionDep,
    _: AdminAuth,
    body: Annotated[RedriveRequest | None, Body()] = None,
) -> RedriveResult:
    """Queue failed events again for the rule dispatcher (admin scope).

    Without ``event_ids``, every failed event (up to ``limit``); with them, those of the given
    events that failed, or were processed with failed executions. Events pending, in progress
    or processed without failure are left alone, so repeating the call is harmless.
    """
    request = body or RedriveRequest()
    ids = await redrive_events(session, event_ids=request.event_ids, limit=request.limit)
    return RedriveResult(requeued=len(ids), event_ids=ids)
