"""The background job queues: counts per state, jobs (failed ones kept and inspectable), retry.

Jobs are added by hand only by an admin, only to the queues, job names and data fields of the
allow-list (:mod:`service.jobs.manual`). Secrets in job data never leave through these
endpoints: values under keys like ``secret``, ``token``, ``password`` or ``authorization``
read as ``[redacted]``.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Annotated, Any, Literal

from bullmq import Job
from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from protocol_lab.domain import JOB_QUEUES, JobQueue
from service.api.deps import AdminAuth, ReadAuth, StateDep, WriteAuth
from service.api.errors import ApiError
from service.jobs.manual import (
    JOB_ID_PATTERN,
    ManualJobError,
    describe_manual_jobs,
    manual_job_id,
    validate_manual_job,
)

__all__ = ["router"]

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobState = Literal["waiting", "active", "completed", "failed", "delayed", "paused"]
REDACTED = "[redacted]"
_SECRET_KEY = re.compile(r"secret|token|password|passwd|authorization|api[_-]?key|credential", re.I)
QueueName = Annotated[str, Path(max_length=64, description="a queue name, e.g. export")]
JobId = Annotated[str, Path(min_length=1, max_length=128, description="the job's id")]
MAX_OFFSET = 100_000


class QueueCounts(BaseModel):
    """One queue: what it is for and how many jobs it holds per state."""

    name: JobQueue
    purpose: str
    concurrency: int
    counts: dict[str, int]


class QueuesList(BaseModel):
    """The twelve queues."""

    data: list[QueueCounts]


class JobPublic(BaseModel):
    """A job as BullMQ keeps it."""

    id: str
    queue: JobQueue
    name: str
    data: dict[str, Any]
    state: str | None = None
    attempts_made: int
    failed_reason: str | None
    stacktrace: list[str]
    return_value: Any = None
    created_at: int | None
    processed_at: int | None
    finished_at: int | None


class JobsPage(BaseModel):
    """Jobs of a queue in one state."""

    has_more: bool
    data: list[JobPublic]


class JobCreate(BaseModel):
    """A job to add by hand (a report, an export, a sync, housekeeping): see the allow-list."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="a job name the queue allows")
    data: dict[str, Any] = Field(
        default_factory=dict, description="only the fields the allow-list names for the job"
    )
    job_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=JOB_ID_PATTERN,
        description="makes the add idempotent; the job's id is this under 'manual-'",
    )


def _queue(name: str) -> JobQueue:
    try:
        return JobQueue(name)
    except ValueError as exc:
        raise ApiError.not_found(
            f"no queue {name!r}; queues are {[q.value for q in JobQueue]}"
        ) from exc


