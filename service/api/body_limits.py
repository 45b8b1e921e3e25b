"""Request bodies, bounded and repaired before any handler (or authentication) sees them.

- Size: a body announcing more than ``max_body_bytes`` gets 413 before a byte is read; a body
  streamed without a length is counted as it arrives and refused once past the limit, so no
  more than the limit is ever held in memory.
- Nesting: a body that is JSON (it starts with ``[`` or ``{``, whatever its content type says)
  nested deeper than :data:`MAX_JSON_DEPTH` gets 400, before a parser recurses into it.
- Shell line continuations: the API page's curl examples type JSON bodies over several lines
  (``-d '{\\`` newline ``"name": ...,\\`` ...). A backslash before a line break is never valid
  JSON, so a body is rewritten only when it does not parse as sent and parses without those
  backslashes; every other body reaches the app untouched.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import anyio.to_thread
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_JSON_DEPTH", "RequestBodyMiddleware", "json_too_deep"]

MAX_JSON_DEPTH: Final = 32

_CONTINUATION: Final = re.compile(rb"\\\r?\n")
# A JSON string; an unterminated one runs to the end of the body, so every byte is looked at once.
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
# Objects and arrays nest alike: both become square brackets, and everything else goes.
_BRACKETS_ONLY: Final = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_JSON_START: Final = re.compile(rb"\s*[\[{]")
_INLINE_SCAN_BYTES: Final = 64 * 1024
_REPAIRED_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``body`` nests arrays/objects more than ``limit`` deep (brackets inside strings
    do not count).

    Each round deletes every innermost ``[]`` pair; a pair survives round k only when k levels
    nest inside it. So a pair left after ``limit`` rounds means deeper nesting. Every round is one
    pass in C over what is left, and at most ``limit`` rounds run, whatever the body.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", body).translate(_BRACKETS_ONLY, _NOT_BRACKETS)
    for _ in range(limit):
        inner = brackets.replace(b"[]", b"")
        if inner == brackets:
            return False
        brackets = inner
    return b"[]" in brackets


class _BodyTooLargeError(Exception):
    pass


class RequestBodyMiddleware:
    """Bound every request body in size and JSON nesting; repair curl line continuations."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                message = "Content-Length must be a number"
                await _refuse(scope, receive, send, 400, message, unread=True)
                return
            if int(declared) > self.max_body_bytes:
                await self._refuse_too_large(scope, receive, send)
                return
        try:
            messages = await self._read(receive)
        except _BodyTooLargeError:
            await self._refuse_too_large(scope, receive, send)
            return
        last = messages[-1]
        if last["type"] != "http.request":
            # The client left: let the app see the disconnect as it would have.
            await self.app(scope, _replay(messages, receive), send)
            return
        body = b"".join(m.get("body", b"") for m in messages)
        if _JSON_START.match(body) and await _too_deep(body):
            message = f"JSON body nested too deeply (more than {MAX_JSON_DEPTH} levels)"
            await _refuse(scope, receive, send, 400, message)
            return
        if scope["method"] in _REPAIRED_METHODS and _CONTINUATION.search(body):
            body, scope = _repaired(body, scope)
        replay: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
        await self.app(scope, _replay(replay, receive), send)

    async def _read(self, receive: Receive) -> list[Message]:
        """The request's body messages, up to the limit (the last one ends it or is not a body
        message)."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                raise _BodyTooLargeError
            if not message.get("more_body", False):
                return messages

    async def _refuse_too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body too large: the limit is {self.max_body_bytes} bytes"
        await _refuse(scope, receive, send, 413, message, unread=True)


async def _too_deep(body: bytes) -> bool:
    if len(body) <= _INLINE_SCAN_BYTES:
        return json_too_deep(body)
    # A scan of a large body takes a few milliseconds: not on the event loop.
    return await anyio.to_thread.run_sync(json_too_deep, body)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).strip()
    return None


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, message: str, *, unread: bool = False
) -> None:
    # A body left unread cannot be skipped to reach a next request on the same connection.
    response = JSONResponse(
        {"type": "invalid_request", "message": message},
        status_code=status,
        headers={"Connection": "close"} if unread else None,
    )
    await response(scope, receive, send)


def _repaired(body: bytes, scope: Scope) -> tuple[bytes, Scope]:
    try:
        json.loads(body)
        return body, scope
    except ValueError:
        pass
    fixed = _CONTINUATION.sub(b"\n", body)
    try:
        json.loads(fixed)
    except ValueError:
        return body, scope
    headers: list[tuple[bytes, bytes]] = [
        (k, str(len(fixed)).encode() if k.lower() == b"content-length" else v)
        for k, v in scope.get("headers", [])
    ]
    return fixed, {**scope, "headers": headers}


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Any:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
