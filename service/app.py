"""The FastAPI app factory: lifespan resources, error handlers, routers."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from protocol_lab.domain import load_catalog
from service.api.errors import ErrorBody, install_error_handlers
from service.api.main import api_router
from service.jobs.producer import JobProducer
from service.settings import Settings, get_settings
from service.state import AppState
from service.store.db import create_schema, make_engine, make_sessionmaker
from service.temporal.client import connect

__all__ = ["LineContinuationMiddleware", "create_app"]

_CONTINUATION = re.compile(rb"\\\r?\n")


class LineContinuationMiddleware:
    """Accept JSON bodies typed with shell line continuations, as the API page's curl examples
    are (``-d '{\\`` newline ``"name": ...,\\`` ...). A backslash before a line break is never
    valid JSON, so a body is rewritten only when it does not parse as sent and parses without
    those backslashes; every other body reaches the app untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if _CONTINUATION.search(body):
            body, scope = _repaired(body, scope)
        await self.app(
            scope,
            _replay([{"type": "http.request", "body": body, "more_body": False}], receive),
            send,
        )


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


def _operation_id(route: APIRoute) -> str:
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API. Resources are opened in the lifespan, so importing is cheap."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.database_url is None:
            settings.state_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database_url or settings.sqlite_url)
        await create_schema(engine)
        # lazy: the API starts (and answers 503) even while Temporal is still coming up.
        temporal = await connect(settings, lazy=True)
        jobs = JobProducer(settings.redis_url or "redis://127.0.0.1:6379/0")
        app.state.protocol = AppState(
            settings=settings,
            engine=engine,
            sessionmaker=make_sessionmaker(engine),
            temporal=temporal,
            jobs=jobs,
            catalog=load_catalog(),
        )
        try:
            yield
        finally:
            await jobs.close()
            await engine.dispose()

    app = FastAPI(
        title="Protocol — Workflows & Automation API",
        version="1.0.0",
        description=(
            "Durable ITSM workflows on Temporal, automation rules on ITSM events and "
            "background jobs on BullMQ."
        ),
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        responses={
            400: {"model": ErrorBody, "description": "invalid_request"},
            401: {"model": ErrorBody, "description": "authentication_error"},
            403: {"model": ErrorBody, "description": "permission_error"},
        },
    )
    install_error_handlers(app)
    app.add_middleware(LineContinuationMiddleware)
    app.include_router(api_router)

    @app.get("/healthz", tags=["health"], include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
