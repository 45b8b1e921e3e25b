"""Test doubles of the outside world for the job tests: an SMTP mailbox, an HTTP receiver."""

from __future__ import annotations

from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any


class Mailbox:
    """Collects the messages an aiosmtpd server receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@dataclass
class Receiver:
    """An HTTP server that records requests; ``fail_first[path]`` answers 500 that many times."""

    port: int
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_first: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def hits(self, path: str) -> list[dict[str, Any]]:
        """Requests received on ``path``."""
        return [r for r in self.requests if r["path"] == path]
