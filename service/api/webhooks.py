"""Inbound webhooks for webhook rules: ``POST /v1/automation/webhooks/{rule_id}``.

The caller signs ``<timestamp>.<raw body>`` with HMAC-SHA256 under the rule's secret (shown once,
when the rule was created) and sends ``X-Protocol-Timestamp`` and ``X-Protocol-Signature:
v1=<hex>`` (the scheme of :mod:`service.jobs.signing`). A missing, wrong or stale signature
(outside the replay window), or a timestamp not written canonically, gets 401 and fires nothing.
A delivery replayed inside the window is recognised by its verified (timestamp, digest) pair, not
by the text of its headers, and fires once.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Final

from fastapi import APIRouter, BackgroundTasks, Header, Request, status
from pydantic import BaseModel

from protocol_lab.domain import Trigger
from service.api.deps import SessionDep, StateDep
from service.api.errors import ApiError
from service.jobs.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureRefusedError,
    check_signature,
)
from service.store.outbox import add_event, wake_dispatchers
from service.store.rules import get_rule
from service.tickets.service import process_event_now

__all__ = ["REPLAY_WINDOW_S", "router"]

REPLAY_WINDOW_S: Final = 300.0
_MAX_BODY: Final = 256 * 1024

router = APIRouter(prefix="/automation/webhooks", tags=["webhooks"])


class WebhookAccepted(BaseModel):
    """A verified delivery, queued for the rule."""

    accepted: bool
    rule_id: str
    event_id: int


@router.post(
    "/{rule_id}",
    response_model=WebhookAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Deliver a webhook to a webhook rule",
    responses={401: {"description": "missing, wrong or stale signature"}},
)
async def deliver(
    rule_id: str,
    request: Request,
    session: SessionDep,
    state: StateDep,
    background: BackgroundTasks,
    timestamp: Annotated[str | None, Header(alias=TIMESTAMP_HEADER)] = None,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
) -> WebhookAccepted:
    """Verify the signature, then evaluate the rule's conditions on the JSON body."""
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise ApiError(413, f"webhook body larger than {_MAX_BODY} bytes")
    row = await get_rule(session, rule_id=rule_id)
    if row is None or row.trigger != Trigger.WEBHOOK.value or row.secret is None:
        raise ApiError.not_found(f"no webhook rule {rule_id!r}")
    try:
        verified = check_signature(
            body,
            secret=row.secret,
            timestamp=timestamp,
            signature=signature,
            window_s=REPLAY_WINDOW_S,
        )
    except SignatureRefusedError as exc:
        raise ApiError(401, f"webhook refused: {exc}") from exc
    if not row.enabled:
        raise ApiError.conflict(f"rule {rule_id} is disabled")
    try:
        payload: Any = json.loads(body or b"{}")
    except ValueError as exc:
        raise ApiError.invalid("webhook body must be a JSON object") from exc
    if not isinstance(payload, dict):
        raise ApiError.invalid("webhook body must be a JSON object")
    ticket_id = payload.get("ticket_id")
    proof = f"{verified.timestamp}.{verified.digest}"
    delivery = hashlib.sha256(proof.encode()).hexdigest()[:32]
    event_id = await add_event(
        session,
        kind=Trigger.WEBHOOK.value,
        rule_id=rule_id,
        ticket_id=ticket_id if isinstance(ticket_id, str) and len(ticket_id) <= 32 else None,
        payload={"payload": payload, "delivery": delivery},
    )
    await session.commit()
    wake_dispatchers()
    background.add_task(process_event_now, state, event_id)
    return WebhookAccepted(accepted=True, rule_id=rule_id, event_id=event_id)
