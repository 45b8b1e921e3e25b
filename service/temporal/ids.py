"""Workflow ids: ``wf_`` + 14 base62 characters, time-ordered (the list cursor).

The first 11 characters are the base62 of a time-ordered integer (microseconds since the
epoch times 1000 plus a random 0-999, below 2**63 so it fits the ``ProtocolOrder`` Int search
attribute); the last 3 are random. Ids therefore sort by creation time, two API instances
practically never collide (about 2.4e8 choices per microsecond), and a cursor id decodes to its
position without a lookup.

Ids minted before the 14-character form (``wf_`` + the 11 ordering characters alone) are still
workflow ids: their order is the same integer, so old and new ids interleave correctly in lists.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Final

__all__ = [
    "ID_CHARS",
    "ORDER_PER_SECOND",
    "derived_workflow_id",
    "is_workflow_id",
    "new_workflow_id",
    "order_of",
]

_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_INDEX: Final = {c: i for i, c in enumerate(_ALPHABET)}
_ORDER_WIDTH: Final = 11  # 62**11 > 2**63
_SUFFIX_WIDTH: Final = 3
ID_CHARS: Final = _ORDER_WIDTH + _SUFFIX_WIDTH
_LEGACY_CHARS: Final = _ORDER_WIDTH
ORDER_PER_SECOND: Final = 1_000_000_000


def _encode(value: int) -> str:
    chars = []
    for _ in range(_ORDER_WIDTH):
        value, rem = divmod(value, 62)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_workflow_id(*, now: float | None = None) -> str:
    """A fresh workflow id (``wf_`` + 14 characters) for a workflow created at ``now`` (Unix
    seconds; default: now)."""
    micros = int((time.time() if now is None else now) * 1_000_000)
    suffix = "".join(secrets.choice(_ALPHABET) for _ in range(_SUFFIX_WIDTH))
    return "wf_" + _encode(micros * 1000 + secrets.randbelow(1000)) + suffix


def derived_workflow_id(*, at: float, seed: str) -> str:
    """The workflow id for ``at`` (Unix seconds) whose random parts come from ``seed``: the same
    arguments give the same id, so a start retried with them is recognised as the same start."""
    digest = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
    micros = int(at * 1_000_000)
    suffix = ""
    rest = digest // 1000
    for _ in range(_SUFFIX_WIDTH):
        rest, rem = divmod(rest, 62)
        suffix += _ALPHABET[rem]
    return "wf_" + _encode(micros * 1000 + digest % 1000) + suffix


def order_of(workflow_id: str) -> int:
    """The ordering integer encoded in a workflow id; ValueError if it is not one of ours."""
    if not is_workflow_id(workflow_id):
        raise ValueError(f"not a workflow id: {workflow_id!r}")
    value = 0
    for char in workflow_id[3 : 3 + _ORDER_WIDTH]:
        value = value * 62 + _INDEX[char]
    return value


def is_workflow_id(value: str) -> bool:
    """True for ids of the form ``wf_`` + 14 base62 characters (or the older 11)."""
    return (
        len(value) in (3 + ID_CHARS, 3 + _LEGACY_CHARS)
        and value.startswith("wf_")
        and all(c in _INDEX for c in value[3:])
    )
