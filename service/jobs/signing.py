"""The one signing scheme of the service: every signed outbound call and every inbound webhook.

A signed request carries two headers:

- ``X-Protocol-Timestamp: <t>``, Unix seconds written canonically (ASCII digits only, no sign,
  no leading zero, at most 12 digits);
- ``X-Protocol-Signature: v1=<hex>``, the lowercase hex HMAC-SHA256 of ``<t>.<raw body>``
  under the secret shared with the other side.

A receiver recomputes the HMAC over the raw body and refuses a timestamp outside its replay
window (300 s for inbound webhooks). Outbound calls are signed with the secret of their
destination's origin (``scheme://host:port``): ``SIGNING_SECRETS`` maps origins to secrets, and
destinations the operator configured (``INTEGRATION_URLS``, ``NOTIFICATION_WEBHOOK_URL``) fall
back to ``INTEGRATION_SECRET``. A destination with no known secret gets the call unsigned: the
service never signs a request to an address it was merely handed (webhook deliveries, whose URL
comes with the job, use :func:`registered_secret` only, never ``INTEGRATION_SECRET``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SignatureRefusedError",
    "VerifiedSignature",
    "check_signature",
    "destination_secret",
    "encode_json",
    "origin_of",
    "parse_timestamp",
    "registered_secret",
    "sign",
    "signature_headers",
    "signed_headers",
    "verify",
]

SIGNATURE_HEADER: Final = "X-Protocol-Signature"
TIMESTAMP_HEADER: Final = "X-Protocol-Timestamp"
_TIMESTAMP: Final = re.compile(r"[1-9][0-9]{0,11}")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class SignatureRefusedError(ValueError):
    """A signature that is missing, malformed, stale or wrong; the message says which."""


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """What a good signature proved: the timestamp it covers and the digest that matched.

    Two deliveries with the same pair are the same delivery, however their headers were written.
    """

    timestamp: int
    digest: str


def _digest(body: bytes, *, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(body: bytes, *, secret: str, timestamp: int) -> str:
    """``v1=`` + hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    return "v1=" + _digest(body, secret=secret, timestamp=timestamp)


def parse_timestamp(text: str) -> int | None:
    """Unix seconds from their one canonical spelling, else None (``+1``, ``01``, ``1_0`` ...)."""
    if not _TIMESTAMP.fullmatch(text):
        return None
    return int(text)


def check_signature(
    body: bytes,
    *,
    secret: str,
    timestamp: str | None,
    signature: str | None,
    window_s: float = 300.0,
    now: float | None = None,
) -> VerifiedSignature:
    """The verified (timestamp, digest) pair; :class:`SignatureRefusedError` says why not."""
    if not timestamp or not signature:
        raise SignatureRefusedError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    stamp = parse_timestamp(timestamp)
    if stamp is None:
        raise SignatureRefusedError(
            f"{TIMESTAMP_HEADER} must be Unix seconds: digits only, no sign, no leading zero"
        )
    current = time.time() if now is None else now
    if abs(current - stamp) > window_s:
        raise SignatureRefusedError(f"timestamp outside the {int(window_s)} s replay window")
    digest = _digest(body, secret=secret, timestamp=stamp)
    if not hmac.compare_digest(f"v1={digest}".encode(), signature.encode()):
        raise SignatureRefusedError("signature does not match")
    return VerifiedSignature(timestamp=stamp, digest=digest)


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
    try:
        check_signature(
            body,
            secret=secret,
            timestamp=timestamp,
            signature=signature,
            window_s=window_s,
            now=now,
        )
    except SignatureRefusedError as exc:
        return str(exc)
    return None


def origin_of(url: str) -> str | None:
    """``scheme://host:port`` of an http(s) URL (default port made explicit), else None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return f"{scheme}://{parts.hostname.lower()}:{port or _DEFAULT_PORTS[scheme]}"


def registered_secret(settings: Settings, url: str) -> str | None:
    """The secret ``SIGNING_SECRETS`` holds for ``url``'s origin, or None."""
    origin = origin_of(url)
    if origin is None:
        return None
    for known, secret in settings.signing_secrets.items():
        if origin_of(known) == origin:
            return secret.get_secret_value()
    return None


def destination_secret(settings: Settings, url: str) -> str | None:
    """The secret shared with ``url``'s origin, or None: the call then goes out unsigned.

    For operator-configured destinations only, ``INTEGRATION_SECRET`` is the fallback.
    """
    registered = registered_secret(settings, url)
    origin = origin_of(url)
    if registered is not None or origin is None:
        return registered
    configured = [*settings.integration_urls.values(), settings.notification_webhook_url or ""]
    if origin in {origin_of(u) for u in configured if u}:
        return settings.integration_secret.get_secret_value()
    return None


def encode_json(payload: Any) -> bytes:
    """The compact JSON body of ``payload``."""
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def signature_headers(
    body: bytes, *, secret: str | None, now: float | None = None
) -> dict[str, str]:
    """JSON content type, plus timestamp and signature of ``body`` when a secret is known."""
    headers = {"Content-Type": "application/json"}
    if secret is None:
        return headers
    stamp = int(time.time() if now is None else now)
    headers[TIMESTAMP_HEADER] = str(stamp)
    headers[SIGNATURE_HEADER] = sign(body, secret=secret, timestamp=stamp)
    return headers


def signed_headers(
    payload: Any, *, secret: str | None, now: float | None = None
) -> tuple[bytes, dict[str, str]]:
    """The JSON body of ``payload`` and its headers (signed when ``secret`` is given)."""
    body = encode_json(payload)
    return body, signature_headers(body, secret=secret, now=now)
