"""Webhook replay: a captured delivery re-sent with its timestamp written differently is refused."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from automation_helpers import executions, settled

from service.jobs.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, parse_timestamp, sign

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


@pytest.mark.parametrize(
    "text",
    ["01700000000", "+1700000000", "-1700000000", "1_700_000_000", " 1700000000", "1e9", "0", ""],
)
def test_only_canonical_unix_seconds_are_timestamps(text: str) -> None:
    assert parse_timestamp(text) is None


def test_canonical_unix_seconds_parse_up_to_twelve_digits() -> None:
    assert parse_timestamp("1700000000") == 1_700_000_000
    assert parse_timestamp("9" * 12) == 999_999_999_999
    assert parse_timestamp("9" * 13) is None


async def test_a_replay_with_the_timestamp_rewritten_is_refused_and_fires_nothing(
    api: httpx.AsyncClient, worker: None, write_headers: dict[str, str]
) -> None:
    r = await api.post(
        "/v1/automation/rules",
        headers=write_headers,
        json={
            "name": "Replay probe",
            "trigger": "webhook",
            "conditions": {"source": "replay-probe"},
            "action": {"type": "update_field", "field": "status", "value": "in_progress"},
        },
    )
    assert r.status_code == 201, r.text
    rule = r.json()
    url = f"/v1/automation/webhooks/{rule['id']}"
    raw = json.dumps({"source": "replay-probe"}).encode()
    stamp = int(time.time())
    signature = sign(raw, secret=rule["secret"], timestamp=stamp)

    def headers(written: str) -> dict[str, str]:
        return {TIMESTAMP_HEADER: written, SIGNATURE_HEADER: signature}

    assert (await api.post(url, content=raw, headers=headers(str(stamp)))).status_code == 202
    await settled(api, rule["id"], write_headers, 1)
    for written in (f"0{stamp}", f"+{stamp}", f"00{stamp}", f"{stamp:_}"):
        r = await api.post(url, content=raw, headers=headers(written))
        assert r.status_code == 401, (written, r.text)
        assert r.json()["type"] == "authentication_error"
        assert TIMESTAMP_HEADER in r.json()["message"]
    assert len(await executions(api, rule["id"], write_headers)) == 1
