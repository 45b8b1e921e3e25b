"""Random base62 ids for store records: ``rule_`` + 14 characters, ``exe_`` + 14 characters."""

from __future__ import annotations

import secrets
from typing import Final

__all__ = ["new_id"]

_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_id(prefix: str, *, length: int = 14) -> str:
    """``prefix`` + ``_`` + ``length`` random base62 characters."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))
