# Generated from _async.py by `python -m protocol_lab._client._unasync`: do not edit.
"""``Client``: the synchronous twin of the protocol-lab API client (I/O only).

This module is generated from ``_async.py`` by ``python -m protocol_lab._client._unasync``;
edit that one and regenerate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Generic

import httpx

from protocol_lab._client import _endpoints as ep
from protocol_lab._client._base import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    USE_CLIENT_DEFAULT,
    JSONObject,
    ModelT,
    TimeoutTypes,
    UseClientDefault,
    _BaseClient,
)
from protocol_lab._client._endpoints import NOT_GIVEN, Call, Listing, NotGiven
from protocol_lab._client._pagination import DEFAULT_PAGE_SIZE, Emit, Fetch, PaginationError
from protocol_lab._client._retry import RetryPolicy, Sleep
from protocol_lab._client.models import (
    CancelResult,
    ControlResult,
    Deleted,
    DryRunResult,
    PageData,
    QueueList,
    Rule,
    RuleExecution,
    SecretRotated,
    SignalResult,
    Ticket,
    ToggleResult,
    Workflow,
    WorkflowDefinition,
    WorkflowDefinitionList,
    WorkflowStatus,
    warn_subscript,
)

__all__ = ["Client", "Page"]


class Page(Generic[ModelT]):
    """One page of a list, which can fetch the pages after it.

    ``data`` holds this page's items (models) in list order, ``has_more`` tells whether more
    follow, ``raw`` is the page's JSON as received. ``for item in page`` walks every
    item from this page to the end of the list, fetching the next pages as it goes (a page
    fetched with ``ending_before`` walks backwards, nearest item first, as the ``iter_*``
    methods do); :meth:`next_page` fetches just the next one.
    """

    def __init__(
        self,
        content: PageData[ModelT],
        *,
        fetch: Callable[[str], Page[ModelT]],
        cursor: str | None = None,
        backward: bool = False,
    ) -> None:
        self._content = content
        self._fetch = fetch
        self._cursor = cursor
        self._backward = backward

    @property
    def data(self) -> list[ModelT]:
        """This page's items, in list order."""
        return self._content.data

    @property
    def has_more(self) -> bool:
        """Whether the list goes on after this page (before it, for a backward page)."""
        return self._content.has_more

    @property
    def raw(self) -> JSONObject:
        """The page's JSON as received: ``{"has_more": ..., "data": [...]}``."""
        return self._content.raw

    @property
    def next_cursor(self) -> str | None:
        """The id the next page starts after (ends before, backwards); None at the end."""
        if not self.has_more or not self.data:
            return None
        ids = [item["id"] for item in self.raw["data"]]
        return str(ids[0] if self._backward else ids[-1])

    def next_page(self) -> Page[ModelT] | None:
        """The page after this one, or None when this is the last."""
        cursor = self.next_cursor
        if cursor is None:
            return None
        if cursor == self._cursor:
            raise PaginationError(f"the list did not advance past cursor {cursor!r}")
        return self._fetch(cursor)

    def __iter__(self) -> Iterator[ModelT]:
        """Every item from this page on, fetching the following pages as needed."""
        page: Page[ModelT] | None = self
        while page is not None:
            yield from page.data[::-1] if page._backward else page.data
            page = page.next_page()

    def __getitem__(self, key: str) -> Any:
        """Deprecated dict-style read of the page's JSON (``page["data"]``): use ``.data``
        (models) or ``.raw``."""
        warn_subscript(type(self).__name__, key)
        return self.raw[key]

    def __contains__(self, key: object) -> bool:
        """Deprecated dict-style test of a key of the page's JSON: use ``.raw``."""
        warn_subscript(type(self).__name__, str(key))
        return key in self.raw

    def __repr__(self) -> str:
        """Class, item count and ``has_more``."""
        return f"{type(self).__name__}(items={len(self.data)}, has_more={self.has_more})"


