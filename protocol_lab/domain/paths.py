"""Where the shipped data lives: the ``data`` folder beside the packages."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA_DIR"]

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
