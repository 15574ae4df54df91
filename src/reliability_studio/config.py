"""Settings, read from the environment (and an optional `.env` file) by pydantic-settings.

Every setting is documented in the README's configuration table; keep the two in step.
"""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import limits
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from reliability_studio.db.urls import DatabaseURL, parse_database_url

DEFAULT_DATABASE_URL = "sqlite:///./data/reliability-studio.db"
DEFAULT_CORS_ORIGINS = (
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://localhost:5173",
    "http://127.0.0.1:5173",
)


class Settings(BaseSettings):
    """Process configuration. Field names map to upper-case environment variables."""

    # hide_input_in_errors: a refused DATABASE_URL must not print its password in the error.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    database_url: str = DEFAULT_DATABASE_URL
    prometheus_url: str = "http://localhost:9090"
    loki_url: str = "http://localhost:3100"
    tempo_url: str = "http://localhost:3200"

    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=1, le=65535)
    # None: one worker per CPU on PostgreSQL (always one on SQLite, which has one writer).
    web_concurrency: int | None = Field(default=None, ge=1, le=64)
    # SIGTERM: how long `serve` waits for the requests in flight before cancelling them, and
    # then how long the background jobs (serve and worker) get to stop before the process is
    # ended anyway (shutdown.py). Twice the default is Kubernetes' default grace period (30 s).
    shutdown_timeout_seconds: int = Field(default=15, ge=1, le=3600)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    cors_origins: Annotated[tuple[str, ...], NoDecode] = DEFAULT_CORS_ORIGINS
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    # A request holds its connection from the token check to its answer: at 64 clients on
    # two workers, 32 requests per worker are in flight, and a pool that makes some wait
    # hands connections out unfairly (the list's p99 doubled with 10 + 10). All 40 are
    # kept, not 20 + 20 overflow: the pool closes an overflow connection whenever 20 sit
    # idle, so a load that swings around 20 opened and closed about 20 a second, each a
    # new PostgreSQL backend (a one-incident GET at 64 clients: 1,100 -> 1,500-1,800 req/s).
    db_pool_size: int = Field(default=40, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"

    slo_engine_enabled: bool = True
    slo_evaluation_interval_seconds: float = Field(default=60.0, ge=1.0)
    slo_scheduler_tick_seconds: float = Field(default=5.0, gt=0)
    slo_batch_size: int = Field(default=500, ge=1)
    slo_history_interval_seconds: float = Field(default=300.0, ge=0)
    slo_history_retention_days: int = Field(default=90, ge=1)
    prometheus_timeout_seconds: float = Field(default=10.0, gt=0)

    alert_service_labels: Annotated[tuple[str, ...], NoDecode] = ("service",)
    alert_create_unknown_services: bool = False
    alert_correlation_enabled: bool = True
    alert_correlation_batch_size: int = Field(default=1000, ge=1, le=100_000)
    alert_correlation_poll_seconds: float = Field(default=1.0, gt=0)
    alert_timeline_detail_limit: int = Field(default=10, ge=0)
    alert_storm_summary_seconds: float = Field(default=60.0, ge=0)
    alert_max_batch: int = Field(default=1000, ge=1)
    ingest_token_alertmanager: SecretStr | None = None
    ingest_token_grafana: SecretStr | None = None
    ingest_token_alerts: SecretStr | None = None
    ingest_token_locations: Annotated[tuple[Literal["header", "query"], ...], NoDecode] = (
        "header",
        "query",
    )
    ingest_rate_limit: str = "20000/second"

    analysis_enabled: bool = True
    analysis_backend_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    analysis_lookback_minutes: int = Field(default=120, ge=5, le=7 * 24 * 60)
    loki_tenant: str | None = None
    tempo_tenant: str | None = None
    # "": find a kubeconfig or the pod's service account; "none": off; else a kubeconfig path.
    kubernetes_config: str = ""

    public_url: str = Field(
        default="", description="This server's address as users reach it, for links in messages."
    )
    notify_enabled: bool = True
    notify_poll_seconds: float = Field(default=1.0, gt=0)
    notify_batch_size: int = Field(default=100, ge=1)
    notify_max_attempts: int = Field(default=8, ge=1, le=100)
    notify_backoff_base_seconds: float = Field(default=2.0, gt=0)
    notify_backoff_max_seconds: float = Field(default=600.0, gt=0)
    notify_send_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    notify_lease_seconds: float = Field(default=120.0, gt=0)
    notify_slack_rate_per_second: float = Field(default=1.0, gt=0)
    # Channels and policies (YAML) applied to the default organization at start.
    notify_config_file: Path | None = None
    # Outbound safety (outbound/): user-supplied URLs (notification channels) may reach only
    # public addresses, plus these networks (CIDRs, comma-separated); ALLOW_PRIVATE opens all
    # but cloud metadata endpoints. Operator-set URLs (PROMETHEUS_URL, ...) are not checked.
    outbound_allowed_networks: Annotated[tuple[str, ...], NoDecode] = ()
    outbound_allow_private: bool = False

    live_enabled: bool = True
    live_client_buffer: int = Field(default=1000, ge=1)
    live_frame_interval_seconds: float = Field(default=0.05, ge=0)
    live_send_timeout_seconds: float = Field(default=10.0, gt=0)
    live_heartbeat_seconds: float = Field(default=15.0, gt=0)
    live_publish_interval_seconds: float = Field(default=0.02, ge=0)

    # "none" (anyone is the owner) is refused unless `serve` listens on loopback only.
    auth_mode: Literal["token", "none"] = "token"
    bootstrap_token: SecretStr | None = None
    bootstrap_token_file: Path = Path("data/owner-token")
    auth_proxy_trusted: Annotated[tuple[str, ...], NoDecode] = ()
    auth_proxy_user_header: str = "X-WEBAUTH-USER"
    auth_proxy_email_header: str = "X-WEBAUTH-EMAIL"
    auth_proxy_role_header: str = "X-WEBAUTH-ROLE"
    auth_failure_limit: str = "30/minute"
    auth_endpoint_limit: str = "60/minute"
    token_max_days: int = Field(default=365, ge=1, le=3650)

    page_limit_default: int = Field(default=50, ge=1)
    page_limit_max: int = Field(default=500, ge=1)

    # --- Single sign-on (OIDC) and browser sessions: identity/oidc*.py, identity/sessions.py.
    # SSO is on when OIDC_ISSUER is set. Roles come from a claim (OIDC_GROUPS_CLAIM, a dotted
    # path such as Keycloak's `realm_access.roles`) through OIDC_ROLE_MAP (JSON, group ->
    # role; the highest wins), else OIDC_DEFAULT_ROLE ("" refuses users with no mapped group).
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr | None = None  # none: a public client (PKCE alone)
    oidc_scopes: Annotated[tuple[str, ...], NoDecode] = ("openid", "email", "profile")
    oidc_redirect_url: str = ""  # default: PUBLIC_URL + /api/auth/oidc/callback
    oidc_groups_claim: str = "groups"
    oidc_role_map: dict[str, Literal["viewer", "responder", "admin", "owner"]] = Field(
        default_factory=dict
    )
    oidc_default_role: Literal["", "viewer", "responder", "admin", "owner"] = "viewer"
    oidc_link_by_email: bool = False  # adopt an existing user by verified email
    oidc_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    oidc_login_timeout_seconds: int = Field(default=600, ge=30, le=3600)
    session_lifetime_seconds: int = Field(default=12 * 3600, ge=60)
    session_idle_timeout_seconds: int = Field(default=3600, ge=60)
    cli_token_lifetime_days: int = Field(default=30, ge=1, le=366)

    @field_validator("oidc_scopes", mode="before")
    @classmethod
    def _split_scopes(cls, value: object) -> object:
        """Accept scopes separated by spaces (OAuth's way) or commas."""
        if isinstance(value, str):
            return tuple(item for item in value.replace(",", " ").split() if item)
        return value

    @model_validator(mode="after")
    def _check_oidc(self) -> Settings:
        if self.oidc_issuer:
            if not self.oidc_issuer.startswith(("https://", "http://")):
                raise ValueError("OIDC_ISSUER must be an http(s) URL")
            if not self.oidc_client_id:
                raise ValueError("OIDC_CLIENT_ID is required when OIDC_ISSUER is set")
            if "openid" not in self.oidc_scopes:
                raise ValueError("OIDC_SCOPES must include `openid`")
        return self

    @property
    def oidc_enabled(self) -> bool:
        """Whether single sign-on is configured."""
        return bool(self.oidc_issuer)

    @property
    def oidc_callback_url(self) -> str | None:
        """The redirect URI registered with the provider; None: derive it from the request."""
        if self.oidc_redirect_url:
            return self.oidc_redirect_url
        if self.public_url:
            return self.public_url.rstrip("/") + "/api/auth/oidc/callback"
        return None

    # --- end of single sign-on settings.

    @field_validator(
        "cors_origins",
        "alert_service_labels",
        "ingest_token_locations",
        "auth_proxy_trusted",
        "outbound_allowed_networks",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        """Accept a comma-separated list, as environment variables are strings."""
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("bootstrap_token")
    @classmethod
    def _check_bootstrap_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            token = value.get_secret_value()
            if not token.startswith("rs_") or len(token) < 35:
                raise ValueError("must start with 'rs_' and hold at least 32 more characters")
        return value

    @field_validator("auth_proxy_trusted", "outbound_allowed_networks")
    @classmethod
    def _check_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not an address or network (CIDR)") from None
        return value

    @field_validator("ingest_rate_limit", "auth_failure_limit", "auth_endpoint_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit; write e.g. '20000/second' or '600/minute'"
            ) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        parse_database_url(value)  # raises ValueError with a clear message
        return value

    @cached_property
    def database(self) -> DatabaseURL:
        """The database URL, translated for SQLAlchemy's async drivers."""
        return parse_database_url(self.database_url)

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None when the database is PostgreSQL."""
        return self.database.sqlite_path
