"""HTTP client of the protocol-lab Workflows & Automation API, synchronous and asynchronous.

::

    from protocol_lab.client import Client

    with Client(base_url="http://localhost:3000", token="...") as api:
        wf = api.create_workflow(name="VPN Access Revocation", task_queue="itsm-network")
        wf.id, wf.status, wf.timeline  # a typed Workflow
        wf.raw  # the JSON object exactly as the API sent it
        for workflow in api.iter_workflows(status="active"):
            ...

``AsyncClient`` is the twin with coroutines (``await api.get_workflow(...)``) and async
iterators (``async for w in api.aiter_workflows()``); ``Client`` is generated from it
(``protocol_lab._client._unasync``), so the two cannot drift apart.

Methods return pydantic models of the API's OpenAPI schemas (:class:`Workflow`,
:class:`WorkflowStatus`, :class:`SignalResult`, :class:`Rule`, :class:`WorkflowDefinition`,
:class:`Ticket`, ...; all :class:`ApiModel`), each keeping the JSON as received in ``.raw``.
Lists come one page at a time (``list_*``: a :class:`Page` / :class:`AsyncPage` of models
with ``data``, ``has_more`` and ``raw``; iterating a page goes on across the next pages) or as
iterators over every item (``iter_*`` / ``aiter_*``, paging with ``starting_after``).
``request`` and ``paginate`` / ``apaginate`` reach any path and return plain JSON. Reading an
answer like a dict (``wf["id"]``), as before the models, still works with a
``DeprecationWarning``.

Every POST the API deduplicates carries an ``Idempotency-Key`` (the caller's or a generated
one, the same on every attempt), so connection failures, timeouts, 429 and 5xx are retried
safely with capped exponential backoff and jitter, honouring ``Retry-After``
(:class:`RetryPolicy`); requests without one (PATCH, rule toggles, secret rotation, draft
starts, definition creates) are retried only when they cannot have reached the server.
Errors form the tree drawn in ``protocol_lab._client._errors``, rooted at :class:`ApiError`
(a ``ProtocolLabError``); an answer that does not have its model's shape is an
:class:`ApiDecodeError`.
"""

from __future__ import annotations

from protocol_lab._client import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    NOT_GIVEN,
    USE_CLIENT_DEFAULT,
    Action,
    ApiDecodeError,
    ApiError,
    ApiModel,
    ApiRequestError,
    ApiServerError,
    ApiStatusError,
    ApiTimeoutError,
    AsyncClient,
    AsyncPage,
    AuthenticationError,
    CancelResult,
    Client,
    ConflictError,
    ControlResult,
    Deleted,
    DryRunResult,
    InvalidRequestError,
    NotFoundError,
    NotGiven,
    Page,
    PageData,
    PaginationError,
    PermissionDeniedError,
    QueueCounts,
    QueueList,
    RateLimitError,
    RetryPolicy,
    Rule,
    RuleExecution,
    SecretRotated,
    SendNotificationAction,
    SignalResult,
    StartWorkflowAction,
    Ticket,
    TimelineEntry,
    ToggleResult,
    UpdateFieldAction,
    UseClientDefault,
    Workflow,
    WorkflowDefinition,
    WorkflowDefinitionList,
    WorkflowState,
    WorkflowStatus,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "NOT_GIVEN",
    "USE_CLIENT_DEFAULT",
    "Action",
    "ApiDecodeError",
    "ApiError",
    "ApiModel",
    "ApiRequestError",
    "ApiServerError",
    "ApiStatusError",
    "ApiTimeoutError",
    "AsyncClient",
    "AsyncPage",
    "AuthenticationError",
    "CancelResult",
    "Client",
    "ConflictError",
    "ControlResult",
    "Deleted",
    "DryRunResult",
    "InvalidRequestError",
    "NotFoundError",
    "NotGiven",
    "Page",
    "PageData",
    "PaginationError",
    "PermissionDeniedError",
    "QueueCounts",
    "QueueList",
    "RateLimitError",
    "RetryPolicy",
    "Rule",
    "RuleExecution",
    "SecretRotated",
    "SendNotificationAction",
    "SignalResult",
    "StartWorkflowAction",
    "Ticket",
    "TimelineEntry",
    "ToggleResult",
    "UpdateFieldAction",
    "UseClientDefault",
    "Workflow",
    "WorkflowDefinition",
    "WorkflowDefinitionList",
    "WorkflowState",
    "WorkflowStatus",
]
