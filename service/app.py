"""The FastAPI app factory: lifespan resources, error handlers, routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from service.api.body_limits import RequestBodyMiddleware
from service.api.errors import ErrorBody, install_error_handlers
from service.api.main import api_router
from service.api.openapi import install_openapi
from service.heap import freeze_long_lived
from service.observability.health import health_router
from service.observability.logging import RequestIdMiddleware, configure_logging
from service.observability.metrics import MetricsMiddleware
from service.observability.tracing import api_telemetry, configure_tracing
from service.settings import Settings, get_settings
from service.state import open_resources

__all__ = ["create_app", "create_served_app", "create_worker_app"]


def _operation_id(route: APIRoute) -> str:
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


def create_app(settings: Settings | None = None, *, freeze_heap: bool = False) -> FastAPI:
    """Build the API. Resources are opened in the lifespan, so importing is cheap.

    ``freeze_heap``: once started, :func:`~service.heap.freeze_long_lived` (for the process
    that serves; an app built inside another program, a test for one, leaves that program's
    heap alone)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Temporal's client is lazy: the API starts (and answers 503) while it comes up.
        async with open_resources(settings) as resources:
            app.state.protocol = resources
            if freeze_heap:
                freeze_long_lived()
            yield

    app = FastAPI(
        title="Protocol — Workflows & Automation API",
        version="1.0.0",
        description=(
            "Durable ITSM workflows on Temporal, automation rules on ITSM events and "
            "background jobs on BullMQ."
        ),
        lifespan=lifespan,
        telemetry=api_telemetry(),
        generate_unique_id_function=_operation_id,
        responses={
            400: {"model": ErrorBody, "description": "invalid_request"},
            401: {"model": ErrorBody, "description": "authentication_error"},
            403: {"model": ErrorBody, "description": "permission_error"},
        },
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(RequestBodyMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)  # times every answer, 413s included
    app.add_middleware(RequestIdMiddleware)  # outermost: every log line of a request has its id
    app.include_router(api_router)
    app.include_router(health_router)

    return app


def create_served_app() -> FastAPI:
    """The API as ``protocol-lab serve`` runs it in one process: its heap frozen once started."""
    return create_app(freeze_heap=True)


def create_worker_app() -> FastAPI:
    """The API in one of several worker processes of ``protocol-lab serve --workers``: a worker
    starts as a new interpreter, so it sets up the service's logging and tracing (as ``serve``
    does in its own process) before building the app."""
    settings = get_settings()
    configure_logging(settings)
    configure_tracing(settings, "api")
    return create_app(settings, freeze_heap=True)
