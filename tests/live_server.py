"""An ASGI app served over real HTTP by uvicorn on a free loopback port, in a thread."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Literal

import uvicorn
from waiting import eventually_sync

from service.stack import free_port

__all__ = ["serving"]


@contextlib.contextmanager
def serving(
    app: Any,
    *,
    name: str,
    lifespan: Literal["auto", "on", "off"] = "auto",
    log_level: str = "warning",
    within_s: float = 60.0,
) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a daemon thread called ``name``; yield its base URL.

    Waits until uvicorn has started (up to ``within_s``) and fails with an ``AssertionError``
    if it did not; on exit (also on failure) asks the server to stop and joins its thread.
    """
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level, lifespan=lifespan)
    )
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    try:
        eventually_sync(
            lambda: server.started or not thread.is_alive(), within_s=within_s, every_s=0.05
        )
        assert server.started, f"uvicorn did not start ({name})"
        assert thread.is_alive(), f"uvicorn stopped at once ({name})"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