def _seconds(ms: Any) -> int | None:
    try:
        value = int(ms or 0)
    except (TypeError, ValueError):
        return None
    return value // 1000 if value else None


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED if _SECRET_KEY.search(str(k)) else _redacted(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _public(queue: JobQueue, job: Job, state: str | None = None) -> JobPublic:
    data = _redacted(job.data if isinstance(job.data, dict) else {"value": job.data})
    returned = job.returnvalue
    if isinstance(returned, str):
        with contextlib.suppress(ValueError):
            returned = json.loads(returned)
    return JobPublic(
        id=str(job.id),
        queue=queue,
        name=str(job.name),
        data=data,
        state=state,
        attempts_made=int(job.attemptsMade or 0),
        failed_reason=job.failedReason or None,
        stacktrace=[str(line) for line in (job.stacktrace or [])][:5],
        return_value=returned,
        created_at=_seconds(job.timestamp),
        processed_at=_seconds(job.processedOn),
        finished_at=_seconds(job.finishedOn),
    )


@router.get("/queues", response_model=QueuesList, summary="Job counts per queue and state")
async def queues(state: StateDep, _: ReadAuth) -> QueuesList:
    """For each of the twelve queues: waiting, active, completed, failed, delayed, paused."""
    try:
        counts = await state.jobs.counts()
    except Exception as exc:
        raise ApiError.unavailable(f"Redis is unreachable: {type(exc).__name__}") from exc
    return QueuesList(
        data=[
            QueueCounts(
                name=q,
                purpose=JOB_QUEUES[q].purpose,
                concurrency=JOB_QUEUES[q].concurrency,
                counts=counts[q.value],
            )
            for q in JobQueue
        ]
    )


@router.get("/queues/{queue}/jobs", response_model=JobsPage, summary="List jobs of a queue")
async def jobs(
    queue: QueueName,
    state: StateDep,
    _: ReadAuth,
    job_state: Annotated[JobState, Query(alias="state")] = "failed",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JobsPage:
    """Jobs in one state, newest first (failed jobs are kept for inspection)."""
    name = _queue(queue)
    found = await state.jobs.queue(name).getJobs([job_state], offset, offset + limit)
    return JobsPage(
        has_more=len(found) > limit,
        data=[_public(name, j, job_state) for j in found[:limit]],
    )


async def _job(state: StateDep, queue: JobQueue, job_id: str) -> Job:
    job = await state.jobs.queue(queue).getJob(job_id)
    if job is None:
        raise ApiError.not_found(f"no job {job_id!r} in {queue.value}")
    return job


async def _job_and_state(state: StateDep, queue: JobQueue, job_id: str) -> JobPublic:
    # The state first, then the job: its fields are then at least as new as the state.
    current = str(await (await _job(state, queue, job_id)).getState())
    return _public(queue, await _job(state, queue, job_id), current)


@router.get("/queues/{queue}/jobs/{job_id}", response_model=JobPublic, summary="Retrieve a job")
async def job(queue: QueueName, job_id: JobId, state: StateDep, _: ReadAuth) -> JobPublic:
    """One job with its state, attempts, failure reason and result."""
    return await _job_and_state(state, _queue(queue), job_id)


_ADD_DESCRIPTION = f"""Add a job (retried with exponential backoff). Needs the **admin** scope.

Only these queues, job names and data fields may be added by hand; another job name or field is
refused with 400, a queue not listed with 403. A given `job_id` makes the add idempotent; the
job's id is that id under `manual-` (`nightly` becomes `manual-nightly`), apart from the ids of
the jobs the service enqueues itself.

{describe_manual_jobs()}
"""


@router.post(
    "/queues/{queue}/jobs",
    response_model=JobPublic,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Add a job",
    description=_ADD_DESCRIPTION,
    responses={
        400: {"description": "a job name or data field the queue does not allow"},
        403: {"description": "not an admin token, or a queue that takes no manual jobs"},
    },
)
async def add(queue: QueueName, body: JobCreate, state: StateDep, _: AdminAuth) -> JobPublic:
    """Add an allowed job by hand (see the description)."""
    name = _queue(queue)
    try:
        data = validate_manual_job(name, body.name, body.data)
    except ManualJobError as exc:
        raise ApiError(403 if exc.forbidden else 400, str(exc)) from exc
    job_id = None if body.job_id is None else manual_job_id(body.job_id)
    job_id = await state.jobs.enqueue(name, body.name, data, job_id=job_id)
    return await _job_and_state(state, name, job_id)


@router.post(
    "/queues/{queue}/jobs/{job_id}/retry",
    response_model=JobPublic,
    summary="Retry a failed job",
)
async def retry(queue: QueueName, job_id: JobId, state: StateDep, _: WriteAuth) -> JobPublic:
    """Move a failed job back to waiting."""
    name = _queue(queue)
    found = await _job(state, name, job_id)
    current = str(await found.getState())
    if current != "failed":
        raise ApiError.conflict(f"job {job_id} is {current}, not failed")
    await found.retry("failed")
    return await _job_and_state(state, name, job_id)
