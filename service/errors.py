"""What the service layer raises when it cannot carry out a request: kinds of failure, no HTTP.

The layers below the routes (``service/executions``, ``service/automation``, ``service/jobs``,
``service/store``) raise these; ``service/api/errors.py`` alone turns each kind into a status
code and the API's error body (400, 404, 409, 503). The rule engine reads the same kinds: an
unavailable dependency is retried, anything else is a request that cannot succeed.
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "InvalidRequestError",
    "NotFoundError",
    "ServiceError",
    "UnavailableError",
]


class ServiceError(Exception):
    """A request the service cannot carry out; ``message`` says why, for the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(ServiceError):
    """The request itself is wrong: a bad value, an unknown name (400)."""


class NotFoundError(ServiceError):
    """What the request names does not exist (404)."""


class ConflictError(ServiceError):
    """The request does not fit the state it meets: closed, a draft, a key reused (409)."""


class UnavailableError(ServiceError):
    """A dependency (Temporal, the store) is down or slow; the same request can be retried
    (503)."""
