"""The serving process freezes its start-up heap, so full collections no longer walk it while
requests wait; an app built inside another program leaves that program's collector alone."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from service.app import create_app
from service.settings import Settings

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


async def test_the_served_app_freezes_what_start_up_left_alive(
    service_settings: Settings, tmp_path: Path
) -> None:
    settings = service_settings.model_copy(
        update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'heap.db'}"}
    )
    gc.unfreeze()
    try:
        plain = create_app(settings)
        async with plain.router.lifespan_context(plain):
            assert gc.get_freeze_count() == 0
        served = create_app(settings, freeze_heap=True)
        async with served.router.lifespan_context(served):
            # the app, its routes and its open resources are among the frozen objects
            assert gc.get_freeze_count() > 10_000
            assert served.state.protocol is not None
    finally:
        gc.unfreeze()  # give this test process its heap back
