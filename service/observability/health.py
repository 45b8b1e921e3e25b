"""Liveness, readiness and metrics routes (outside ``/v1``, without authentication: they hold
no data of the service, and probes and scrapers carry no tokens)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service.observability.metrics import CONTENT_TYPE_LATEST, render_metrics
from service.observability.readiness import check_readiness
from service.state import Resources

__all__ = ["health_router"]

health_router = APIRouter(tags=["health"], include_in_schema=False)


def _state(request: Request) -> Resources:
    state = request.app.state.protocol
    assert isinstance(state, Resources)
    return state


@health_router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@health_router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when the database, Temporal and Redis each answer within 2 s; otherwise
    503 naming each part that is down."""
    checks = await check_readiness(_state(request))
    down = {name: answer for name, answer in checks.items() if answer != "ok"}
    if not down:
        return JSONResponse({"status": "ready", "checks": checks})
    body: dict[str, Any] = {
        "type": "unavailable",
        "message": "not ready: " + ", ".join(f"{name} {why}" for name, why in down.items()),
        "checks": checks,
    }
    return JSONResponse(body, status_code=503)


@health_router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process and of the store, queues and workflows."""
    return Response(await render_metrics(_state(request)), media_type=CONTENT_TYPE_LATEST)
