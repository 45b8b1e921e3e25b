"""State files readable by their owner only: folders 0700, files 0600, symlinks not followed.

The store, the logs of the embedded stack, reports and exports may hold tickets, e-mail
addresses and tokens; they are created private rather than with the process umask.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import IO, Final, Literal

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "PRIVATE_UMASK",
    "inside",
    "open_private",
    "private_dir",
    "private_file",
    "sqlite_path",
]

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600
# For child processes: whatever they create is private too.
PRIVATE_UMASK: Final = 0o077


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) as a 0700 folder; tighten one we own that is looser."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    info = path.stat()
    # A shared folder (sticky, like /tmp) or someone else's is left as it is.
    if (
        info.st_uid == os.getuid()
        and not info.st_mode & stat.S_ISVTX
        and stat.S_IMODE(info.st_mode) != DIR_MODE
    ):
        path.chmod(DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty as a 0600 file if it is missing; tighten it if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    try:
        # Someone else's file (a shared store) keeps the mode its owner gave it.
        if os.fstat(fd).st_uid == os.getuid():
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def open_private(path: Path, mode: Literal["wb", "ab"]) -> IO[bytes]:
    """Open ``path`` for writing as a 0600 file; a symlink at ``path`` is refused (OSError)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if mode == "ab" else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise


def inside(root: Path, relative: str | Path) -> Path | None:
    """``root / relative`` with symlinks resolved, or None when it leads out of ``root``."""
    base = root.resolve()
    candidate = (base / relative).resolve()
    return candidate if candidate.is_relative_to(base) else None


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other stores and in-memory databases)."""
    if not url.startswith("sqlite"):
        return None
    _, _, rest = url.partition(":///")
    path = rest.split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)
