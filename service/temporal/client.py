"""Connecting to Temporal from Settings (dev server, cluster or Temporal Cloud).

The Temporal SDK's own client configuration comes first: a profile of its TOML file and the
``TEMPORAL_*`` environment variables it reads (address, namespace, API key, TLS with client
certificates for mTLS, server name, ...). The service's settings given explicitly
(``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_TLS``, ``TEMPORAL_API_KEY``) win over
the profile. With neither, the client goes to the local dev server.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.envconfig import ClientConfig

from service.observability.tracing import temporal_interceptors
from service.settings import Settings

__all__ = ["connect", "connect_options"]

_LOCAL: str = "localhost:7233"


def connect_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of :meth:`temporalio.client.Client.connect` for ``settings``."""
    options: dict[str, Any] = dict(
        ClientConfig.load_client_connect_config(
            settings.temporal_profile,
            config_file=str(settings.temporal_config_file)
            if settings.temporal_config_file
            else None,
        )
    )
    given = settings.model_fields_set
    if settings.temporal_address:
        options["target_host"] = settings.temporal_address
    options.setdefault("target_host", _LOCAL)
    if "temporal_namespace" in given or "namespace" not in options:
        options["namespace"] = settings.temporal_namespace
    if settings.temporal_tls and not options.get("tls"):
        options["tls"] = True
    if settings.temporal_api_key is not None:
        options["api_key"] = settings.temporal_api_key.get_secret_value()
    return options


async def connect(settings: Settings, *, lazy: bool = False) -> Client:
    """A client for the settings (see the module docstring), tracing what it starts: workers
    built on it run workflows and activities in the trace of whoever started them."""
    return await Client.connect(
        **connect_options(settings), lazy=lazy, interceptors=temporal_interceptors()
    )
