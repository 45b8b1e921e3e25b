"""The one settings object of the service: the environment is read here and nowhere else."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = [
    "DEFAULT_REDIS_URL",
    "DEV_INTEGRATION_SECRET",
    "Environment",
    "Scope",
    "Settings",
    "get_settings",
]

Scope = Literal["read", "write", "admin"]
Environment = Literal["development", "production"]
# The development default; a production service refuses to start with it.
DEV_INTEGRATION_SECRET = "dev-integration-secret"
# The job queues' Redis when REDIS_URL is unset and no stack started one.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_SCOPE_ORDER: dict[str, int] = {"read": 0, "write": 1, "admin": 2}


class Settings(BaseSettings):
    """Service configuration. Unset addresses mean "start the embedded part" (see ``stack.py``)."""

    # Errors never echo the input: it holds the secrets.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    environment: Environment = Field(
        default="development",
        description="development (embedded stack, default secrets allowed) or production",
    )
    temporal_address: str | None = Field(
        default=None, description="host:port of a Temporal frontend; unset runs the dev server"
    )
    temporal_namespace: str = Field(default="default", description="Temporal namespace")
    temporal_tls: bool = Field(default=False, description="use TLS to reach Temporal")
    temporal_api_key: SecretStr | None = Field(default=None, description="Temporal Cloud API key")
    temporal_profile: str | None = Field(
        default=None,
        description="profile of the Temporal SDK's client configuration (TOML file and TEMPORAL_*"
        " variables: address, namespace, API key, mTLS certificates); explicit settings win",
    )
    temporal_config_file: Path | None = Field(
        default=None, description="the SDK's client configuration file (default: its own place)"
    )
    # URLs may hold passwords: kept out of the repr.
    database_url: str | None = Field(
        default=None,
        repr=False,
        description="async SQLAlchemy URL (postgresql+asyncpg://...); unset: SQLite in STATE_DIR",
    )
    redis_url: str | None = Field(
        default=None,
        repr=False,
        description="redis://host:port/db for BullMQ; unset runs embedded Redis",
    )
    # The tokens are the keys, looked up by the presented token: kept out of the repr instead.
    api_tokens: Annotated[dict[str, list[Scope]], NoDecode] = Field(
        default_factory=dict,
        repr=False,
        description="bearer tokens and their scopes: 'tokA=read,write;tokB=admin' or JSON",
    )
    host: str = Field(default="127.0.0.1", description="address the API binds")
    port: int = Field(default=3000, ge=0, le=65535, description="port of the API")
    api_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="worker processes of protocol-lab serve (each keeps its own /metrics"
        " request counters, so a scrape sees one worker's)",
    )
    metrics_address: str | None = Field(
        default=None,
        description="host:port where the worker serves Prometheus metrics (the Temporal SDK's "
        "and its own); unset: none (the API serves its own at /metrics)",
    )
    max_body_bytes: int = Field(
        default=1 << 20, ge=1024, description="largest request body accepted (bytes); more: 413"
    )
    state_dir: Path = Field(
        default=Path(".protocol-lab"), description="folder for embedded state (Temporal, Redis)"
    )
    temporal_ui_port: int | None = Field(default=None, description="port of the Temporal web UI")
    integration_urls: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="integration name -> base URL ('mdm=http://...;directory=http://...' or JSON)",
    )
    integration_secret: SecretStr = Field(
        default=SecretStr(DEV_INTEGRATION_SECRET),
        description="HMAC key of calls to the configured integrations and notification webhook",
    )
    signing_secrets: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict,
        description="destination origin -> HMAC key of calls to it "
        "('https://hooks.example.com=key;http://10.0.0.5:8080=key2' or JSON); "
        "calls to an origin with no known key go out unsigned",
    )
    smtp_host: str | None = Field(default=None, description="SMTP host for the email queue")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP port")
    smtp_security: Literal["none", "starttls", "ssl"] = Field(
        default="none",
        description="none (plain, port 25), starttls (upgrade, usually 587) or ssl (implicit TLS,"
        " usually 465)",
    )
    smtp_username: str | None = Field(default=None, description="SMTP login (needs TLS)")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password")
    smtp_ca_file: Path | None = Field(
        default=None, description="CA certificates to trust for the relay (default: the system's)"
    )
    notification_webhook_url: str | None = Field(
        default=None, description="where notification jobs are also POSTed"
    )
    time_scale: float = Field(
        default=1.0, gt=0, description="default divisor of workflow timers and emulated latency"
    )
    archive_after_s: float = Field(
        default=7 * 86400.0,
        ge=0,
        description="closed workflows older than this (seconds) move to the timeline archive",
    )
    idempotency_ttl_s: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="seconds an Idempotency-Key stays claimed; the daily maintenance prunes older",
    )
    event_retry_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 365,
        description="how long (hours) the rule dispatcher retries an event through transient "
        "failures (Temporal or Redis unreachable) before recording it failed, to be re-driven",
    )
    worker_task_queues: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="task queues this worker polls (default: all five)"
    )
    task_queue_prefix: str = Field(
        default="",
        max_length=64,
        description="put before every task queue name on Temporal (the API still shows the"
        " spec's names): workers and starts of one deployment, or one test, kept to their own",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="OpenTelemetry collector (OTLP/HTTP, e.g. http://127.0.0.1:4318): traces go"
        " to its /v1/traces; unset: no traces (a no-op tracer)",
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        default=None, description="full OTLP/HTTP URL for traces (wins over the endpoint above)"
    )
    otel_service_name: str | None = Field(
        default=None,
        description="service name on the traces (default: protocol-lab-api, protocol-lab-worker)",
    )

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip()
        if value.startswith("{"):
            return json.loads(value)
        tokens: dict[str, list[str]] = {}
        for item in filter(None, (part.strip() for part in value.split(";"))):
            token, _, scopes = item.partition("=")
            tokens[token.strip()] = [s.strip() for s in (scopes or "read").split(",") if s.strip()]
        return tokens

    @field_validator("integration_urls", "signing_secrets", mode="before")
    @classmethod
    def _parse_pairs(cls, value: Any) -> Any:
        # "name=value;name=value" or JSON. A name (an integration, an origin) holds no "=", so
        # the first one separates it from its value.
        if not isinstance(value, str):
            return value
        value = value.strip()
        if value.startswith("{"):
            return json.loads(value)
        pairs = (item.partition("=") for item in value.split(";") if item.strip())
        return {name.strip(): item.strip() for name, _, item in pairs}

    @model_validator(mode="after")
    def _smtp_login_over_tls(self) -> Settings:
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("SMTP_USERNAME and SMTP_PASSWORD go together")
        if self.smtp_username is not None and self.smtp_security == "none":
            raise ValueError(
                "an SMTP login needs SMTP_SECURITY=starttls or ssl: the password would cross in"
                " clear"
            )
        return self

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> Settings:
        if self.environment == "production":
            defaults = [
                name
                for name, secret in self.secrets().items()
                if secret.get_secret_value() == DEV_INTEGRATION_SECRET
            ]
            if defaults:
                raise ValueError(
                    f"ENVIRONMENT=production refuses the development default of {defaults}: "
                    "set a secret of your own"
                )
        return self

    def secrets(self) -> dict[str, SecretStr]:
        """Every secret of the settings by name (for checks; never log their values)."""
        found = {"integration_secret": self.integration_secret}
        if self.temporal_api_key is not None:
            found["temporal_api_key"] = self.temporal_api_key
        if self.smtp_password is not None:
            found["smtp_password"] = self.smtp_password
        found |= {f"signing_secrets[{o}]": s for o, s in self.signing_secrets.items()}
        return found

    @field_validator("worker_task_queues", mode="before")
    @classmethod
    def _parse_queues(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [q.strip() for q in value.split(",") if q.strip()]
        return value

    def scopes_of(self, token: str) -> frozenset[str]:
        """Scopes granted to a token (admin implies write implies read); empty if unknown."""
        granted = self.api_tokens.get(token, [])
        top = max((_SCOPE_ORDER[s] for s in granted), default=-1)
        return frozenset(s for s, rank in _SCOPE_ORDER.items() if rank <= top)

    @property
    def sqlite_url(self) -> str:
        """The embedded store's URL."""
        return f"sqlite+aiosqlite:///{(self.state_dir / 'protocol-lab.db').resolve()}"

    @property
    def jobs_redis_url(self) -> str:
        """The Redis of the job queues: ``redis_url``, else the machine's on its default port (a
        worker or API started alone, without the stack that starts and names one)."""
        return self.redis_url or DEFAULT_REDIS_URL


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
