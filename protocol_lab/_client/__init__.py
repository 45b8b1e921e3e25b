"""Implementation of :mod:`protocol_lab.client`; import from there, not from here.

``_base`` (pure logic shared by the twins), ``_sync`` / ``_async`` (the twins, I/O only),
``_endpoints`` (request descriptions), ``_pagination`` and ``_retry`` (sans-I/O flows),
``_errors`` (the error tree).
"""

from __future__ import annotations

from protocol_lab._client._async import AsyncClient
from protocol_lab._client._base import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    USE_CLIENT_DEFAULT,
    UseClientDefault,
)
from protocol_lab._client._endpoints import NOT_GIVEN, NotGiven
from protocol_lab._client._errors import (
    ApiDecodeError,
    ApiError,
    ApiRequestError,
    ApiServerError,
    ApiStatusError,
    ApiTimeoutError,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from protocol_lab._client._pagination import PaginationError
from protocol_lab._client._retry import RetryPolicy
from protocol_lab._client._sync import Client

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
