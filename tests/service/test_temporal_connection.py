"""The Temporal connection follows the SDK's client configuration (profiles in its TOML file,
TLS with client certificates for mTLS), with the service's explicit settings winning."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from service.settings import Settings
from service.stack import EmbeddedTemporal
from service.temporal.client import connect, connect_options

pytestmark = pytest.mark.temporal


def _config(folder: Path, address: str) -> Path:
    (folder / "client.pem").write_text("CLIENT CERTIFICATE")
    (folder / "client.key").write_text("CLIENT KEY")
    file = folder / "temporal.toml"
    file.write_text(
        f"""
[profile.desk]
address = "{address}"
namespace = "default"

[profile.cloud]
address = "desk.tmprl.example:7233"
namespace = "desk.a1b2c"

[profile.cloud.tls]
client_cert_path = "{folder / "client.pem"}"
client_key_path = "{folder / "client.key"}"
server_name = "desk.tmprl.example"
"""
    )
    return file


async def test_a_profile_of_the_sdk_configuration_reaches_the_server(
    tmp_path: Path, temporal_server: EmbeddedTemporal
) -> None:
    file = _config(tmp_path, temporal_server.address)
    client = await connect(Settings(temporal_profile="desk", temporal_config_file=file))
    assert client.namespace == "default"
    assert await client.service_client.check_health()


def test_a_profile_brings_mutual_tls_and_explicit_settings_win(tmp_path: Path) -> None:
    file = _config(tmp_path, "127.0.0.1:1")
    options = connect_options(Settings(temporal_profile="cloud", temporal_config_file=file))
    assert options["target_host"] == "desk.tmprl.example:7233"
    assert options["namespace"] == "desk.a1b2c"
    tls = options["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == b"CLIENT CERTIFICATE"
    assert tls.client_private_key == b"CLIENT KEY"
    assert tls.domain == "desk.tmprl.example"
    mine = connect_options(
        Settings(
            temporal_profile="cloud",
            temporal_config_file=file,
            temporal_address="temporal.internal:7233",
            temporal_namespace="desk",
        )
    )
    assert (mine["target_host"], mine["namespace"]) == ("temporal.internal:7233", "desk")
    assert isinstance(mine["tls"], TLSConfig)  # the profile's certificates stay


def test_without_configuration_the_local_dev_server(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    missing.write_text("")
    options = connect_options(Settings(temporal_config_file=missing))
    assert options["target_host"] == "localhost:7233"
    assert options["namespace"] == "default"
    assert not options.get("tls")
