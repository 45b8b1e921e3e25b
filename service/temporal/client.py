"""Connecting to Temporal from Settings (dev server, cluster or Temporal Cloud)."""

from __future__ import annotations

from temporalio.client import Client

from service.settings import Settings

__all__ = ["connect"]


async def connect(settings: Settings, *, lazy: bool = False) -> Client:
    """A client for ``settings.temporal_address`` (default localhost:7233)."""
    return await Client.connect(
        settings.temporal_address or "localhost:7233",
        namespace=settings.temporal_namespace,
        tls=settings.temporal_tls,
        api_key=(
            settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
        ),
        lazy=lazy,
    )
