"""One logging set-up for every process of the service (API, worker, ``protocol-lab up``).

Development: readable text lines. Production (``ENVIRONMENT=production``): one JSON object per
line. Either way each line carries the request id of the API request it belongs to (taken from
``X-Request-ID`` when the caller sends a sane one, else made here, and echoed in the answer) and
the OpenTelemetry trace id when a span is current. uvicorn's own loggers, its access log
included, go through the same handler.

Nothing secret reaches a line: the formatter replaces, in the whole text of every line (message,
arguments, traceback), the secrets the settings hold (API tokens, signing and integration keys,
the Temporal API key, passwords of the database and Redis URLs) and anything shaped like a
secret (``Bearer ...``, webhook secrets ``whsec_...``, ``token=`` / ``secret=`` / ``password=``
values, passwords in URLs) with ``[redacted]``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = [
    "REDACTED",
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "RequestIdMiddleware",
    "TextFormatter",
    "configure_logging",
    "current_request_id",
]

REDACTED: Final = "[redacted]"
REQUEST_ID_HEADER: Final = "x-request-id"
_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "protocol_request_id", default=None
)
_SANE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_SECRET_SHAPES: Final = (
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(r"whsec_[A-Za-z0-9_\-]+"),
    re.compile(
        r"(?i)((?:token|secret|password|passwd|api[_-]?key|signature)[\"']?\s*[=:]\s*[\"']?)"
        r"[^\s\"'&,;]+"
    ),
    re.compile(r"(://[^/\s:@]*:)[^@\s/]+(@)"),
)
# uvicorn's loggers keep handlers of their own unless told otherwise.
_UVICORN_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access")


def current_request_id() -> str | None:
    """The id of the API request this code runs for (None outside a request)."""
    return _REQUEST_ID.get()


def _trace_id() -> str | None:
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class _Redactor:
    """Replaces the known secrets and anything shaped like a secret in a text."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.known = sorted({k for k in known if len(k) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.known:
            text = text.replace(secret, REDACTED)
        for shape in _SECRET_SHAPES:
            text = shape.sub(_keep_prefix, text)
        return text


def _keep_prefix(match: re.Match[str]) -> str:
    groups = [g for g in match.groups() if g is not None]
    if len(groups) == 2:  # a URL: keep "://user:" and "@"
        return f"{groups[0]}{REDACTED}{groups[1]}"
    return f"{groups[0]}{REDACTED}" if groups else REDACTED


class _ContextFilter(logging.Filter):
    """Stamps each record with the request id and trace id of the context it was made in."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()  # type: ignore[attr-defined]
        record.trace_id = _trace_id()  # type: ignore[attr-defined]
        return True


class TextFormatter(logging.Formatter):
    """``2026-11-30 09:00:00.123 INFO service.x [req=... trace=...] message`` (redacted)."""

    def __init__(self, redact: _Redactor) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)s %(name)s%(context)s %(message)s")
        self.datefmt = "%Y-%m-%d %H:%M:%S"
        self.converter = time.gmtime
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        """The record as one redacted text line (a traceback follows on its own lines)."""
        parts = []
        request_id, trace_id = (
            getattr(record, "request_id", None),
            getattr(record, "trace_id", None),
        )
        if request_id:
            parts.append(f"req={request_id}")
        if trace_id:
            parts.append(f"trace={trace_id}")
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return self.redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id,
    trace_id, and the traceback as ``exception`` (all redacted)."""

    def __init__(self, redact: _Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        """The record as one redacted JSON line."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        body: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        for key in ("request_id", "trace_id"):
            value = getattr(record, key, None)
            if value:
                body[key] = value
        if record.exc_info:
            body["exception"] = self.redact(self.formatException(record.exc_info))
        elif record.exc_text:
            body["exception"] = self.redact(record.exc_text)
        return json.dumps(body, ensure_ascii=False)


def _known_secrets(settings: Settings) -> list[str]:
    """The API tokens, every secret of the settings and the passwords in its URLs."""
    known = [*settings.api_tokens, *(s.get_secret_value() for s in settings.secrets().values())]
    for url in (settings.database_url, settings.redis_url):
        password = re.search(r"://[^/\s:@]*:([^@\s/]+)@", url or "")
        if password:
            known.append(password.group(1))
    return known


def configure_logging(
    settings: Settings, *, level: int | str = logging.INFO, stream: IO[str] | None = None
) -> logging.Handler:
    """Send every logger of this process to one handler on ``stream`` (stderr by default): text
    in development, JSON lines in production, redacted, with request and trace ids. Replaces
    what an earlier call (or uvicorn) installed; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    redact = _Redactor(_known_secrets(settings))
    production = settings.environment == "production"
    handler.setFormatter(JsonFormatter(redact) if production else TextFormatter(redact))
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    # Alembic names each plugin it loads at INFO; its migration lines stay.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(logging.WARNING, root.level))
    return handler


class RequestIdMiddleware:
    """Gives every request an id (the caller's ``X-Request-ID`` if it is 1-64 characters of
    ``[A-Za-z0-9._:-]``, else a new one) for the log lines made while it is served, and answers
    with it in ``X-Request-ID``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request with its id in the logging context."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = (
            dict(scope.get("headers", [])).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        )
        request_id = given if _SANE_REQUEST_ID.fullmatch(given) else "req_" + secrets.token_hex(8)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        token = _REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, sending)
        finally:
            _REQUEST_ID.reset(token)
