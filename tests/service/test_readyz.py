"""``/readyz``: 200 when the database, Temporal and Redis answer; 503 naming each part that is
down, within the bounded wait of each check (they run at the same time)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.observability.readiness import CHECK_WAIT_S
from service.settings import Settings
from service.stack import free_port

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


async def test_ready_when_every_part_answers(api: httpx.AsyncClient) -> None:
    r = await api.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "status": "ready",
        "checks": {"database": "ok", "temporal": "ok", "redis": "ok"},
    }
    assert (await api.get("/healthz")).json() == {"status": "ok"}


async def test_not_ready_names_what_is_down(service_settings: Settings, tmp_path: Path) -> None:
    # Nothing listens on these ports: Temporal and Redis are down, the store is fine.
    settings = service_settings.model_copy(
        update={
            "temporal_address": f"127.0.0.1:{free_port()}",
            "redis_url": f"redis://127.0.0.1:{free_port()}/0",
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'ready.db'}",
        }
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            started = time.monotonic()
            r = await client.get("/readyz")
            took = time.monotonic() - started
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["type"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["temporal"] != "ok"
    assert body["checks"]["redis"] != "ok"
    assert body["message"].startswith("not ready: temporal ")
    assert ", redis " in body["message"]
    assert "database" not in body["message"]
    assert took < 2 * CHECK_WAIT_S, took
