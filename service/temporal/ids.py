"""Workflow ids: ``wf_`` + base62 of a unique, time-ordered integer (the list cursor).

The integer is microseconds since the epoch times 1000 plus a random 0-999, so ids sort by
creation time, two API instances practically never collide, and a cursor id decodes to its
position without a lookup.
"""

from __future__ import annotations

import secrets
import time
from typing import Final

__all__ = ["ORDER_PER_SECOND", "is_workflow_id", "new_workflow_id", "order_of"]

_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_INDEX: Final = {c: i for i, c in enumerate(_ALPHABET)}
_WIDTH: Final = 11  # 62**11 > 2**63
ORDER_PER_SECOND: Final = 1_000_000_000


def _encode(value: int) -> str:
    chars = []
    for _ in range(_WIDTH):
        value, rem = divmod(value, 62)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_workflow_id(*, now: float | None = None) -> str:
    """A fresh workflow id for a workflow created at ``now`` (Unix seconds; default: now)."""
    micros = int((time.time() if now is None else now) * 1_000_000)
    return "wf_" + _encode(micros * 1000 + secrets.randbelow(1000))


def order_of(workflow_id: str) -> int:
    """The ordering integer encoded in a workflow id; ValueError if it is not one of ours."""
    if not is_workflow_id(workflow_id):
        raise ValueError(f"not a workflow id: {workflow_id!r}")
    value = 0
    for char in workflow_id[3:]:
        value = value * 62 + _INDEX[char]
    return value


def is_workflow_id(value: str) -> bool:
    """True for ids of the form ``wf_`` + 11 base62 characters."""
    return (
        len(value) == 3 + _WIDTH and value.startswith("wf_") and all(c in _INDEX for c in value[3:])
    )
