"""HTTP client of the protocol-lab Workflows & Automation API, synchronous and asynchronous.

::

    from protocol_lab.client import Client

    with Client(base_url="http://localhost:3000", token="...") as api:
        wf = api.create_workflow(name="VPN Access Revocation", task_queue="itsm-network")
        for workflow in api.iter_workflows(status="active"):
            ...

``AsyncClient`` is the twin with coroutines (``await api.get_workflow(...)``) and async
iterators (``async for w in api.aiter_workflows()``). Methods return the API's JSON as plain
dicts. Lists come one page at a time (``list_*``: ``{"has_more", "data"}``) or as iterators
over every item (``iter_*`` / ``aiter_*``, paging with ``starting_after``). Every POST the API
deduplicates carries an ``Idempotency-Key`` (the caller's or a generated one, the same on every
attempt), so connection failures, timeouts, 429 and 5xx are retried safely with capped
exponential backoff and jitter, honouring ``Retry-After`` (:class:`RetryPolicy`); requests
without one (PATCH, rule toggles) are retried only when they cannot have reached the server.
Errors form the tree drawn in ``protocol_lab._client._errors``, rooted at :class:`ApiError`
(a ``ProtocolLabError``).
"""

from __future__ import annotations

from protocol_lab._client import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    NOT_GIVEN,
    USE_CLIENT_DEFAULT,
    ApiDecodeError,
    ApiError,
    ApiRequestError,
    ApiServerError,
    ApiStatusError,
    ApiTimeoutError,
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    NotGiven,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    UseClientDefault,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "NOT_GIVEN",
    "USE_CLIENT_DEFAULT",
    "ApiDecodeError",
    "ApiError",
    "ApiRequestError",
    "ApiServerError",
    "ApiStatusError",
    "ApiTimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ConflictError",
    "InvalidRequestError",
    "NotFoundError",
    "NotGiven",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitError",
    "RetryPolicy",
    "UseClientDefault",
]
