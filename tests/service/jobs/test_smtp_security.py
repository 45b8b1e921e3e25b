"""E-mail through a relay in each mode: plain, STARTTLS with a login, implicit TLS with a login,
against a real SMTP server (aiosmtpd) on loopback with a certificate from a private CA."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from bullmq import UnrecoverableError
from job_helpers import Mailbox
from pydantic import ValidationError

from service.jobs.messaging import send_message
from service.settings import Settings
from service.stack import free_port

USER, PASSWORD = "desk", "relay-password"


def _check_login(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(),
        auth_data.password.decode(),
    ) == (USER, PASSWORD)
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    authority = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return authority, path


def _server_context(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def relays(ca: tuple[trustme.CA, Path]) -> Iterator[dict[str, tuple[Mailbox, int]]]:
    """One relay per mode: plain, STARTTLS required with a login, implicit TLS with a login."""
    authority, _ = ca
    built: dict[str, tuple[Mailbox, Controller]] = {}
    options: dict[str, dict[str, Any]] = {
        "none": {},
        "starttls": {
            "tls_context": _server_context(authority),
            "require_starttls": True,
            "authenticator": _check_login,
            "auth_require_tls": True,
        },
        "ssl": {
            "ssl_context": _server_context(authority),
            "authenticator": _check_login,
            "auth_require_tls": False,  # the whole session is TLS already
        },
    }
    for mode, extra in options.items():
        box = Mailbox()
        controller = Controller(box, hostname="127.0.0.1", port=free_port(), **extra)
        controller.start()
        built[mode] = (box, controller)
    yield {mode: (box, controller.port) for mode, (box, controller) in built.items()}
    for _, controller in built.values():
        controller.stop()


def _message(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "protocol@localhost"
    message["To"] = "ann@example.com"
    message["Subject"] = subject
    message.set_content("Your ticket is resolved.")
    return message


def _settings(port: int, **fields: Any) -> Settings:
    return Settings(smtp_host="127.0.0.1", smtp_port=port, **fields)


@pytest.mark.parametrize("mode", ["none", "starttls", "ssl"])
def test_a_message_goes_through_the_relay_in_each_mode(
    mode: str, relays: dict[str, tuple[Mailbox, int]], ca: tuple[trustme.CA, Path]
) -> None:
    box, port = relays[mode]
    login: dict[str, Any] = (
        {} if mode == "none" else {"smtp_username": USER, "smtp_password": PASSWORD}
    )
    settings = _settings(port, smtp_security=mode, smtp_ca_file=ca[1], **login)
    send_message(settings, "127.0.0.1", _message(f"over {mode}"))
    assert [m["Subject"] for m in box.messages] == [f"over {mode}"]


def test_a_wrong_password_ends_the_job(
    relays: dict[str, tuple[Mailbox, int]], ca: tuple[trustme.CA, Path]
) -> None:
    _, port = relays["starttls"]
    settings = _settings(
        port,
        smtp_security="starttls",
        smtp_ca_file=ca[1],
        smtp_username=USER,
        smtp_password="wrong",
    )
    with pytest.raises(UnrecoverableError, match="refused the login"):
        send_message(settings, "127.0.0.1", _message("never"))


def test_a_certificate_that_does_not_verify_ends_the_job(
    relays: dict[str, tuple[Mailbox, int]],
) -> None:
    _, port = relays["ssl"]
    settings = _settings(port, smtp_security="ssl", smtp_username=USER, smtp_password=PASSWORD)
    with pytest.raises(UnrecoverableError, match="certificate"):
        send_message(settings, "127.0.0.1", _message("never"))


def test_a_relay_without_starttls_ends_the_job(
    relays: dict[str, tuple[Mailbox, int]], ca: tuple[trustme.CA, Path]
) -> None:
    _, port = relays["none"]
    settings = _settings(port, smtp_security="starttls", smtp_ca_file=ca[1])
    with pytest.raises(UnrecoverableError, match=r"(?i)starttls"):
        send_message(settings, "127.0.0.1", _message("never"))


def test_a_login_in_clear_is_refused_by_the_settings() -> None:
    with pytest.raises(ValidationError, match="cross in clear"):
        Settings(smtp_host="relay", smtp_username=USER, smtp_password=PASSWORD)
    with pytest.raises(ValidationError, match="go together"):
        Settings(smtp_host="relay", smtp_security="ssl", smtp_username=USER)
    assert (
        "smtp_password"
        in Settings(smtp_security="ssl", smtp_username=USER, smtp_password=PASSWORD).secrets()
    )
