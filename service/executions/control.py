"""Acting on a running workflow: signal, cancel, pause, resume.

A signal is a Temporal signal, kept durably by the server, answered at once from the state the
workflow recorded: ``accepted`` false with a reason for a signal it will not act on (its plan
does not have it, or its step is over), 409 for a closed or not yet started workflow. Pause and
resume are Temporal Updates whose validators run in the workflow, so the answer says what the
workflow did: 409 for a closed or not yet started workflow, or for pausing a paused one. An
``update_id`` (from the request's Idempotency-Key) makes a retried request answer the first one.
Cancel asks Temporal to cancel with a reason; the workflow compensates its completed steps in
reverse and ends.

No request waits for the workflow longer than ``CONTROL_WAIT_S``: a workflow that has not
answered by then (no worker polls its task queue, say) gets :class:`ControlPendingError`, carrying
the answer as the workflow stands; the caller follows its status, or retries with the same key.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from protocol_lab.domain import wire_events
from protocol_lab.domain.wire import (
    MEMO_STATE,
    PAUSE_UPDATE,
    PLAN_SIGNAL,
    RESUME_UPDATE,
    ControlInput,
    SignalInput,
    WorkflowState,
)
from service.errors import ConflictError, InvalidRequestError, ServiceError, UnavailableError
from service.executions.context import RPC_TIMEOUT, TemporalContext, temporal_errors
from service.executions.queries import get_status, get_timeline
from service.store.idempotency import DEFAULT_TTL_S, claim_idempotency_key

__all__ = [
    "CONTROL_WAIT_S",
    "ControlPendingError",
    "cancel_workflow",
    "claim_cancel_key",
    "pause_workflow",
    "resume_workflow",
    "signal_workflow",
]

# How long a control request waits for the workflow to take it (or, for a cancel, to end).
CONTROL_WAIT_S: Final = 4.0
# The long polls behind those waits outlast them, so the bounded wait is what ends them.
_POLL_TIMEOUT: Final = timedelta(seconds=CONTROL_WAIT_S + 5)


class ControlPendingError(UnavailableError):
    """The workflow did not take a request within ``CONTROL_WAIT_S``.

    ``answer`` is the endpoint's answer as the workflow stands (the API sends it with 202). A
    caller that needs the outcome sees a 503: retry with the same update id.
    """

    def __init__(self, workflow_id: str, answer: dict[str, Any]) -> None:
        super().__init__(
            f"workflow {workflow_id} has not taken the request within {CONTROL_WAIT_S:g} s (is a"
            f" worker polling its task queue?); follow GET /v1/workflows/{workflow_id}/status, or"
            " retry with the same Idempotency-Key for the outcome",
        )
        self.answer = answer


async def _require_running(ctx: TemporalContext, workflow_id: str, action: str) -> None:
    status = await get_status(ctx, workflow_id)
    if status["status"] in ("completed", "failed", "archived"):
        raise ConflictError(f"workflow {workflow_id} is {status['status']}; cannot {action} it")
    if status["status"] == "draft":
        until = status["started_at"]
        raise ConflictError(
            f"workflow {workflow_id} has not started yet (draft until {until}); cannot {action} it"
            if until is not None
            else f"workflow {workflow_id} is a draft: POST /v1/workflows/{workflow_id}/start"
            f" starts it; cannot {action} it before"
        )


async def _update(
    ctx: TemporalContext,
    workflow_id: str,
    *,
    update: str,
    arg: Any,
    update_id: str | None,
    action: str,
) -> WorkflowState | None:
    """The workflow's state after the update; None when it did not take it in time."""
    await _require_running(ctx, workflow_id, action)
    handle = ctx.temporal.get_workflow_handle(workflow_id)
    try:
        with temporal_errors(workflow_id):
            return await asyncio.wait_for(
                handle.execute_update(
                    update,
                    arg,
                    id=update_id,
                    result_type=WorkflowState,
                    rpc_timeout=_POLL_TIMEOUT,
                ),
                CONTROL_WAIT_S,
            )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            if cause.type == "UnknownSignal":
                raise InvalidRequestError(cause.message) from None
            raise ConflictError(f"workflow {workflow_id}: {cause.message}") from None
        raise ConflictError(f"workflow {workflow_id} refused {action}: {exc}") from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        return None
    except RPCError as exc:  # pragma: no cover - translated by temporal_errors
        raise UnavailableError(str(exc)) from None


