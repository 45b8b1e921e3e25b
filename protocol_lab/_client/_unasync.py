"""Generate the synchronous client twin (``_sync.py``) from the asynchronous one (``_async.py``).

As httpcore does with unasync: the async module is the only source; the sync module is the
same text with each async word replaced by its sync counterpart (``AsyncClient`` -> ``Client``,
``async def`` -> ``def``, ``await`` dropped, ``aiter_*`` -> ``iter_*``, ``asyncio.sleep`` ->
``time.sleep``, ...), then sorted and formatted by ruff like every other file. ::

    python -m protocol_lab._client._unasync           # rewrite _sync.py
    python -m protocol_lab._client._unasync --check   # exit 1 if _sync.py is not current

``make lint`` runs the check; ``tests/client/test_twins.py`` compares the two modules' syntax
trees, so a hand edit of either twin fails the build.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Final

__all__ = ["ASYNC_SOURCE", "SYNC_TARGET", "generate", "main", "unasync"]

HERE: Final = Path(__file__).resolve().parent
ASYNC_SOURCE: Final = HERE / "_async.py"
SYNC_TARGET: Final = HERE / "_sync.py"

HEADER: Final = (
    "# Generated from _async.py by `python -m protocol_lab._client._unasync`: do not edit.\n"
)

# Whole-word replacements, applied in order (regular expressions).
_WORDS: Final[tuple[tuple[str, str], ...]] = (
    (r"\bimport asyncio\b", "import time"),
    (r"\basyncio\.sleep\b", "time.sleep"),
    (r"\bhttpx\.AsyncClient\b", "httpx.Client"),
    (r"\bhttpx\.AsyncBaseTransport\b", "httpx.BaseTransport"),
    (r"\bAwaitable, ", ""),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncClient\b", "Client"),
    (r"\bAsyncPage\b", "Page"),
    (r"\basync def\b", "def"),
    (r"\basync for\b", "for"),
    (r"\basync with\b", "with"),
    (r"\bawait ", ""),
    (r"\ban async context manager\b", "a context manager"),
    (r"\basynchronous\b", "synchronous"),
    (r"\bAsynchronous\b", "Synchronous"),
    (r"\b__aiter__\b", "__iter__"),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\baclose\b", "close"),
    (r"\baiter_", "iter_"),
    (r"\bapaginate\b", "paginate"),
    (r"  # noqa: ASYNC109[^\n]*", ""),
)

# The async module's own docstring paragraph on generation becomes the sync module's note.
_SOURCE_NOTE: Final = re.compile(r"\n\nThis module is the source of both twins:.*?apart\.\n", re.S)
_SYNC_NOTE: Final = (
    "\n\nThis module is generated from ``_async.py`` by "
    "``python -m protocol_lab._client._unasync``;\nedit that one and regenerate.\n"
)


def _unwrap_awaitable(text: str) -> str:
    """``Awaitable[X]`` -> ``X``, finding the bracket that closes it (X may hold brackets)."""
    out: list[str] = []
    start = 0
    for match in re.finditer(r"\bAwaitable\[", text):
        if match.start() < start:
            continue  # nested inside one already unwrapped
        depth, end = 1, match.end()
        while depth:
            depth += {"[": 1, "]": -1}.get(text[end], 0)
            end += 1
        out += [text[start : match.start()], _unwrap_awaitable(text[match.end() : end - 1])]
        start = end
    return "".join([*out, text[start:]])


def unasync(source: str) -> str:
    """The sync twin of the async module text ``source``, before ruff sorts and formats it."""
    text = _unwrap_awaitable(_SOURCE_NOTE.sub(lambda _: _SYNC_NOTE, source, count=1))
    for pattern, replacement in _WORDS:
        text = re.sub(pattern, replacement, text)
    return HEADER + text


def _ruff(*args: str, source: str) -> str:
    ruff = Path(sys.executable).with_name("ruff")
    command = [
        str(ruff) if ruff.exists() else "ruff",
        *args,
        "--stdin-filename",
        str(SYNC_TARGET),
        "-",
    ]
    result = subprocess.run(
        command, input=source, capture_output=True, text=True, check=False, cwd=HERE
    )
    if result.returncode not in (0, 1) or not result.stdout:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return result.stdout


def generate() -> str:
    """The text ``_sync.py`` must have: the async module unasynced, then ruff-fixed (import
    order, ``yield from``) and ruff-formatted."""
    text = unasync(ASYNC_SOURCE.read_text(encoding="utf-8"))
    text = _ruff(
        "check", "--fix", "--unsafe-fixes", "--select", "I,UP028,F401", "--quiet", source=text
    )
    return _ruff("format", "--quiet", source=text)


def main(argv: list[str] | None = None) -> int:
    """Rewrite ``_sync.py``, or with ``--check`` report whether it is current (exit 1 if not)."""
    args = sys.argv[1:] if argv is None else argv
    wanted = generate()
    if "--check" in args:
        if SYNC_TARGET.read_text(encoding="utf-8") != wanted:
            sys.stderr.write(
                f"{SYNC_TARGET} is not generated from {ASYNC_SOURCE.name}: run "
                "python -m protocol_lab._client._unasync\n"
            )
            return 1
        return 0
    SYNC_TARGET.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
