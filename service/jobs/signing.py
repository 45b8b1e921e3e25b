"""HMAC-SHA256 signatures of outbound calls and of inbound webhooks (one scheme for both).

The signed string is ``<timestamp>.<body>``; headers ``X-Protocol-Timestamp`` (Unix seconds)
and ``X-Protocol-Signature: v1=<hex digest>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, Final

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "sign",
    "signed_headers",
    "verify",
]

SIGNATURE_HEADER: Final = "X-Protocol-Signature"
TIMESTAMP_HEADER: Final = "X-Protocol-Timestamp"


def sign(body: bytes, *, secret: str, timestamp: int) -> str:
    """``v1=`` + hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    body: bytes,
    *,
    secret: str,
    timestamp: str | None,
    signature: str | None,
    window_s: float = 300.0,
    now: float | None = None,
) -> str | None:
    """None when the signature is good and fresh, else the reason it is refused."""
    if not timestamp or not signature:
        return f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header"
    try:
        stamp = int(timestamp)
    except ValueError:
        return f"{TIMESTAMP_HEADER} must be Unix seconds"
    current = time.time() if now is None else now
    if abs(current - stamp) > window_s:
        return f"timestamp outside the {int(window_s)} s replay window"
    expected = sign(body, secret=secret, timestamp=stamp)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        return "signature does not match"
    return None


def signed_headers(
    payload: Any, *, secret: str, now: float | None = None
) -> tuple[bytes, dict[str, str]]:
    """The JSON body of ``payload`` and the headers that sign it."""
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    stamp = int(time.time() if now is None else now)
    return body, {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: sign(body, secret=secret, timestamp=stamp),
    }
