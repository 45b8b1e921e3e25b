"""The error tree of the protocol-lab API client.

Every error the client raises derives from :class:`ApiError`, itself a
:class:`~protocol_lab.domain.ProtocolLabError`, so ``except ProtocolLabError`` catches all of them::

    ProtocolLabError                      (protocol_lab.domain)
     └── ApiError                         anything that went wrong talking to the API
          ├── ApiRequestError             no usable response: connect, read, write, protocol
          │    │                          failure (.request; the httpx error is __cause__)
          │    └── ApiTimeoutError        a connect / read / write / pool timeout
          ├── ApiDecodeError              a 2xx response whose body is not the expected JSON
          │                               (.request, .response)
          └── ApiStatusError              the API answered 4xx / 5xx (.request, .response,
               │                          .status_code, .type, .message, .body)
               ├── InvalidRequestError    400 / 422  invalid_request
               ├── AuthenticationError    401        authentication_error
               ├── PermissionDeniedError  403        permission_error
               ├── NotFoundError          404        not_found
               ├── ConflictError          409        conflict
               ├── RateLimitError         429        rate_limited
               └── ApiServerError         5xx        api_error

The class of a status error is chosen from the ``type`` field of the JSON error body when it
is one of the API's types, otherwise from the status code; any other 4xx is a plain
``ApiStatusError``.
"""

from __future__ import annotations

from typing import Any, Final

import httpx

from protocol_lab.domain.errors import ProtocolLabError

__all__ = [
    "ApiDecodeError",
    "ApiError",
    "ApiRequestError",
    "ApiServerError",
    "ApiStatusError",
    "ApiTimeoutError",
    "AuthenticationError",
    "ConflictError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "request_error_from",
    "status_error_from",
]


class ApiError(ProtocolLabError):
    """Root of every error raised by the API client."""


class ApiRequestError(ApiError):
    """The request got no usable response (connection, timeout, protocol failure).

    ``request`` is the request that failed; the underlying ``httpx`` error is ``__cause__``.
    """

    def __init__(self, message: str, *, request: httpx.Request) -> None:
        super().__init__(message)
        self.request = request


class ApiTimeoutError(ApiRequestError):
    """The request timed out (connect, read, write or waiting for a pooled connection)."""


class ApiDecodeError(ApiError):
    """A successful response whose body is not the JSON the API promises."""

    def __init__(self, message: str, *, request: httpx.Request, response: httpx.Response) -> None:
        super().__init__(message)
        self.request = request
        self.response = response


class ApiStatusError(ApiError):
    """The API answered with an error status.

    Carries the ``request`` and ``response``, the ``status_code``, the API's error ``type`` and
    ``message`` (from the JSON body ``{"type", "message"}``; ``type`` is None when the body
    has none) and the decoded ``body`` (None when it is not JSON).
    """

    def __init__(
        self,
        message: str,
        *,
        request: httpx.Request,
        response: httpx.Response,
        type: str | None,
        body: Any,
    ) -> None:
        super().__init__(f"{response.status_code} {type or 'error'}: {message}")
        self.request = request
        self.response = response
        self.status_code = response.status_code
        self.type = type
        self.message = message
        self.body = body


class InvalidRequestError(ApiStatusError):
    """400 ``invalid_request``: the request is malformed or a field is invalid."""


class AuthenticationError(ApiStatusError):
    """401 ``authentication_error``: no token, or the token is not valid."""


class PermissionDeniedError(ApiStatusError):
    """403 ``permission_error``: the token's scope does not allow this call."""


class NotFoundError(ApiStatusError):
    """404 ``not_found``: no such workflow, rule, ticket or route."""


class ConflictError(ApiStatusError):
    """409 ``conflict``: the resource's state forbids the call, or an idempotency clash."""


class RateLimitError(ApiStatusError):
    """429: too many requests (retried automatically before this is raised)."""


class ApiServerError(ApiStatusError):
    """5xx ``api_error``: the service failed (retried automatically where safe)."""


_BY_TYPE: Final[dict[str, type[ApiStatusError]]] = {
    "invalid_request": InvalidRequestError,
    "invalid_request_error": InvalidRequestError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "rate_limit_error": RateLimitError,
    "rate_limited": RateLimitError,
    "api_error": ApiServerError,
}

_BY_STATUS: Final[dict[int, type[ApiStatusError]]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidRequestError,
    429: RateLimitError,
}


def _error_class(status_code: int, type_: str | None) -> type[ApiStatusError]:
    if type_ is not None and type_ in _BY_TYPE:
        return _BY_TYPE[type_]
    if status_code >= 500:
        return ApiServerError
    return _BY_STATUS.get(status_code, ApiStatusError)


def status_error_from(response: httpx.Response) -> ApiStatusError:
    """Build the status error matching an error ``response`` (which must have been read)."""
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = None
    type_: str | None = None
    message: str | None = None
    if isinstance(body, dict):
        raw_type = body.get("type")
        type_ = raw_type if isinstance(raw_type, str) else None
        raw_message = body.get("message", body.get("detail"))
        if isinstance(raw_message, str):
            message = raw_message
        elif raw_message is not None:
            message = str(raw_message)
    if message is None:
        message = response.text.strip() or response.reason_phrase or "no message"
    cls = _error_class(response.status_code, type_)
    return cls(message, request=response.request, response=response, type=type_, body=body)


def request_error_from(exc: httpx.RequestError, *, request: httpx.Request) -> ApiRequestError:
    """Map an httpx request error to ``ApiTimeoutError`` or ``ApiRequestError``."""
    cls = ApiTimeoutError if isinstance(exc, httpx.TimeoutException) else ApiRequestError
    detail = str(exc) or type(exc).__name__
    return cls(f"{request.method} {request.url}: {detail}", request=request)
