"""The Temporal worker entry point (filled in by the workflow interpreter's worker)."""

from __future__ import annotations

__all__ = ["main"]


async def main() -> None:
    """Run the worker until interrupted."""
    raise NotImplementedError("the Temporal worker is not built yet")