class Client(_BaseClient):
    """Synchronous client of the protocol-lab API.

    ``Client(base_url=..., token=...)`` talks to the service at ``base_url`` (default
    ``http://localhost:3000``) with a bearer ``token``. Methods return typed models
    (:mod:`protocol_lab._client.models`, each with its JSON as received in ``.raw``), one
    page of a list as an ``Page``; :meth:`request` and :meth:`paginate` reach any path
    and return plain JSON. Errors are raised as the :class:`ApiError` tree. ``transport``
    replaces the network (e.g. ``httpx.MockTransport`` in tests) and ``sleep`` the pause
    between retries. Use it as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        token: str | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
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
        self._sleep = sleep if sleep is not None else time.sleep
        self._http = httpx.Client(transport=transport, timeout=self._timeout, trust_env=False)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._http.is_closed

    def __enter__(self) -> Client:
        """Enter the context: the client itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leave the context: close the client."""
        self.close()

    # -- sending ---------------------------------------------------------------------------

    def send(self, request: httpx.Request) -> httpx.Response:
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
                self._sleep(step.seconds)
                reply = None
            else:
                try:
                    reply = self._http.send(step.request)
                except httpx.RequestError as exc:
                    reply = exc

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
        timeout: TimeoutTypes | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> Any:
        """Call ``method path`` (e.g. ``"GET", "/v1/workflows"``) and return its JSON value
        as received (the raw access to any endpoint)."""
        request = self.build_request(
            method,
            path,
            params=params,
            json=json,
            idempotency_key=idempotency_key,
            timeout=timeout,
        )
        return self._decode(self.send(request))

    def _call(self, call: Call, model: type[ModelT]) -> ModelT:
        return self._decode_model(self.send(self._build_call(call)), model)

    def _page(
        self,
        listing: Listing,
        item: type[ModelT],
        *,
        limit: int | None,
        starting_after: str | None,
        ending_before: str | None,
    ) -> Page[ModelT]:
        call = self._page_call(
            listing, limit=limit, starting_after=starting_after, ending_before=ending_before
        )
        content = self._decode_page(self.send(self._build_call(call)), item)
        backward = ending_before is not None

        def fetch(cursor: str) -> Page[ModelT]:
            return self._page(
                listing,
                item,
                limit=limit,
                starting_after=None if backward else cursor,
                ending_before=cursor if backward else None,
            )

        return Page(content, fetch=fetch, cursor=ending_before or starting_after, backward=backward)

    def _iterate(
        self,
        listing: Listing,
        item: type[ModelT],
        *,
        page_size: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> Iterator[ModelT]:
        flow = self._cursor_flow(
            listing,
            page_size=page_size,
            starting_after=starting_after,
            ending_before=ending_before,
        )
        return self._drive_pages(flow, listing.path, item)

    def _drive_pages(
        self,
        flow: Generator[Fetch | Emit, JSONObject | None, None],
        path: str,
        item: type[ModelT],
    ) -> Iterator[ModelT]:
        reply: JSONObject | None = None
        models: dict[int, ModelT] = {}
        while True:
            try:
                step = flow.send(reply)
            except StopIteration:
                return
            if isinstance(step, Fetch):
                request = self._build_call(Call("GET", path, params=step.params))
                page = self._decode_page(self.send(request), item)
                # The flow hands back the page's own JSON items: map each to its model.
                models = {
                    id(raw): model for raw, model in zip(page.raw["data"], page.data, strict=True)
                }
                reply = page.raw
            else:
                reply = None
                for raw in step.items:
                    yield models[id(raw)]

    def paginate(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> Iterator[JSONObject]:
        """Every item of the list at ``path`` as JSON received, fetching pages of
        ``page_size`` as needed (the raw access to any list).

        Forwards from the start (or from ``starting_after``); backwards from
        ``ending_before``, nearest item first.
        """
        flow = self._cursor_flow(
            Listing(path, ep.query(**dict(params or {}))),
            page_size=page_size,
            starting_after=starting_after,
            ending_before=ending_before,
        )
        return self._drive_raw_pages(flow, path)

    def _drive_raw_pages(
        self, flow: Generator[Fetch | Emit, JSONObject | None, None], path: str
    ) -> Iterator[JSONObject]:
        reply: JSONObject | None = None
        while True:
            try:
                step = flow.send(reply)
            except StopIteration:
                return
            if isinstance(step, Fetch):
                request = self._build_call(Call("GET", path, params=step.params))
                reply = self._decode_object(self.send(request))
            else:
                reply = None
                yield from step.items

    # -- workflows -------------------------------------------------------------------------

    def list_workflows(
        self,
        *,
        status: str | None = None,
        task_queue: str | None = None,
        ticket_id: str | None = None,
        name: str | None = None,
        trigger_type: str | None = None,
        created_after: datetime | float | None = None,
        created_before: datetime | float | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
        precise_timestamps: bool = False,
    ) -> Page[Workflow]:
        """One page of workflows (iterate it to go on across pages).

        Filters: ``status``, ``task_queue``, ``ticket_id`` (``TKT-<n>``: those started for
        that ticket), ``name`` (the definition), ``trigger_type``, and the creation time
        range ``created_after`` / ``created_before`` (Unix seconds or aware datetimes).
        ``precise_timestamps`` gives every timestamp as float Unix seconds with the
        sub-second part.
        """
        listing = ep.workflows(
            status=status,
            task_queue=task_queue,
            ticket_id=ticket_id,
            name=name,
            trigger_type=trigger_type,
            created_after=created_after,
            created_before=created_before,
            precise_timestamps=precise_timestamps,
        )
        return self._page(
            listing,
            Workflow,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
        )

    def iter_workflows(
        self,
        *,
        status: str | None = None,
        task_queue: str | None = None,
        ticket_id: str | None = None,
        name: str | None = None,
        trigger_type: str | None = None,
        created_after: datetime | float | None = None,
        created_before: datetime | float | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        precise_timestamps: bool = False,
    ) -> Iterator[Workflow]:
        """Every workflow matching the filters (as in :meth:`list_workflows`), across pages;
        ``precise_timestamps``: float, sub-second timestamps."""
        listing = ep.workflows(
            status=status,
            task_queue=task_queue,
            ticket_id=ticket_id,
            name=name,
            trigger_type=trigger_type,
            created_after=created_after,
            created_before=created_before,
            precise_timestamps=precise_timestamps,
        )
        return self._iterate(listing, Workflow, page_size=page_size)

    def create_workflow(
        self,
        *,
        name: str,
        task_queue: str,
        trigger_type: str | None = None,
        input: Mapping[str, Any] | None = None,
        start_at: datetime | float | None = None,
        schedule: Mapping[str, Any] | None = None,
        time_scale: float | None = None,
        idempotency_key: str | None = None,
    ) -> Workflow:
        """Create a workflow of the defined workflow ``name``; it starts at once unless
        scheduled.

        A ``scheduled`` one starts at ``start_at`` (Unix seconds or an aware datetime), recurs
        on ``schedule`` (``{"cron": "0 9 * * MON-FRI"}`` or ``{"interval_s": 3600}``), or
        with neither is a draft that :meth:`start_workflow` starts; ``time_scale`` divides
        its timers and durations (default: the server's).
        """
        call = ep.create_workflow(
            name=name,
            task_queue=task_queue,
            trigger_type=trigger_type,
            input=input,
            start_at=start_at,
            schedule=schedule,
            time_scale=time_scale,
            idempotency_key=idempotency_key,
        )
        return self._call(call, Workflow)

    def start_workflow(self, workflow_id: str) -> Workflow:
        """Start a draft (a scheduled workflow created without a start time)."""
        return self._call(ep.start_workflow(workflow_id), Workflow)

    def get_workflow(self, workflow_id: str, *, precise_timestamps: bool = False) -> Workflow:
        """A workflow with its full timeline (``precise_timestamps``: float Unix seconds with
        the sub-second part, instead of whole seconds)."""
        call = ep.get_workflow(workflow_id, precise_timestamps=precise_timestamps)
        return self._call(call, Workflow)

    def get_workflow_status(
        self, workflow_id: str, *, precise_timestamps: bool = False
    ) -> WorkflowStatus:
        """A workflow's status summary (current step, steps completed / total, elapsed;
        ``precise_timestamps``: a float, sub-second ``started_at``)."""
        call = ep.get_workflow_status(workflow_id, precise_timestamps=precise_timestamps)
        return self._call(call, WorkflowStatus)

    def signal_workflow(
        self,
        workflow_id: str,
        *,
        signal_name: str,
        payload: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> SignalResult:
        """Send signal ``signal_name`` to a workflow; ``accepted`` says whether it was sent
        (durably) and otherwise ``reason`` why the workflow would not act on it."""
        call = ep.signal_workflow(
            workflow_id,
            signal_name=signal_name,
            payload=payload,
            idempotency_key=idempotency_key,
        )
        return self._call(call, SignalResult)

    def cancel_workflow(
        self,
        workflow_id: str,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> CancelResult:
        """Cancel a workflow (its compensations run; its status becomes failed)."""
        call = ep.cancel_workflow(workflow_id, reason=reason, idempotency_key=idempotency_key)
        return self._call(call, CancelResult)

    def pause_workflow(
        self,
        workflow_id: str,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> ControlResult:
        """Pause a running workflow (``reason`` goes to its timeline)."""
        call = ep.pause_workflow(workflow_id, reason=reason, idempotency_key=idempotency_key)
        return self._call(call, ControlResult)

    def resume_workflow(
        self,
        workflow_id: str,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> ControlResult:
        """Resume a paused workflow (``reason`` goes to its timeline)."""
        call = ep.resume_workflow(workflow_id, reason=reason, idempotency_key=idempotency_key)
        return self._call(call, ControlResult)

    # -- workflow definitions --------------------------------------------------------------

    def list_workflow_definitions(self) -> WorkflowDefinitionList:
        """The newest version of every defined workflow (``.data``)."""
        return self._call(ep.workflow_definitions(), WorkflowDefinitionList)

    def get_workflow_definition(
        self, name: str, *, version: int | None = None
    ) -> WorkflowDefinition:
        """A workflow definition: its newest version, or ``version``."""
        call = ep.get_workflow_definition(name, version=version)
        return self._call(call, WorkflowDefinition)

    def create_workflow_definition(
        self,
        *,
        name: str,
        task_queue: str,
        steps: Sequence[Mapping[str, Any]],
        description: str | None = None,
        category: str | None = None,
    ) -> WorkflowDefinition:
        """Add a workflow definition (admin): version 1 of ``name``, validated like the
        catalog's YAML; workflows and rules can start it at once."""
        call = ep.create_workflow_definition(
            name=name,
            task_queue=task_queue,
            steps=steps,
            description=description,
            category=category,
        )
        return self._call(call, WorkflowDefinition)

    def update_workflow_definition(
        self,
        name: str,
        *,
        task_queue: str,
        steps: Sequence[Mapping[str, Any]],
        description: str | None = None,
        category: str | None = None,
    ) -> WorkflowDefinition:
        """Store the next version of a definition (admin; a body equal to the newest version
        stores nothing and answers that version). Running workflows keep their version."""
        call = ep.update_workflow_definition(
            name,
            task_queue=task_queue,
            steps=steps,
            description=description,
            category=category,
        )
        return self._call(call, WorkflowDefinition)

    # -- automation rules ------------------------------------------------------------------

    def list_rules(
        self,
        *,
        trigger: str | None = None,
        enabled: bool | None = None,
        action_type: str | None = None,
        workflow_name: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> Page[Rule]:
        """One page of automation rules (iterate it to go on across pages), filtered by
        trigger, enabled state, an action's type and the workflow an action starts."""
        listing = ep.rules(
            trigger=trigger, enabled=enabled, action_type=action_type, workflow_name=workflow_name
        )
        return self._page(
            listing, Rule, limit=limit, starting_after=starting_after, ending_before=ending_before
        )

    def iter_rules(
        self,
        *,
        trigger: str | None = None,
        enabled: bool | None = None,
        action_type: str | None = None,
        workflow_name: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Rule]:
        """Every automation rule matching the filters (as in :meth:`list_rules`), across
        pages."""
        listing = ep.rules(
            trigger=trigger, enabled=enabled, action_type=action_type, workflow_name=workflow_name
        )
        return self._iterate(listing, Rule, page_size=page_size)

    def create_rule(
        self,
        *,
        name: str,
        trigger: str,
        action: Mapping[str, Any] | None = None,
        actions: Sequence[Mapping[str, Any]] | None = None,
        conditions: Mapping[str, Any] | None = None,
        enabled: bool | None = None,
        schedule_interval_s: float | None = None,
        schedule_cron: str | None = None,
        extra: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Rule:
        """Create an automation rule with ``action`` or ``actions`` (run in order).

        A scheduled rule runs every ``schedule_interval_s`` or on ``schedule_cron`` (UTC);
        ``extra``: further body fields, sent as given (``webhook_url``, say).
        """
        call = ep.create_rule(
            name=name,
            trigger=trigger,
            action=action,
            actions=actions,
            conditions=conditions,
            enabled=enabled,
            schedule_interval_s=schedule_interval_s,
            schedule_cron=schedule_cron,
            extra=extra,
            idempotency_key=idempotency_key,
        )
        return self._call(call, Rule)

    def get_rule(self, rule_id: str) -> Rule:
        """An automation rule."""
        return self._call(ep.get_rule(rule_id), Rule)

    def update_rule(
        self,
        rule_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        trigger: str | NotGiven = NOT_GIVEN,
        conditions: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
        action: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        actions: Sequence[Mapping[str, Any]] | NotGiven = NOT_GIVEN,
        enabled: bool | NotGiven = NOT_GIVEN,
        schedule_interval_s: float | NotGiven | None = NOT_GIVEN,
        schedule_cron: str | NotGiven | None = NOT_GIVEN,
        extra: Mapping[str, Any] | None = None,
    ) -> Rule:
        """Change the given fields of a rule (PATCH); fields not passed are left alone."""
        call = ep.update_rule(
            rule_id,
            name=name,
            trigger=trigger,
            conditions=conditions,
            action=action,
            actions=actions,
            enabled=enabled,
            schedule_interval_s=schedule_interval_s,
            schedule_cron=schedule_cron,
            extra=extra,
        )
        return self._call(call, Rule)

    def delete_rule(self, rule_id: str) -> Deleted | None:
        """Delete a rule (admin); returns the API's answer (None when it sends no body)."""
        response = self.send(self._build_call(ep.delete_rule(rule_id)))
        answer = self._decode_optional_object(response)
        return None if answer is None else self._validate(response, Deleted, answer)

    def toggle_rule(self, rule_id: str) -> ToggleResult:
        """Flip a rule's enabled state.

        Not retried once it may have reached the server: the API does not deduplicate
        toggles, and a second one would undo the first.
        """
        return self._call(ep.toggle_rule(rule_id), ToggleResult)

    def rotate_rule_secret(self, rule_id: str) -> SecretRotated:
        """A new signing secret for a webhook rule (shown only in this answer)."""
        return self._call(ep.rotate_rule_secret(rule_id), SecretRotated)

    def list_rule_executions(
        self,
        rule_id: str,
        *,
        ticket_id: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
    ) -> Page[RuleExecution]:
        """One page of a rule's executions (its firings and what they produced), optionally
        only those on ticket ``ticket_id``; this list pages forwards only."""
        return self._page(
            ep.rule_executions(rule_id, ticket_id=ticket_id),
            RuleExecution,
            limit=limit,
            starting_after=starting_after,
            ending_before=None,
        )

    def iter_rule_executions(
        self,
        rule_id: str,
        *,
        ticket_id: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[RuleExecution]:
        """Every execution of a rule (optionally only those on one ticket), across pages."""
        listing = ep.rule_executions(rule_id, ticket_id=ticket_id)
        return self._iterate(listing, RuleExecution, page_size=page_size)

    def test_rule(
        self,
        rule_id: str,
        *,
        ticket_id: str | None = None,
        ticket: Mapping[str, Any] | None = None,
        previous: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> DryRunResult:
        """Dry-run a rule (nothing is done): would it fire, why, and what would it do.

        On a stored ticket (``ticket_id``, fields overridden by ``ticket``) or a ``ticket``
        given inline; ``previous`` is the ticket before the change (on_ticket_updated rules),
        ``payload`` the request body (webhook rules).
        """
        call = ep.dry_run_rule(
            rule_id,
            ticket_id=ticket_id,
            ticket=ticket,
            previous=previous,
            payload=payload,
        )
        return self._call(call, DryRunResult)

    # -- tickets ---------------------------------------------------------------------------

    def list_tickets(
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
    ) -> Page[Ticket]:
        """One page of tickets (iterate it to go on across pages)."""
        listing = ep.tickets(
            status=status,
            priority=priority,
            category=category,
            assignee=assignee,
            requester=requester,
        )
        return self._page(
            listing,
            Ticket,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
        )

    def iter_tickets(
        self,
        *,
        status: str | None = None,
        priority: str | None = None,
        category: str | None = None,
        assignee: str | None = None,
        requester: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Ticket]:
        """Every ticket matching the filters, across pages."""
        listing = ep.tickets(
            status=status,
            priority=priority,
            category=category,
            assignee=assignee,
            requester=requester,
        )
        return self._iterate(listing, Ticket, page_size=page_size)

    def create_ticket(
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
    ) -> Ticket:
        """Create a ticket (the rules of trigger on_ticket_created are evaluated on it)."""
        call = ep.create_ticket(
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
        return self._call(call, Ticket)

    def get_ticket(self, ticket_id: str) -> Ticket:
        """A ticket."""
        return self._call(ep.get_ticket(ticket_id), Ticket)

    def update_ticket(
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
    ) -> Ticket:
        """Change the given fields of a ticket (PATCH; ``None`` clears a field)."""
        call = ep.update_ticket(
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
        return self._call(call, Ticket)

    # -- jobs ------------------------------------------------------------------------------

    def get_job_queues(self) -> QueueList:
        """Job counts per state for each background queue (``.data``)."""
        return self._call(ep.get_job_queues(), QueueList)
