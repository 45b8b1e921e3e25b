"""The activities of plan steps: real work on the service's own parts, each idempotent.

- ``integration_call``: a POST to ``settings.integration_urls[integration]``, signed as every
  outbound call is (:mod:`service.jobs.signing`); retried by
  Temporal on network errors, 429 and 5xx; a 4xx is final. With no URL configured the external
  system's latency is emulated from the step's duration model (divided by ``time_scale``, with
  its failure probability); its outcome is marked ``emulated`` (the timeline's texts are the
  plan's own, as in the simulator).
- ``ticket_update``: sets fields on the workflow's ticket through the ticket store, which records
  the ticket event in the same transaction.
- ``asset_reserve`` / ``asset_release`` / ``asset_assign``: asset records keyed by workflow.
- ``enqueue_job``: a BullMQ job whose id is derived from the workflow and step, so a retry
  enqueues nothing new.

Every activity heartbeats while it waits, so a lost worker is noticed within the heartbeat
timeout and the step is retried elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import numpy as np
from pydantic import TypeAdapter
from temporalio import activity
from temporalio.exceptions import ApplicationError

from protocol_lab.domain import DurationModel, details
from protocol_lab.domain.wire import StepInput, StepOutcome
from service.jobs.signing import destination_secret, signature_headers
from service.state import Resources
from service.store.assets import assign_asset, release_assets, reserve_asset
from service.store.tickets import TicketError, update_ticket_fields

__all__ = ["StepActivities", "emulated_attempt"]

_HEARTBEAT_EVERY = 2.0
_DURATION: TypeAdapter[DurationModel] = TypeAdapter(DurationModel)


def _key(step: StepInput) -> str:
    return f"{step.workflow_id}.{step.step_id}" + (".undo" if step.compensation else "")


def emulated_attempt(step: StepInput, attempt: int) -> tuple[float, bool]:
    """The emulated external system's answer to one attempt of a step: its duration (seconds,
    before ``time_scale``) and whether it fails.

    A function of the workflow id, the step and the attempt number alone, so a retried or
    replayed attempt behaves the same and a test can know an attempt's fate in advance.
    """
    digest = hashlib.sha256(f"{_key(step)}#{attempt}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    seconds = 0.0
    if step.duration is not None:
        seconds = _DURATION.validate_python(step.duration).sample(rng)
    fails = bool(step.failure_probability) and rng.random() < step.failure_probability
    return seconds, fails


@contextlib.asynccontextmanager
async def _heartbeating() -> AsyncIterator[None]:
    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(_HEARTBEAT_EVERY)

    task = asyncio.create_task(beat()) if activity.in_activity() else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _final(message: str) -> ApplicationError:
    return ApplicationError(message, type="NonRetryable", non_retryable=True)


class StepActivities:
    """Activities bound to one worker's resources."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    def all(self) -> list[Callable[..., Any]]:
        """Every activity, for the worker."""
        return [
            self.integration_call,
            self.ticket_update,
            self.asset_reserve,
            self.asset_release,
            self.asset_assign,
            self.enqueue_job,
        ]

    @activity.defn(name="integration_call")
    async def integration_call(self, step: StepInput) -> StepOutcome:
        """Call the step's integration, or emulate it when no URL is configured."""
        name = step.integration or "unknown"
        url = self.resources.settings.integration_urls.get(name)
        if url is None:
            return await self._emulate(step)
        operation = str(step.params.get("operation", step.step_id))
        body = json.dumps(
            {
                "workflow_id": step.workflow_id,
                "workflow_name": step.workflow_name,
                "step": step.step_id,
                "operation": operation,
                "params": step.params,
                "ticket_id": step.ticket_id,
                "input": step.input,
                "compensation": step.compensation,
            },
            sort_keys=True,
            default=str,
        ).encode()
        target = f"{url.rstrip('/')}/{operation}"
        secret = destination_secret(self.resources.settings, target)
        headers = {**signature_headers(body, secret=secret), "Idempotency-Key": _key(step)}
        async with _heartbeating():
            try:
                response = await self.resources.http.post(target, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise ApplicationError(
                    f"{name} unreachable: {type(exc).__name__}", type="IntegrationUnavailable"
                ) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise ApplicationError(
                f"{name} answered {response.status_code}", type="IntegrationUnavailable"
            )
        if response.status_code >= 400:
            raise _final(f"{name} refused {operation}: {response.status_code}")
        return StepOutcome(detail=step.done, data={"status_code": response.status_code})

    async def _emulate(self, step: StepInput) -> StepOutcome:
        attempt = activity.info().attempt if activity.in_activity() else 1
        seconds, fails = emulated_attempt(step, attempt)
        async with _heartbeating():
            await asyncio.sleep(seconds / max(step.time_scale, 1e-9))
        if fails:
            raise ApplicationError(
                details.emulated_failure(step.integration, step.activity),
                type="IntegrationUnavailable",
            )
        return StepOutcome(detail=step.done, emulated=True)

    @activity.defn(name="ticket_update")
    async def ticket_update(self, step: StepInput) -> StepOutcome:
        """Set the step's ``params.fields`` on the workflow's ticket."""
        if step.ticket_id is None:
            return StepOutcome(detail=f"{step.done} (no ticket)")
        fields = dict(step.params.get("fields") or {})
        async with self.resources.sessionmaker() as session:
            try:
                ticket = await update_ticket_fields(
                    session,
                    ticket_id=step.ticket_id,
                    fields=fields,
                    actor=f"workflow:{step.workflow_id}",
                )
            except TicketError as exc:
                raise _final(f"ticket {step.ticket_id}: {exc}") from None
        if ticket is None:
            return StepOutcome(detail=f"{step.done} (ticket {step.ticket_id} not found)")
        return StepOutcome(detail=step.done, data={"ticket_id": step.ticket_id})

    @activity.defn(name="asset_reserve")
    async def asset_reserve(self, step: StepInput) -> StepOutcome:
        """Reserve an asset of ``params.asset_type`` for the workflow."""
        asset_type = str(step.params.get("asset_type", "asset"))
        async with self.resources.sessionmaker() as session:
            asset = await reserve_asset(
                session, workflow_id=step.workflow_id, asset_type=asset_type
            )
        return StepOutcome(detail=step.done, data={"asset_id": asset["id"]})

    @activity.defn(name="asset_release")
    async def asset_release(self, step: StepInput) -> StepOutcome:
        """Return the workflow's assets to stock."""
        async with self.resources.sessionmaker() as session:
            released = await release_assets(session, workflow_id=step.workflow_id)
        return StepOutcome(detail=step.done, data={"asset_ids": [a["id"] for a in released]})

    @activity.defn(name="asset_assign")
    async def asset_assign(self, step: StepInput) -> StepOutcome:
        """Assign the workflow's reserved asset to the input's user."""
        assignee = step.input.get("user_id") or step.params.get("assignee")
        if not isinstance(assignee, str):
            raise _final("asset_assign needs input.user_id or params.assignee")
        async with self.resources.sessionmaker() as session:
            asset = await assign_asset(
                session,
                workflow_id=step.workflow_id,
                assignee=assignee,
                asset_type=step.params.get("asset_type"),
            )
        if asset is None:
            raise _final(f"{step.workflow_id} holds no asset to assign")
        return StepOutcome(detail=step.done, data={"asset_id": asset["id"]})

    @activity.defn(name="enqueue_job")
    async def enqueue_job(self, step: StepInput) -> StepOutcome:
        """Add the step's job to its BullMQ queue (once, whatever the retries)."""
        job_id = await self.resources.jobs.enqueue(
            str(step.params["queue"]),
            str(step.params.get("job", step.step_id)),
            {
                "workflow_id": step.workflow_id,
                "workflow_name": step.workflow_name,
                "step": step.step_id,
                "ticket_id": step.ticket_id,
                "input": step.input,
                "params": {k: v for k, v in step.params.items() if k not in {"queue", "job"}},
            },
            job_id=_key(step),
        )
        return StepOutcome(detail=step.done, data={"job_id": job_id})
