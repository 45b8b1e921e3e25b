"""The workflow endpoints: list, create, retrieve, status, start (drafts), signal, cancel, pause,
resume, archive.

Handlers validate, call :mod:`service.executions`, return. GETs need the read scope, POSTs the
write scope (archiving: admin). ``Idempotency-Key`` is honoured on every POST that acts on one
workflow.
"""

from __future__ import annotations

from collections.abc import Awaitable
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Response

from protocol_lab.domain import TaskQueue, TriggerType, WorkflowStatus
from service.api.deps import (
    AdminAuth,
    Principal,
    ReadAuth,
    SessionDep,
    StateDep,
    WriteAuth,
    idempotency_scope,
)
from service.api.errors import ApiError, ErrorBody
from service.errors import NotFoundError
from service.executions import (
    archive_closed_workflows,
    cancel_workflow,
    claim_cancel_key,
    get_status,
    get_workflow,
    list_workflows,
    pause_workflow,
    resume_workflow,
    signal_workflow,
)
from service.executions.control import CONTROL_WAIT_S, ControlPendingError
from service.executions.drafts import hold_draft, start_draft
from service.executions.models import (
    ArchiveRequest,
    ArchiveResult,
    CancelRequest,
    CancelResult,
    ControlRequest,
    ControlResult,
    SignalRequest,
    SignalResult,
    Timestamps,
    Workflow,
    WorkflowCreate,
    WorkflowPage,
    WorkflowStatusView,
)
from service.executions.queries import MAX_CREATED_S, find_draft
from service.executions.starter import create_workflow as create_workflow_service

__all__ = ["router"]

router = APIRouter(
    prefix="/workflows",
    tags=["workflows"],
    responses={
        404: {"model": ErrorBody, "description": "not_found: no such workflow"},
        503: {"model": ErrorBody, "description": "api_error: Temporal unavailable; retry"},
    },
)

WorkflowId = Annotated[
    str, Path(max_length=200, description="the workflow id, e.g. wf_7bR3kLmNpQ9xYz")
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="a retried request with the same key gets the first answer; keys belong"
        " to the calling token and count for IDEMPOTENCY_TTL_S (24 h by default)",
    ),
]
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "conflict: the workflow cannot take this now"}
}
_PENDING = (
    f"the workflow has not taken the request within {CONTROL_WAIT_S:g} s (no worker is polling"
    " its task queue, say): the body is the workflow as it stands. Follow"
    " GET /v1/workflows/{workflow_id}/status, or send the request again with the same"
    " Idempotency-Key for its outcome (a retry is never a second request)."
)


TimestampsQuery = Annotated[
    Timestamps,
    Query(
        description="int (default): every timestamp (started_at, completed_at, the timeline's"
        " timestamp) in whole Unix seconds; float: in Unix seconds with the sub-second part"
        " (floor equals the whole-second value)"
    ),
]


async def _within_bound(
    response: Response,
    control: Awaitable[dict[str, Any]],
    *,
    state: StateDep | None = None,
    workflow_id: str = "",
) -> dict[str, Any]:
    """The control's answer; 202 with the workflow as it stands when it did not take it in time;
    409 for a draft of ``state``'s store, which has no execution to take it yet."""
    try:
        return await control
    except ControlPendingError as pending:
        response.status_code = HTTPStatus.ACCEPTED
        return pending.answer
    except NotFoundError:
        if state is not None and await find_draft(state, workflow_id) is not None:
            raise ApiError.conflict(
                f"workflow {workflow_id} is a draft: POST /v1/workflows/{workflow_id}/start"
                " starts it"
            ) from None
        raise


def _control_responses(model: type[Any], pending: str = _PENDING) -> dict[int | str, Any]:
    return {**_CONFLICT, 202: {"model": model, "description": pending}}


def _update_id(principal: Principal, action: str, key: str | None) -> str | None:
    return f"{idempotency_scope(principal, action)}:{key}" if key else None