async def signal_workflow(
    ctx: TemporalContext,
    workflow_id: str,
    *,
    signal_name: str,
    payload: dict[str, Any],
    update_id: str | None = None,
) -> dict[str, Any]:
    """Send a plan signal as a Temporal signal, which the server keeps durably (it is taken even
    if no worker runs now); answer at once whether the workflow will act on it.

    The answer comes from the state the workflow recorded (its memo): ``accepted`` false with a
    ``reason``, and nothing sent, for a signal its plan does not have or whose step is over;
    409 for a closed or not yet started workflow. ``update_id`` (from the Idempotency-Key)
    travels with the signal, so the workflow takes a repeated request once.
    """
    action = f"signal {signal_name!r} to"
    handle = ctx.temporal.get_workflow_handle(workflow_id)
    try:
        with temporal_errors(workflow_id):
            desc = await handle.describe(rpc_timeout=RPC_TIMEOUT)
    except ServiceError:
        await _require_running(ctx, workflow_id, action)  # a draft or an archived workflow
        raise
    state: dict[str, Any] = await desc.memo_value(MEMO_STATE, default={}, type_hint=dict)
    if desc.status != WorkflowExecutionStatus.RUNNING or state.get("status") == "draft":
        await _require_running(ctx, workflow_id, action)  # closed, or not started: 409
    answer: dict[str, Any] = {
        "id": workflow_id,
        "signal_name": signal_name,
        "accepted": False,
        "reason": _refusal(state, signal_name),
        "status": state.get("status", "active"),
        "current_step": state.get("current_step"),
    }
    taken = state.get("signal_requests")
    if update_id is not None and isinstance(taken, list) and update_id in taken:
        return {**answer, "accepted": True, "reason": None}  # a retry of a signal it took
    if answer["reason"] is not None:
        return answer
    try:
        with temporal_errors(workflow_id):
            await handle.signal(
                PLAN_SIGNAL,
                SignalInput(signal_name=signal_name, payload=payload, request_id=update_id),
                rpc_timeout=RPC_TIMEOUT,
            )
    except ServiceError:
        # closed since its state was read: say so as for any closed workflow
        await _require_running(ctx, workflow_id, action)
        raise
    return {**answer, "accepted": True}


def _refusal(state: dict[str, Any], signal_name: str) -> str | None:
    """Why the workflow would not act on ``signal_name``, from its recorded state (None: it
    would). A state recorded before the workflow kept its signals there answers None."""
    known, awaited = state.get("plan_signals"), state.get("awaited_signals")
    if not isinstance(known, list) or not isinstance(awaited, list):
        return None
    if signal_name not in known:
        names = ", ".join(known) or "none"
        return f"the workflow takes no signal {signal_name!r}; its signals: {names}"
    if signal_name not in awaited:
        return f"signal {signal_name!r} is no longer awaited (already received or timed out)"
    return None


_CONTROL_FIELDS: Final = ("id", "status", "current_step", "steps_completed", "steps_total")


async def _control(
    ctx: TemporalContext, workflow_id: str, *, update: str, reason: str, update_id: str | None
) -> dict[str, Any]:
    state = await _update(
        ctx,
        workflow_id,
        update=update,
        arg=ControlInput(reason=reason),
        update_id=update_id,
        action=update,
    )
    if state is None:
        now = await get_status(ctx, workflow_id)
        raise ControlPendingError(workflow_id, {k: now[k] for k in _CONTROL_FIELDS})
    return {
        "id": workflow_id,
        "status": state.status,
        "current_step": state.current_step,
        "steps_completed": state.steps_completed,
        "steps_total": state.steps_total,
    }


