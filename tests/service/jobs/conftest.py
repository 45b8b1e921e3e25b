"""The job processors running for real: BullMQ workers on the machine's Redis (a private key
prefix per module), a SQLite store, a real SMTP server (aiosmtpd) and an HTTP receiver on
loopback."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from job_helpers import Mailbox, Receiver

from service.jobs.producer import JobProducer
from service.jobs.runner import close_job_workers, open_job_workers
from service.settings import Settings
from service.stack import free_port
from service.state import Resources


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """The HTTP receiver on a free loopback port."""
    state = Receiver(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            if self.path == "/gone":
                code = 404
            elif state.fail_first.get(self.path, 0) > 0:
                state.fail_first[self.path] -= 1
                code = 500
            else:
                code = 200
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"ok": code == 200}).encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server on loopback collecting messages."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port  # type: ignore[attr-defined]
    yield box
    controller.stop()


@pytest.fixture(scope="module")
async def resources(
    tmp_path_factory: pytest.TempPathFactory,
    machine_redis_url: str,
    mailbox: Mailbox,
    receiver: Receiver,
) -> AsyncIterator[Resources]:
    """Worker resources with every queue's processor running until the module ends."""
    folder: Path = tmp_path_factory.mktemp("jobs")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'store.db'}",
        redis_url=machine_redis_url,
        state_dir=folder,
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,  # type: ignore[attr-defined]
        notification_webhook_url=f"{receiver.url}/notify",
        integration_urls={"mdm": receiver.url},
    )
    res = await Resources.open(settings)
    await res.jobs.close()
    res.jobs = JobProducer(machine_redis_url, prefix=f"t{uuid.uuid4().hex[:10]}")
    workers = open_job_workers(res)
    yield res
    await close_job_workers(workers)
    await res.close()
