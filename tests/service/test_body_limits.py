"""Request bodies are bounded before any handler or authentication runs.

A body larger than ``MAX_BODY_BYTES`` gets 413 without being read past the limit, whether it
announces its length or streams in chunks; JSON nested deeper than the limit gets 400 instead of
exhausting the parser. Ordinary bodies, and the API page's curl bodies with shell line
continuations, are untouched.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.api.body_limits import MAX_JSON_DEPTH
from service.settings import Settings

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

MiB = 1 << 20
CHUNK = 64 * 1024
RULE: dict[str, Any] = {
    "name": "Notify on P1",
    "trigger": "on_ticket_created",
    "conditions": {"priority": "P1"},
    "action": {"type": "send_notification", "recipient": "oncall", "message": "P1 ticket"},
}


class CountedBody:
    """A streamed request body of ``size`` bytes that counts the chunks the server pulled."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        while sent < self.size:
            self.pulled += 1
            chunk = b" " * min(CHUNK, self.size - sent)
            sent += len(chunk)
            yield chunk


def _assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["type"] == "invalid_request"
    assert "too large" in body["message"]
    # the rest of the body was never read: the connection cannot be reused
    assert response.headers["connection"] == "close"


async def test_an_announced_two_mib_body_is_refused_unread(
    api: httpx.AsyncClient, write_headers: dict[str, str]
) -> None:
    body = CountedBody(2 * MiB)
    headers = {**write_headers, "Content-Type": "application/json", "Content-Length": str(2 * MiB)}
    response = await api.post("/v1/automation/rules", headers=headers, content=body)
    _assert_too_large(response)
    assert body.pulled == 0


async def test_a_streamed_two_mib_body_is_refused_once_past_the_limit(
    api: httpx.AsyncClient, write_headers: dict[str, str], service_settings: Settings
) -> None:
    body = CountedBody(2 * MiB)
    headers = {**write_headers, "Content-Type": "application/json"}
    response = await api.post("/v1/automation/rules", headers=headers, content=body)
    assert "content-length" not in response.request.headers
    _assert_too_large(response)
    assert body.pulled <= service_settings.max_body_bytes // CHUNK + 1


async def test_a_large_body_is_refused_before_authentication(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/automation/rules", content=b"[" + b" " * (2 * MiB) + b"]")
    _assert_too_large(response)


async def test_a_body_of_exactly_the_limit_is_accepted(
    api: httpx.AsyncClient,
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
    service_settings: Settings,
) -> None:
    raw = json.dumps(RULE).encode()
    padded = raw[:-1] + b" " * (service_settings.max_body_bytes - len(raw)) + b"}"
    assert len(padded) == service_settings.max_body_bytes
    headers = {**write_headers, "Content-Type": "application/json"}
    response = await api.post("/v1/automation/rules", headers=headers, content=padded)
    assert response.status_code == 201, response.text
    await api.delete(f"/v1/automation/rules/{response.json()['id']}", headers=admin_headers)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"name": "x", "conditions": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001,
        b'{\\\n"name": "x",\\\n"conditions": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    ],
    ids=["arrays", "objects", "curl continuation"],
)
async def test_deeply_nested_json_is_refused_with_400(
    api: httpx.AsyncClient, write_headers: dict[str, str], body: bytes
) -> None:
    headers = {**write_headers, "Content-Type": "application/json"}
    response = await api.post("/v1/automation/rules", headers=headers, content=body)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "type": "invalid_request",
        "message": f"JSON body nested too deeply (more than {MAX_JSON_DEPTH} levels)",
    }


async def test_deep_json_is_refused_whatever_its_content_type(api: httpx.AsyncClient) -> None:
    # A webhook reads its body itself, whatever the content type says.
    response = await api.post(
        "/v1/automation/webhooks/rule_none",
        headers={"Content-Type": "text/plain"},
        content=b"[" * 10_000 + b"]" * 10_000,
    )
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.json()["message"]


async def test_brackets_inside_strings_do_not_count_as_nesting(
    api: httpx.AsyncClient, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    rule = {**RULE, "conditions": {"title": {"contains": "[{" * 1000 + '"[' * 100}}}
    response = await api.post("/v1/automation/rules", headers=write_headers, json=rule)
    assert response.status_code == 201, response.text
    await api.delete(f"/v1/automation/rules/{response.json()['id']}", headers=admin_headers)


async def test_nesting_up_to_the_limit_is_accepted(
    api: httpx.AsyncClient, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    nested: Any = "P1"
    for _ in range(MAX_JSON_DEPTH - 3):  # the body, conditions and priority take three levels
        nested = [nested]
    rule = {**RULE, "conditions": {"priority": {"in": nested}}}
    response = await api.post("/v1/automation/rules", headers=write_headers, json=rule)
    assert response.status_code == 201, response.text
    await api.delete(f"/v1/automation/rules/{response.json()['id']}", headers=admin_headers)


async def test_a_bad_content_length_is_refused(
    api: httpx.AsyncClient, write_headers: dict[str, str]
) -> None:
    headers = {**write_headers, "Content-Type": "application/json", "Content-Length": "lots"}
    response = await api.post("/v1/automation/rules", headers=headers, content=CountedBody(10))
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "invalid_request"


async def test_a_normal_body_and_a_curl_continuation_body_still_work(
    api: httpx.AsyncClient, write_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    plain = await api.post("/v1/automation/rules", headers=write_headers, json=RULE)
    assert plain.status_code == 201, plain.text
    # exactly the bytes `curl -d '{\ ... }'` sends when typed over several lines
    curl = (
        b'{\\\n  "name": "Notify on P2",\\\n  "trigger": "on_ticket_created",\\\n'
        b'  "conditions": {"priority": "P2"},\\\n'
        b'  "action": {"type": "send_notification", "recipient": "oncall", "message": "P2"}\\\n}'
    )
    headers = {**write_headers, "Content-Type": "application/json"}
    continued = await api.post("/v1/automation/rules", headers=headers, content=curl)
    assert continued.status_code == 201, continued.text
    assert continued.json()["name"] == "Notify on P2"
    for created in (plain, continued):
        await api.delete(f"/v1/automation/rules/{created.json()['id']}", headers=admin_headers)