async def pause_workflow(
    ctx: TemporalContext, workflow_id: str, *, reason: str = "", update_id: str | None = None
) -> dict[str, Any]:
    """Pause before the next step (:class:`ControlPendingError` when not taken within the wait)."""
    return await _control(ctx, workflow_id, update=PAUSE_UPDATE, reason=reason, update_id=update_id)


async def resume_workflow(
    ctx: TemporalContext, workflow_id: str, *, reason: str = "", update_id: str | None = None
) -> dict[str, Any]:
    """Resume a paused workflow (:class:`ControlPendingError` when not taken within the wait)."""
    return await _control(
        ctx, workflow_id, update=RESUME_UPDATE, reason=reason, update_id=update_id
    )


async def claim_cancel_key(
    session: AsyncSession,
    *,
    scope: str,
    key: str,
    workflow_id: str,
    reason: str,
    ttl_s: float = DEFAULT_TTL_S,
) -> bool:
    """Claim a cancel request's Idempotency-Key in ``scope``; True when it repeats one.

    The same key with a different workflow or reason is a 409 conflict.
    """
    claim = await claim_idempotency_key(
        session,
        scope=scope,
        key=key,
        request={"workflow_id": workflow_id, "reason": reason},
        resource_id=workflow_id,
        ttl_s=ttl_s,
        commit=True,
    )
    return not claim.first


async def _request_cancel(ctx: TemporalContext, workflow_id: str, *, reason: str) -> None:
    handle = ctx.temporal.get_workflow_handle(workflow_id)
    try:
        with temporal_errors(workflow_id):
            await handle.cancel(reason=reason, rpc_timeout=RPC_TIMEOUT)
    except ServiceError:
        # A workflow that ended since its status was read cannot be cancelled: answer its end.
        if (await get_status(ctx, workflow_id))["status"] not in ("completed", "failed"):
            raise


async def cancel_workflow(
    ctx: TemporalContext,
    workflow_id: str,
    *,
    reason: str = "Cancelled by user",
    repeat: bool = False,
) -> dict[str, Any]:
    """Cancel; wait (up to ``CONTROL_WAIT_S``) for the compensations and the end.

    The answer is the workflow as it stands then: ``failed`` once it ended, still ``active``
    (or ``paused``) while compensations run. ``repeat`` marks a retried request (same
    Idempotency-Key): a workflow it already ended is answered rather than refused, and one
    still running is asked to cancel again, in case the first attempt never reached Temporal.
    """
    status = await get_status(ctx, workflow_id)
    # An archived workflow is no longer in Temporal: even a retried cancel cannot wait on it.
    closed = status["status"] in ("completed", "failed")
    if status["status"] == "archived" or (closed and not repeat):
        raise ConflictError(f"workflow {workflow_id} is {status['status']}; cannot cancel it")
    requested = time.time()
    if not closed:
        # Asking again for a cancel already requested changes nothing in Temporal.
        await _request_cancel(ctx, workflow_id, reason=reason)
        handle = ctx.temporal.get_workflow_handle(workflow_id)
        try:
            with temporal_errors(workflow_id):
                await asyncio.wait_for(handle.result(rpc_timeout=_POLL_TIMEOUT), CONTROL_WAIT_S)
        except (WorkflowFailureError, TimeoutError):
            pass
    timeline = await get_timeline(ctx, workflow_id)
    after = await get_status(ctx, workflow_id)
    return {
        "id": workflow_id,
        "status": after["status"],
        "cancelled_at": int(timeline.closed_at or requested),
        "timeline": wire_events(timeline.events),
    }
