"""API errors: JSON ``{"type", "message"}`` with the right status, never a traceback.

Routers raise :class:`ApiError`; the layers below them raise the kinds of
:mod:`service.errors`, which this module alone maps to statuses (:func:`status_of`).

Types: invalid_request (400), authentication_error (401), permission_error (403),
not_found (404), conflict (409), rate_limited (429), api_error (5xx).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from protocol_lab.domain import ProtocolLabError
from service.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ServiceError,
    UnavailableError,
)

__all__ = [
    "ApiError",
    "ErrorBody",
    "install_error_handlers",
]

log = logging.getLogger("service.api")

_TYPE_BY_STATUS = {
    400: "invalid_request",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found",
    405: "invalid_request",
    409: "conflict",
    413: "invalid_request",
    415: "invalid_request",
    422: "invalid_request",
    429: "rate_limited",
}


class ErrorBody(BaseModel):
    """The body of every error response."""

    type: str
    message: str


class ApiError(Exception):
    """Raise from handlers and services to answer with an error of the given status."""

    def __init__(self, status_code: int, message: str, *, type: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.type = type or _TYPE_BY_STATUS.get(status_code, "api_error")
        self.message = message

    @classmethod
    def invalid(cls, message: str) -> ApiError:
        """400 invalid_request."""
        return cls(400, message)

    @classmethod
    def not_found(cls, message: str) -> ApiError:
        """404 not_found."""
        return cls(404, message)

    @classmethod
    def conflict(cls, message: str) -> ApiError:
        """409 conflict."""
        return cls(409, message)

    @classmethod
    def unavailable(cls, message: str) -> ApiError:
        """503 api_error: a dependency is down; the request can be retried."""
        return cls(503, message, type="api_error")


_STATUS_BY_ERROR: dict[type[ServiceError], int] = {
    InvalidRequestError: 400,
    NotFoundError: 404,
    ConflictError: 409,
    UnavailableError: 503,
}


def status_of(error: ServiceError) -> int:
    """The status code the API answers a service error with (500 for a kind it does not know)."""
    for kind in type(error).__mro__:
        if kind in _STATUS_BY_ERROR:
            return _STATUS_BY_ERROR[kind]  # type: ignore[index]
    return 500


def _body(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"type": type_, "message": message}, status_code=status, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to the JSON error shape."""

    @app.exception_handler(ApiError)
    async def _problem(_: Request, exc: ApiError) -> JSONResponse:
        return _body(exc.status_code, exc.type, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _body(400, "invalid_request", _describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = _TYPE_BY_STATUS.get(exc.status_code, "api_error")
        headers: dict[str, Any] | None = getattr(exc, "headers", None)
        return _body(exc.status_code, type_, str(exc.detail), headers)

    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        status = status_of(exc)
        return _body(status, _TYPE_BY_STATUS.get(status, "api_error"), exc.message)

    @app.exception_handler(ProtocolLabError)
    async def _domain(_: Request, exc: ProtocolLabError) -> JSONResponse:
        return _body(400, "invalid_request", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _body(500, "api_error", "internal error; the request was not completed")
