"""Bearer tokens on every workflow endpoint: 401 without or with a bad token, 403 without the
scope; errors are JSON {type, message}."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.temporal, pytest.mark.redis]

WF = "wf_00000000000"
READS = ["/v1/workflows", f"/v1/workflows/{WF}", f"/v1/workflows/{WF}/status"]
WRITES = [
    "/v1/workflows",
    f"/v1/workflows/{WF}/signal",
    f"/v1/workflows/{WF}/cancel",
    f"/v1/workflows/{WF}/pause",
    f"/v1/workflows/{WF}/resume",
]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
)
async def test_missing_or_bad_token_is_401(api: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for path in READS:
        response = await api.get(path, headers=headers)
        assert response.status_code == 401, path
        assert response.json()["type"] == "authentication_error"
    for path in WRITES:
        response = await api.post(path, headers=headers, json={})
        assert response.status_code == 401, path
        assert set(response.json()) == {"type", "message"}


async def test_read_token_cannot_write(
    api: httpx.AsyncClient, read_headers: dict[str, str]
) -> None:
    for path in WRITES:
        response = await api.post(path, headers=read_headers, json={"signal_name": "x"})
        assert response.status_code == 403, path
        assert response.json()["type"] == "permission_error"
        assert "write" in response.json()["message"]


async def test_scopes_nest(
    api: httpx.AsyncClient,
    read_headers: dict[str, str],
    write_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    for headers in (read_headers, write_headers, admin_headers):
        response = await api.get(f"/v1/workflows/{WF}", headers=headers)
        assert response.status_code == 404
    response = await api.post(f"/v1/workflows/{WF}/pause", headers=admin_headers)
    assert response.status_code == 404
