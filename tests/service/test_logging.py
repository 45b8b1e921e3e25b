"""One logging set-up: the service served by uvicorn writes JSON lines in production (readable
text in development), its access log among them, each line of a request with the request id;
no API token and no webhook secret appears in any line, however it got there."""

from __future__ import annotations

import io
import json
import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import serving
from pydantic import SecretStr

from service.app import create_app
from service.jobs.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from service.observability.logging import REDACTED, configure_logging
from service.settings import Settings

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

WEBHOOK_RULE = {
    "name": "Logging: pager alerts notify ops",
    "trigger": "webhook",
    "conditions": {"source": "pager"},
    "action": {"type": "send_notification", "recipient": "ops-team", "message": "Alert"},
}


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Put the root logger and uvicorn's loggers back as they were after the test."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).level)
        for name in names
    }
    propagate = {name: logging.getLogger(name).propagate for name in names}
    yield
    for name, (handlers, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate[name]


def _settings(service_settings: Settings, tmp_path: Path, environment: str) -> Settings:
    token = "tok_" + secrets.token_urlsafe(18)
    return service_settings.model_copy(
        update={
            "environment": environment,
            "integration_secret": SecretStr("integration_" + secrets.token_hex(12)),
            "api_tokens": {token: ["admin"]},
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'logging.db'}",
        }
    )


def test_production_lines_are_json_with_request_ids_and_no_secret(
    service_settings: Settings, tmp_path: Path, restored_logging: None
) -> None:
    settings = _settings(service_settings, tmp_path, "production")
    [token] = settings.api_tokens
    auth = {"Authorization": f"Bearer {token}"}
    out = io.StringIO()
    with serving(create_app(settings), name="logging-api", log_level="info") as url:
        # After uvicorn set up its own loggers: what `protocol-lab serve` ends up with.
        configure_logging(settings, level=logging.DEBUG, stream=out)
        with httpx.Client(base_url=url, timeout=30) as client:
            created = client.post("/v1/automation/rules", headers=auth, json=WEBHOOK_RULE)
            assert created.status_code == 201, created.text
            rule = created.json()
            first_secret = rule["secret"]
            rotated = client.post(f"/v1/automation/rules/{rule['id']}/secret", headers=auth)
            assert rotated.status_code == 200, rotated.text
            secret = rotated.json()["secret"]
            assert secret != first_secret
            body = json.dumps({"source": "pager"}).encode()
            stamp = int(time.time())
            delivered = client.post(
                f"/v1/automation/webhooks/{rule['id']}",
                content=body,
                headers={
                    TIMESTAMP_HEADER: str(stamp),
                    SIGNATURE_HEADER: sign(body, secret=secret, timestamp=stamp),
                    "Content-Type": "application/json",
                },
            )
            assert delivered.status_code == 202, delivered.text
            # A token in the query string reaches uvicorn's access log line.
            listed = client.get(
                "/v1/workflows",
                params={"token": token, "limit": 1},
                headers={**auth, "X-Request-ID": "req-logging-1"},
            )
            assert listed.status_code in (200, 503), listed.text
            assert listed.headers["X-Request-ID"] == "req-logging-1"
            made_up = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
            assert made_up.headers["X-Request-ID"].startswith("req_")
        # Code that logs a secret by mistake does not leak it either.
        logging.getLogger("service.test").warning(
            "calling with Authorization: Bearer %s and secret %s", token, secret
        )
        try:
            raise RuntimeError(f"signature check failed for {secret}")
        except RuntimeError:
            logging.getLogger("service.test").exception("webhook failed")
    text = out.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert token not in text
    assert secret not in text
    assert first_secret not in text
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any(
        "/v1/workflows" in line["message"] and line.get("request_id") == "req-logging-1"
        for line in access
    ), access
    assert any(f"token={REDACTED}" in line["message"] for line in access), access
    assert any(
        "/v1/automation/webhooks/" in line["message"] and " 202" in line["message"]
        for line in access
    ), access
    mistake = [line for line in lines if line["logger"] == "service.test"]
    assert len(mistake) == 2
    assert REDACTED in mistake[0]["message"]
    assert "RuntimeError" in mistake[1]["exception"]
    assert {"time", "level", "logger", "message"} <= set(mistake[0])


def test_development_lines_are_text_with_the_request_id(
    service_settings: Settings, tmp_path: Path, restored_logging: None
) -> None:
    settings = _settings(service_settings, tmp_path, "development")
    [token] = settings.api_tokens
    out = io.StringIO()
    with serving(create_app(settings), name="logging-dev-api", log_level="info") as url:
        configure_logging(settings, stream=out)
        answer = httpx.get(
            f"{url}/v1/automation/rules",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-dev-7"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
    text = out.getvalue()
    assert token not in text
    [line] = [line for line in text.splitlines() if " uvicorn.access " in line]
    assert " INFO uvicorn.access [req=req-dev-7] " in line, line
    assert "/v1/automation/rules" in line, line
    assert not line.startswith("{")
