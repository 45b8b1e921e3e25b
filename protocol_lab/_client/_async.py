"""``AsyncClient``: the asynchronous twin of the protocol-lab API client (I/O only)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from protocol_lab._client import _endpoints as ep
from protocol_lab._client._base import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    USE_CLIENT_DEFAULT,
    JSONObject,
    TimeoutTypes,
    UseClientDefault,
    _BaseClient,
)
from protocol_lab._client._endpoints import NOT_GIVEN, Call, Listing, NotGiven
from protocol_lab._client._pagination import DEFAULT_PAGE_SIZE, Emit, Fetch
from protocol_lab._client._retry import RetryPolicy, Sleep

__all__ = ["AsyncClient"]


class AsyncClient(_BaseClient):
    """Asynchronous client of the protocol-lab API, the twin of :class:`Client`.

    Same arguments and methods as ``Client``, as coroutines; iterators are named ``aiter_*``
    and are async iterators. ``transport`` replaces the network (``httpx.MockTransport`` in
    tests) and ``sleep`` the pause between retries (an awaitable function). Use it as an async
    context manager or call :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        token: str | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        random: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url,
            token=token,
            timeout=timeout,
            retry=retry,
            headers=headers,
            random=random,
        )
        self._sleep = sleep if sleep is not None else asyncio.sleep
        self._http = httpx.AsyncClient(transport=transport, timeout=self._timeout, trust_env=False)

    # -- lifecycle -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`aclose` has been called."""
        return self._http.is_closed

    async def __aenter__(self) -> AsyncClient:
        """Enter the context: the client itself."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leave the context: close the client."""
        await self.aclose()

    # -- sending ---------------------------------------------------------------------------

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` with retries; return the final response, error or not."""
        flow = self._retry_flow(request)
        reply: httpx.Response | httpx.RequestError | None = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration as stop:
                response: httpx.Response = stop.value
                return response
            if isinstance(step, Sleep):
                await self._sleep(step.seconds)
                reply = None
            else:
                try:
                    reply = await self._http.send(step.request)
                except httpx.RequestError as exc:
                    reply = exc

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,  # noqa: ASYNC109 (per-request HTTP timeout, as in httpx)
    ) -> Any:
        """Call ``method path`` (e.g. ``"GET", "/v1/workflows"``) and return its JSON value."""
        request = self.build_request(
            method,
            path,
            params=params,
            json=json,
            idempotency_key=idempotency_key,
            timeout=timeout,
        )
        return self._decode(await self.send(request))

    async def _call(self, call: Call) -> JSONObject:
        return self._decode_object(await self.send(self._build_call(call)))

    async def _page(
        self,
        listing: Listing,
        *,
        limit: int | None,
        starting_after: str | None,
        ending_before: str | None,
    ) -> JSONObject:
        call = self._page_call(
            listing, limit=limit, starting_after=starting_after, ending_before=ending_before
        )
        return await self._call(call)

    def _iterate(
        self,
        listing: Listing,
        *,
        page_size: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> AsyncIterator[JSONObject]:
        flow = self._cursor_flow(
            listing,
            page_size=page_size,
            starting_after=starting_after,
            ending_before=ending_before,
        )
        return self._drive_pages(flow, listing.path)

    async def _drive_pages(
        self, flow: Generator[Fetch | Emit, JSONObject | None, None], path: str
    ) -> AsyncIterator[JSONObject]:
        reply: JSONObject | None = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration:
                return
            if isinstance(step, Fetch):
                reply = await self._call(Call("GET", path, params=step.params))
            else:
                reply = None
                for item in step.items:
                    yield item

    def apaginate(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> AsyncIterator[JSONObject]:
        """Every item of the list at ``path``, fetching pages of ``page_size`` as needed.

        Forwards from the start (or from ``starting_after``); backwards from
        ``ending_before``, nearest item first.
        """
        listing = Listing(path, ep.query(**dict(params or {})))
        return self._iterate(
            listing,
            page_size=page_size,
            starting_after=starting_after,
            ending_before=ending_before,
        )

    # -- workflows -------------------------------------------------------------------------

    async def list_workflows(
        self,
        *,
        status: str | None = None,
        task_queue: str | None = None,
        ticket_id: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
        precise_timestamps: bool = False,
    ) -> JSONObject:
        """One page of workflows: ``{"has_more": bool, "data": [workflow, ...]}``.

        ``ticket_id`` (``TKT-<n>``) keeps those started for that ticket; ``precise_timestamps``
        gives every timestamp as float Unix seconds with the sub-second part.
        """
        listing = ep.workflows(
            status=status,
            task_queue=task_queue,
            ticket_id=ticket_id,
            precise_timestamps=precise_timestamps,
        )
        return await self._page(
            listing, limit=limit, starting_after=starting_after, ending_before=ending_before
        )

    def aiter_workflows(
        self,
        *,
        status: str | None = None,
        task_queue: str | None = None,
        ticket_id: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        precise_timestamps: bool = False,
    ) -> AsyncIterator[JSONObject]:
        """Every workflow matching the filters (``ticket_id``: started for that ticket), across
        pages; ``precise_timestamps``: float, sub-second timestamps."""
        listing = ep.workflows(
            status=status,
            task_queue=task_queue,
            ticket_id=ticket_id,
            precise_timestamps=precise_timestamps,
        )
        return self._iterate(listing, page_size=page_size)

    async def create_workflow(
        self,
        *,
        name: str,
        task_queue: str,
        trigger_type: str | None = None,
        input: Mapping[str, Any] | None = None,
        start_at: datetime | float | None = None,
        time_scale: float | None = None,
        idempotency_key: str | None = None,
    ) -> JSONObject:
        """Create and start a workflow.

        ``start_at`` (Unix seconds or an aware datetime) delays a scheduled one; ``time_scale``
        divides its timers and durations (default: the server's).
        """
        return await self._call(
            ep.create_workflow(
                name=name,
                task_queue=task_queue,
                trigger_type=trigger_type,
                input=input,
                start_at=start_at,
                time_scale=time_scale,
                idempotency_key=idempotency_key,
            )
        )

    async def get_workflow(
        self, workflow_id: str, *, precise_timestamps: bool = False
    ) -> JSONObject:
        """A workflow with its full timeline (``precise_timestamps``: float Unix seconds with
        the sub-second part, instead of whole seconds)."""
        call = ep.get_workflow(workflow_id, precise_timestamps=precise_timestamps)
        return await self._call(call)

    async def get_workflow_status(
        self, workflow_id: str, *, precise_timestamps: bool = False
    ) -> JSONObject:
        """A workflow's status summary (current step, steps completed / total, elapsed;
        ``precise_timestamps``: a float, sub-second ``started_at``)."""
        call = ep.get_workflow_status(workflow_id, precise_timestamps=precise_timestamps)
        return await self._call(call)

    async def signal_workflow(
        self,
        workflow_id: str,
        *,
        signal_name: str,
        payload: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> JSONObject:
        """Send signal ``signal_name`` to a running workflow; the answer says if accepted."""
        return await self._call(
            ep.signal_workflow(
                workflow_id,
                signal_name=signal_name,
                payload=payload,
                idempotency_key=idempotency_key,
            )
        )

    async def cancel_workflow(
        self,
        workflow_id: str,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> JSONObject:
        """Cancel a workflow (its compensations run; its status becomes failed)."""
        return await self._call(
            ep.cancel_workflow(workflow_id, reason=reason, idempotency_key=idempotency_key)
        )

    async def pause_workflow(
        self,
        workflow_id: str,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> JSONObject:
        """Pause a running workflow (``reason`` goes to its timeline)."""
        call = ep.pause_workflow(workflow_id, reason=reason, idempotency_key=idempotency_key)
        return await self._call(call)

    async def resume_workflow(
        self,
        workflow_id: str,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> JSONObject:
        """Resume a paused workflow (``reason`` goes to its timeline)."""
        call = ep.resume_workflow(workflow_id, reason=reason, idempotency_key=idempotency_key)
        return await self._call(call)

    # -- automation rules ------------------------------------------------------------------

    async def list_rules(
        self,
        *,
        trigger: str | None = None,
        enabled: bool | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> JSONObject:
        """One page of automation rules."""
        listing = ep.rules(trigger=trigger, enabled=enabled)
        return await self._page(
            listing, limit=limit, starting_after=starting_after, ending_before=ending_before
        )

    def aiter_rules(
        self,
        *,
        trigger: str | None = None,
        enabled: bool | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[JSONObject]:
        """Every automation rule matching the filters, across pages."""
        return self._iterate(ep.rules(trigger=trigger, enabled=enabled), page_size=page_size)

    async def create_rule(
        self,
        *,
        name: str,
        trigger: str,
        action: Mapping[str, Any],
        conditions: Mapping[str, Any] | None = None,
        enabled: bool | None = None,
        schedule_interval_s: float | None = None,
        extra: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> JSONObject:
        """Create an automation rule (``schedule_interval_s``: how often a scheduled rule
        runs; ``extra``: further body fields, sent as given)."""
        return await self._call(
            ep.create_rule(
                name=name,
                trigger=trigger,
                action=action,
                conditions=conditions,
                enabled=enabled,
                schedule_interval_s=schedule_interval_s,
                extra=extra,
                idempotency_key=idempotency_key,
            )
        )

    async def get_rule(self, rule_id: str) -> JSONObject:
        """An automation rule."""
        return await self._call(ep.get_rule(rule_id))

    async def update_rule(
        self,
        rule_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        trigger: str | NotGiven = NOT_GIVEN,
        conditions: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
        action: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        enabled: bool | NotGiven = NOT_GIVEN,
        schedule_interval_s: float | NotGiven | None = NOT_GIVEN,
        extra: Mapping[str, Any] | None = None,
    ) -> JSONObject:
        """Change the given fields of a rule (PATCH); fields not passed are left alone."""
        return await self._call(
            ep.update_rule(
                rule_id,
                name=name,
                trigger=trigger,
                conditions=conditions,
                action=action,
                enabled=enabled,
                schedule_interval_s=schedule_interval_s,
                extra=extra,
            )
        )

    async def delete_rule(self, rule_id: str) -> JSONObject | None:
        """Delete a rule; returns the API's answer (None when it sends no body)."""
        response = await self.send(self._build_call(ep.delete_rule(rule_id)))
        return self._decode_optional_object(response)

    async def toggle_rule(self, rule_id: str) -> JSONObject:
        """Flip a rule's enabled state.

        Not retried once it may have reached the server: the API does not deduplicate
        toggles, and a second one would undo the first.
        """
        return await self._call(ep.toggle_rule(rule_id))

    async def list_rule_executions(
        self,
        rule_id: str,
        *,
        ticket_id: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> JSONObject:
        """One page of a rule's executions (its firings and what they produced), optionally
        only those on ticket ``ticket_id``; this list pages forwards only."""
        return await self._page(
            ep.rule_executions(rule_id, ticket_id=ticket_id),
            limit=limit,
            starting_after=starting_after,
            ending_before=None,
        )

    def aiter_rule_executions(
        self,
        rule_id: str,
        *,
        ticket_id: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[JSONObject]:
        """Every execution of a rule (optionally only those on one ticket), across pages."""
        listing = ep.rule_executions(rule_id, ticket_id=ticket_id)
        return self._iterate(listing, page_size=page_size)

    async def test_rule(
        self,
        rule_id: str,
        *,
        ticket_id: str | None = None,
        ticket: Mapping[str, Any] | None = None,
        previous: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> JSONObject:
        """Dry-run a rule (nothing is done): would it fire, why, and what would it do.

        On a stored ticket (``ticket_id``, fields overridden by ``ticket``) or a ``ticket``
        given inline; ``previous`` is the ticket before the change (on_ticket_updated rules),
        ``payload`` the request body (webhook rules).
        """
        return await self._call(
            ep.dry_run_rule(
                rule_id,
                ticket_id=ticket_id,
                ticket=ticket,
                previous=previous,
                payload=payload,
            )
        )

    # -- tickets ---------------------------------------------------------------------------

    async def list_tickets(
        self,
        *,
        status: str | None = None,
        priority: str | None = None,
        category: str | None = None,
        assignee: str | None = None,
        requester: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> JSONObject:
        """One page of tickets."""
        listing = ep.tickets(
            status=status,
            priority=priority,
            category=category,
            assignee=assignee,
            requester=requester,
        )
        return await self._page(
            listing, limit=limit, starting_after=starting_after, ending_before=ending_before
        )

    def aiter_tickets(
        self,
        *,
        status: str | None = None,
        priority: str | None = None,
        category: str | None = None,
        assignee: str | None = None,
        requester: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[JSONObject]:
        """Every ticket matching the filters, across pages."""
        listing = ep.tickets(
            status=status,
            priority=priority,
            category=category,
            assignee=assignee,
            requester=requester,
        )
        return self._iterate(listing, page_size=page_size)

    async def create_ticket(
        self,
        *,
        title: str,
        description: str | None = None,
        category: str | None = None,
        priority: str | None = None,
        status: str | None = None,
        assignee: str | None = None,
        requester: str | None = None,
        extra: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> JSONObject:
        """Create a ticket (the rules of trigger on_ticket_created are evaluated on it)."""
        return await self._call(
            ep.create_ticket(
                title=title,
                description=description,
                category=category,
                priority=priority,
                status=status,
                assignee=assignee,
                requester=requester,
                extra=extra,
                idempotency_key=idempotency_key,
            )
        )

    async def get_ticket(self, ticket_id: str) -> JSONObject:
        """A ticket."""
        return await self._call(ep.get_ticket(ticket_id))

    async def update_ticket(
        self,
        ticket_id: str,
        *,
        title: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
        category: str | NotGiven | None = NOT_GIVEN,
        priority: str | NotGiven = NOT_GIVEN,
        status: str | NotGiven = NOT_GIVEN,
        assignee: str | NotGiven | None = NOT_GIVEN,
        requester: str | NotGiven | None = NOT_GIVEN,
        extra: Mapping[str, Any] | None = None,
    ) -> JSONObject:
        """Change the given fields of a ticket (PATCH; ``None`` clears a field)."""
        return await self._call(
            ep.update_ticket(
                ticket_id,
                title=title,
                description=description,
                category=category,
                priority=priority,
                status=status,
                assignee=assignee,
                requester=requester,
                extra=extra,
            )
        )

    # -- jobs ------------------------------------------------------------------------------

    async def get_job_queues(self) -> JSONObject:
        """Job counts per state for each background queue."""
        return await self._call(ep.get_job_queues())
