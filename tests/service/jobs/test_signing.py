"""Outbound signatures: one scheme, a secret per destination, a handed-in URL never signed with
the service's own secret."""

from __future__ import annotations

import uuid

import pytest
from bullmq import Job
from job_helpers import Receiver
from pydantic import SecretStr
from waiting import eventually

from protocol_lab.domain import JobQueue
from service.jobs.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    destination_secret,
    origin_of,
    verify,
)
from service.settings import Settings
from service.state import Resources

pytestmark = [pytest.mark.redis]


async def _deliver(res: Resources, url: str, **extra: str) -> Job:
    job_id = f"hook-{uuid.uuid4().hex[:8]}"
    await res.jobs.enqueue(
        JobQueue.WEBHOOK_DELIVERY,
        "ticket_event",
        {"url": url, "payload": {"ticket_id": "TKT-5"}, **extra},
        job_id=job_id,
        attempts=1,
    )

    async def done() -> Job | None:
        job = await res.jobs.queue(JobQueue.WEBHOOK_DELIVERY).getJob(job_id)
        if job is None or await job.getState() not in ("completed", "failed"):
            return None
        return job

    return await eventually(done, within_s=60)


async def test_a_handed_in_url_is_not_signed_with_the_integration_secret(
    resources: Resources, receiver: Receiver
) -> None:
    # The receiver is also a configured integration, so its origin knows INTEGRATION_SECRET.
    assert destination_secret(resources.settings, receiver.url) is not None
    path = f"/unsigned-{uuid.uuid4().hex[:6]}"
    job = await _deliver(resources, receiver.url + path)
    assert await job.getState() == "completed", job.failedReason
    [hit] = receiver.hits(path)
    assert SIGNATURE_HEADER not in hit["headers"]
    assert TIMESTAMP_HEADER not in hit["headers"]


async def test_a_destination_with_its_own_secret_gets_it(
    resources: Resources, receiver: Receiver
) -> None:
    path = f"/signed-{uuid.uuid4().hex[:6]}"
    configured = resources.settings
    resources.settings = configured.model_copy(
        update={"signing_secrets": {receiver.url + "/": SecretStr("per-destination-key")}}
    )
    try:
        job = await _deliver(resources, receiver.url + path, secret="ignored-job-secret")
    finally:
        resources.settings = configured
    assert await job.getState() == "completed", job.failedReason
    [hit] = receiver.hits(path)
    headers = hit["headers"]
    stamp, signature = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert signature.startswith("v1=")
    assert (
        verify(hit["body"], secret="per-destination-key", timestamp=stamp, signature=signature)
        is None
    )


def test_secrets_are_looked_up_by_origin() -> None:
    settings = Settings(
        integration_secret=SecretStr("integration-key"),
        integration_urls={"mdm": "http://mdm.internal:8080/api"},
        notification_webhook_url="https://notify.example/in",
        signing_secrets={"HTTPS://Hooks.Example.com": SecretStr("hooks-key")},
    )
    assert origin_of("https://hooks.example.com/a?b=1") == "https://hooks.example.com:443"
    assert origin_of("ftp://x") is None
    assert destination_secret(settings, "https://hooks.example.com:443/x") == "hooks-key"
    assert destination_secret(settings, "http://mdm.internal:8080/other") == "integration-key"
    assert destination_secret(settings, "https://notify.example/elsewhere") == "integration-key"
    assert destination_secret(settings, "http://mdm.internal:9090/") is None
    assert destination_secret(settings, "https://attacker.example/") is None


def test_signing_secrets_parse_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNING_SECRETS", "https://a.example=k1; http://b.example:81=k=2")
    settings = Settings()
    assert {o: s.get_secret_value() for o, s in settings.signing_secrets.items()} == {
        "https://a.example": "k1",
        "http://b.example:81": "k=2",
    }
    assert "k1" not in repr(settings)