@router.get("", response_model=WorkflowPage, summary="List all workflows")
async def list_all(
    _: ReadAuth,
    state: StateDep,
    status: Annotated[WorkflowStatus | None, Query(description="filter by status")] = None,
    task_queue: Annotated[TaskQueue | None, Query(description="filter by task queue")] = None,
    ticket_id: Annotated[
        str | None,
        Query(
            min_length=5,
            max_length=16,
            pattern=r"^TKT-[0-9]{1,12}$",
            description="only the workflows started for this ticket (TKT- and 1 to 12 digits),"
            " archived ones included where the list includes archived workflows",
            examples=["TKT-123"],
        ),
    ] = None,
    name: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="only the workflows of this definition name",
            examples=["Laptop Provisioning - New Hire"],
        ),
    ] = None,
    trigger_type: Annotated[
        TriggerType | None, Query(description="only the workflows initiated this way")
    ] = None,
    created_after: Annotated[
        float | None,
        Query(
            ge=0,
            le=MAX_CREATED_S,
            allow_inf_nan=False,
            description="only the workflows created at or after this time (Unix seconds)",
        ),
    ] = None,
    created_before: Annotated[
        float | None,
        Query(
            ge=0,
            le=MAX_CREATED_S,
            allow_inf_nan=False,
            description="only the workflows created before this time (Unix seconds)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="page size (default 10)")] = 10,
    starting_after: Annotated[
        str | None,
        Query(max_length=200, description="cursor: the page after this workflow id (older)"),
    ] = None,
    ending_before: Annotated[
        str | None,
        Query(max_length=200, description="cursor: the page before this workflow id (newer)"),
    ] = None,
    timestamps: TimestampsQuery = Timestamps.INT,
) -> dict[str, Any]:
    """Workflow executions, newest first, from Temporal visibility (with drafts and archived
    workflows from the store). Every filter given must hold; the cursor works with any of them.
    """
    data, has_more = await list_workflows(
        state,
        status=status.value if status else None,
        task_queue=task_queue.value if task_queue else None,
        ticket_id=ticket_id,
        name=name,
        trigger_type=trigger_type.value if trigger_type else None,
        created_after=created_after,
        created_before=created_before,
        limit=limit,
        starting_after=starting_after,
        ending_before=ending_before,
        precise=timestamps is Timestamps.FLOAT,
    )
    return {"has_more": has_more, "data": data}


@router.post(
    "",
    response_model=Workflow,
    status_code=HTTPStatus.CREATED,
    summary="Create a workflow",
    description="201 Created with the workflow, as every create of this API answers"
    " (workflows, rules, tickets, workflow definitions); a retry with the same"
    " Idempotency-Key answers 201 with the first workflow.",
    responses=_CONFLICT,
)
async def create(
    principal: WriteAuth,
    state: StateDep,
    session: SessionDep,
    body: WorkflowCreate,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Start an execution of a catalog workflow (at ``start_at`` when scheduled)."""
    return await create_workflow_service(
        state,
        session=session,
        request=body,
        idempotency_key=idempotency_key,
        key_scope=idempotency_scope(principal, "workflows.create"),
        caller=principal.subject,
    )


@router.post(
    "/archive",
    response_model=ArchiveResult,
    summary="Archive closed workflows",
    responses={403: {"model": ErrorBody, "description": "permission_error: needs admin"}},
)
async def archive(
    _: AdminAuth,
    state: StateDep,
    body: Annotated[ArchiveRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Move workflows closed longer ago than ``older_than_s`` (default ``ARCHIVE_AFTER_S``) from
    Temporal to the timeline archive; they then read as ``archived``."""
    older = body.older_than_s if body and body.older_than_s is not None else None
    archived = await archive_closed_workflows(
        state,
        older_than_s=state.settings.archive_after_s if older is None else older,
    )
    return {"archived": archived}


@router.get("/{workflow_id}", response_model=Workflow, summary="Retrieve a workflow")
async def retrieve(
    _: ReadAuth,
    state: StateDep,
    workflow_id: WorkflowId,
    timestamps: TimestampsQuery = Timestamps.INT,
) -> dict[str, Any]:
    """The workflow with its full timeline, built from its Temporal history."""
    return await get_workflow(state, workflow_id, precise=timestamps is Timestamps.FLOAT)


@router.get(
    "/{workflow_id}/status", response_model=WorkflowStatusView, summary="Get workflow status"
)
async def status_of(
    _: ReadAuth,
    state: StateDep,
    workflow_id: WorkflowId,
    timestamps: TimestampsQuery = Timestamps.INT,
) -> dict[str, Any]:
    """Status and progress, without the timeline."""
    return await get_status(state, workflow_id, precise=timestamps is Timestamps.FLOAT)


@router.post(
    "/{workflow_id}/signal",
    response_model=SignalResult,
    summary="Send a signal to a workflow",
    responses=_CONFLICT,
)
async def signal(
    principal: WriteAuth,
    state: StateDep,
    workflow_id: WorkflowId,
    body: SignalRequest,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Send a signal (a Temporal signal, kept durably: taken even if no worker runs now).

    ``accepted`` says, from the workflow's recorded state, whether it will act on the signal;
    when false, ``reason`` says why and nothing was sent. 409 for a closed or draft workflow.
    """
    return await signal_workflow(
        state,
        workflow_id,
        signal_name=body.signal_name,
        payload=body.payload,
        update_id=_update_id(principal, "signal", idempotency_key),
    )


@router.post(
    "/{workflow_id}/cancel",
    response_model=CancelResult,
    summary="Cancel a workflow",
    responses=_control_responses(
        CancelResult,
        f"the cancel is requested but the workflow has not ended within {CONTROL_WAIT_S:g} s"
        " (compensations still running, or no worker polling its task queue): the body is the"
        " workflow as it stands. Follow GET /v1/workflows/{workflow_id}/status until it is"
        " failed; sending the cancel again (same Idempotency-Key) is harmless.",
    ),
)
async def cancel(
    principal: WriteAuth,
    state: StateDep,
    session: SessionDep,
    workflow_id: WorkflowId,
    response: Response,
    body: Annotated[CancelRequest | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Cancel: compensations of completed steps run in reverse; the status becomes failed.

    200 once the workflow ended, 202 while it has not within a few seconds.
    """
    reason = (body.reason if body else None) or "Cancelled by user"
    await hold_draft(state, workflow_id)  # a draft gets the execution the cancel then closes
    repeat = (
        await claim_cancel_key(
            session,
            scope=idempotency_scope(principal, "workflows.cancel"),
            key=idempotency_key,
            workflow_id=workflow_id,
            reason=reason,
            ttl_s=state.settings.idempotency_ttl_s,
        )
        if idempotency_key is not None
        else False
    )
    answer = await cancel_workflow(state, workflow_id, reason=reason, repeat=repeat)
    if answer["status"] not in ("completed", "failed"):
        response.status_code = HTTPStatus.ACCEPTED
    return answer


@router.post(
    "/{workflow_id}/start",
    response_model=Workflow,
    summary="Start a draft workflow",
    responses=_CONFLICT,
)
async def start(principal: WriteAuth, state: StateDep, workflow_id: WorkflowId) -> dict[str, Any]:
    """Start a draft (a scheduled workflow created without start_at or schedule) now, with the
    definition version it was created with; 409 for any other workflow. A retry after the
    start answers 409 naming the workflow's status."""
    return await start_draft(state, workflow_id)


@router.post(
    "/{workflow_id}/pause",
    response_model=ControlResult,
    summary="Pause a workflow",
    responses=_control_responses(ControlResult),
)
async def pause(
    principal: WriteAuth,
    state: StateDep,
    workflow_id: WorkflowId,
    response: Response,
    body: Annotated[ControlRequest | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Pause before the next step (status paused); 202 while the workflow has not taken it."""
    return await _within_bound(
        response,
        pause_workflow(
            state,
            workflow_id,
            reason=(body.reason if body else None) or "",
            update_id=_update_id(principal, "pause", idempotency_key),
        ),
        state=state,
        workflow_id=workflow_id,
    )


@router.post(
    "/{workflow_id}/resume",
    response_model=ControlResult,
    summary="Resume a workflow",
    responses=_control_responses(ControlResult),
)
async def resume(
    principal: WriteAuth,
    state: StateDep,
    workflow_id: WorkflowId,
    response: Response,
    body: Annotated[ControlRequest | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Resume a paused workflow (status active); 202 while the workflow has not taken it."""
    return await _within_bound(
        response,
        resume_workflow(
            state,
            workflow_id,
            reason=(body.reason if body else None) or "",
            update_id=_update_id(principal, "resume", idempotency_key),
        ),
        state=state,
        workflow_id=workflow_id,
    )
