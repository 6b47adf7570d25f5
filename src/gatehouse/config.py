"""Settings, read once from `GATEHOUSE_*` environment variables.

Every setting has a flat variable name (`GATEHOUSE_DATABASE_URL`), grouped into
sections by concern. Secrets also accept a `GATEHOUSE_<NAME>_FILE` variant that
names a file holding the value (Docker and Kubernetes secrets).
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import limits
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gatehouse.kit.encryption import parse_keys

PREFIX = "GATEHOUSE_"


class Environment(StrEnum):
    development = "development"
    production = "production"
    test = "test"


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity: a pinned process has fewer than
    the machine)."""
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 64))
    except AttributeError:  # no affinity outside Linux
        return max(1, min(os.cpu_count() or 1, 64))


class FileSecretsSource(PydanticBaseSettingsSource):
    """Reads `GATEHOUSE_<NAME>_FILE`: the value is the content of the named file."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        path = os.environ.get(f"{PREFIX}{field_name.upper()}_FILE")
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text().strip(), field_name, False
        except OSError as exc:
            raise ConfigError(
                f"{PREFIX}{field_name.upper()}_FILE: cannot read {path!r} ({exc.strerror})"
            ) from exc

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class Section(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # A *_FILE variable wins over the plain one: it is the deliberate choice.
        return (init_settings, FileSecretsSource(settings_cls), env_settings)


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class ServerSettings(Section):
    env: Environment = Environment.development
    data_dir: Path = Path(".gatehouse")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    public_url: str = "http://127.0.0.1:8000"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # What one client may cost `gatehouse serve` (gatehouse.kit.server) before its
    # request reaches the app; the body's own limit is the body guard's.
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024)
    max_header_count: int = Field(default=100, ge=10, le=1000)
    header_timeout_seconds: int = Field(default=10, ge=1, le=300)
    body_timeout_seconds: int = Field(default=30, ge=1, le=3600)
    keepalive_timeout_seconds: int = Field(default=5, ge=1, le=300)
    max_connections: int = Field(default=512, ge=1)
    # On SIGTERM, how long requests in flight may take to finish before they are cut
    # off; the unit's TimeoutStopSec leaves room for it (deploy/systemd).
    shutdown_timeout_seconds: int = Field(default=20, ge=1, le=300)
    docs_enabled: bool | None = None
    log_level: str = "INFO"
    log_format: str | None = None
    # The built web apps (gatehouse.web); None: `web/dist` in the working directory.
    web_dir: Path | None = None

    _split = field_validator("cors_origins", "trusted_proxies", mode="before")(_split_list)

    @field_validator("web_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # An empty variable must not become Path("."), the working directory.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("log_level")
    @classmethod
    def _valid_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @field_validator("log_format")
    @classmethod
    def _valid_format(cls, value: str | None) -> str | None:
        if value is not None and value not in {"json", "console"}:
            raise ValueError("must be 'json' or 'console'")
        return value


class DatabaseSettings(Section):
    database_url: SecretStr | None = None
    database_pool_min: int = Field(default=20, ge=1)
    database_pool_max: int = Field(default=20, ge=1)
    database_pool_timeout: float = Field(default=10.0, gt=0)
    database_echo: bool = False
    # A streaming replica of the primary, for the reads that tolerate a few seconds' lag
    # (gatehouse.db.replica); PostgreSQL only.
    database_replica_url: SecretStr | None = None
    # How long after an actor's write their own reads stay on the primary: longer than
    # the replica's usual lag, so a writer never reads a state older than their write.
    database_replica_sticky_seconds: float = Field(default=5.0, gt=0, le=3600)
    # A replica further behind than this is skipped until it catches up.
    database_replica_max_lag_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _pool_bounds(self) -> DatabaseSettings:
        if self.database_pool_max < self.database_pool_min:
            raise ValueError("GATEHOUSE_DATABASE_POOL_MAX must be >= GATEHOUSE_DATABASE_POOL_MIN")
        return self

    @model_validator(mode="after")
    def _replica_of_postgres(self) -> DatabaseSettings:
        if self.database_replica_url is None:
            return self
        primary = self.database_url.get_secret_value() if self.database_url else None
        if primary is None or not primary.startswith("postgresql+asyncpg://"):
            raise ValueError(
                "GATEHOUSE_DATABASE_REPLICA_URL needs a PostgreSQL primary "
                "(GATEHOUSE_DATABASE_URL=postgresql+asyncpg://...): SQLite has no read replica"
            )
        if not self.database_replica_url.get_secret_value().startswith("postgresql+asyncpg://"):
            raise ValueError(
                "GATEHOUSE_DATABASE_REPLICA_URL must start with postgresql+asyncpg://, "
                "the primary's driver"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _supported_driver(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = value.get_secret_value()
        if not url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("must start with postgresql+asyncpg:// or sqlite+aiosqlite://")
        return value


class AuthSettings(Section):
    jwt_private_key: SecretStr | None = None
    jwt_issuer: str = "gatehouse"
    jwt_audience: str = "gatehouse"
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=60)
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=3600)
    refresh_token_idle_seconds: int = Field(default=14 * 24 * 3600, ge=60)
    refresh_token_max_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    # bcrypt is all CPU: threads beyond the process's cores add no logins per second,
    # they only take time slices from the event loop that serves everything else.
    password_hash_threads: int = Field(default_factory=usable_cores, ge=1, le=64)
    password_min_length: int = Field(default=8, ge=8, le=64)
    password_common_list_size: int = Field(default=10000, ge=0, le=30000)
    registration_enabled: bool = True
    admin_email: str | None = None
    admin_password: SecretStr | None = None
    # Secure attribute of the cookie-mode cookies; None: only on requests that came over TLS.
    cookie_secure: bool | None = None

    @model_validator(mode="after")
    def _lifetimes(self) -> AuthSettings:
        if self.refresh_token_max_seconds < self.refresh_token_idle_seconds:
            raise ValueError(
                "GATEHOUSE_REFRESH_TOKEN_MAX_SECONDS must be >= "
                "GATEHOUSE_REFRESH_TOKEN_IDLE_SECONDS"
            )
        return self


class MfaSettings(Section):
    """Second factors: TOTP, recovery codes, passkeys as a second step (docs/api.md)."""

    # Roles whose users must enrol a second factor before anything else; None: the
    # default, "admin" in production and nobody on the embedded default
    # (`Settings.mfa_required_roles`). An empty variable means nobody.
    mfa_required_roles: Annotated[list[str] | None, NoDecode] = None
    # How long a second-factor check (a login with one, or a step-up) lets a session
    # change its factors, email or password without another.
    mfa_step_up_seconds: int = Field(default=300, ge=30, le=3600)
    # The login's mfa_token: how long it lives and how many wrong codes kill it.
    mfa_token_ttl_seconds: int = Field(default=300, ge=30, le=900)
    mfa_token_max_failures: int = Field(default=5, ge=1, le=10)
    # Code checks per account (and password) across mfa_tokens and step-ups, right or
    # wrong, in the `limits` notation; several windows separated by ';'.
    mfa_rate_limit: str = "10/hour;30/day"

    @field_validator("mfa_required_roles", mode="before")
    @classmethod
    def _roles(cls, value: Any) -> Any:
        value = _split_list(value)
        if isinstance(value, list):
            unknown = [role for role in value if role not in {"admin", "user", "readonly"}]
            if unknown:
                raise ValueError("roles must be among admin, user, readonly")
        return value

    @field_validator("mfa_rate_limit")
    @classmethod
    def _valid_limits(cls, value: str) -> str:
        try:
            if not limits.parse_many(value):
                raise ValueError
        except ValueError:
            raise ValueError("must look like 10/hour or 10/hour;30/day") from None
        return value


class RedisSettings(Section):
    """Redis: shared cache and rate-limit counters. Unset: in-process memory (embedded)."""

    redis_url: SecretStr | None = None
    redis_prefix: str = "gatehouse:"
    redis_timeout_seconds: float = Field(default=0.25, gt=0, le=10)
    redis_breaker_failures: int = Field(default=3, ge=1)
    redis_breaker_reset_seconds: float = Field(default=5.0, gt=0)
    cache_ttl_seconds: int = Field(default=3600, ge=1)
    cache_principal_ttl_seconds: int | None = Field(default=None, ge=1)
    cache_user_ttl_seconds: int | None = Field(default=None, ge=1)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


class RateLimitSettings(Section):
    """Limits as "N/period" (period: second, minute, hour, day), the `limits` notation.

    Login brute-force protection (`gatehouse.auth.protection`), on while
    `rate_limit_enabled` is true, in three layers; a refused attempt answers exactly
    like a wrong password (401 INVALID_CREDENTIALS), except the per-IP layer (429):

    - per (account, client IP): after `login_lockout_threshold` failures the pair is
      locked for `login_lockout_base_seconds` x 2^(failures - threshold), at most
      `login_lockout_max_seconds`; attempts during the lock are not counted.
    - per account (from any IP): after `login_account_delay_threshold` failures, each
      further failure makes the account wait `login_account_delay_base_seconds` x
      2^(failures - threshold), at most `login_account_delay_max_seconds` (a soft,
      short delay, so an attacker cannot lock the owner out for long; with the
      defaults at most ~75 passwords an hour can be tried on one account).
    - per client IP: at most `login_ip_failures` failed logins (any account, known or
      not), then 429 RATE_LIMITED with Retry-After.

    Both account counters reset after `login_failure_reset_seconds` without a failure
    and on a successful login; a password reset clears them too.

    Known sources: an address (see below) or a browser (the `gatehouse_device` cookie)
    that logged in to the account in the last `login_known_source_days` days is not
    held back by the per-account delay, so guessing from many addresses cannot keep
    the owner out. A right password the delay refuses from an unknown source mails the
    owner (once an hour) instead of failing silently.

    Client addresses are counted by `rate_limit_ipv6_prefix` bits for IPv6 (a /64 by
    default, one subscriber's network), as is for IPv4, in every limit here.
    """

    rate_limit_enabled: bool = True
    rate_limit_fail_closed: bool = False
    rate_limit_anonymous: str = "100/hour"
    rate_limit_authenticated: str = "1000/hour"
    rate_limit_login: str = "20/minute"
    rate_limit_register: str = "10/hour"
    rate_limit_refresh: str = "60/minute"
    rate_limit_password_reset: str = "5/hour"  # noqa: S105 (a rate, not a password)
    # Per OAuth client at /oauth2/token, /oauth2/revoke, /oauth2/introspect and
    # /oauth2/userinfo (each endpoint counted apart; docs/oidc.md, "Rate limits").
    rate_limit_oauth_token: str = "120/minute"  # noqa: S105 (a rate, not a token)
    rate_limit_oauth_authorize: str = "60/minute"
    login_lockout_threshold: int = Field(default=5, ge=1)
    login_lockout_base_seconds: int = Field(default=60, ge=1)
    login_lockout_max_seconds: int = Field(default=900, ge=1)
    login_failure_reset_seconds: int = Field(default=12 * 3600, ge=60)
    login_account_delay_threshold: int = Field(default=10, ge=1)
    login_account_delay_base_seconds: int = Field(default=1, ge=1)
    login_account_delay_max_seconds: int = Field(default=60, ge=1)
    login_ip_failures: str = "100/hour"
    login_known_source_days: int = Field(default=30, ge=1, le=400)
    rate_limit_ipv6_prefix: int = Field(default=64, ge=32, le=128)

    @field_validator(
        "rate_limit_anonymous",
        "rate_limit_authenticated",
        "rate_limit_login",
        "rate_limit_register",
        "rate_limit_refresh",
        "rate_limit_password_reset",
        "rate_limit_oauth_token",
        "rate_limit_oauth_authorize",
        "login_ip_failures",
    )
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError:
            raise ValueError("must look like 100/hour or 10/minute") from None
        return value


class WorkerSettings(Section):
    """Background work: the RabbitMQ broker, Celery, the outbox relay, email, webhooks.

    Without `broker_url` (the embedded default) an in-process runner executes the same
    jobs inside the API process and no event is published to RabbitMQ.
    """

    broker_url: SecretStr | None = None
    events_exchange: str = Field(default="gatehouse.events", min_length=1, max_length=200)
    # "<exchange>.recent": a bounded queue bound with "#", so every event type is
    # routable even before a consumer binds it; 0 declares none.
    events_recent_length: int = Field(default=10000, ge=0, le=10_000_000)
    # Celery queues are named "<prefix>.tasks", "<prefix>.webhooks", "<prefix>.dead".
    task_queue_prefix: str = Field(default="gatehouse", min_length=1, max_length=100)
    task_max_retries: int = Field(default=5, ge=0, le=20)
    task_retry_backoff_max_seconds: int = Field(default=600, ge=1, le=900)
    task_soft_time_limit_seconds: int = Field(default=120, ge=1, le=900)
    task_time_limit_seconds: int = Field(default=150, ge=1, le=1200)
    # Deliveries of one task message before the broker dead-letters it (a worker that
    # dies on it every time); RabbitMQ 3.x has no default limit.
    task_delivery_limit: int = Field(default=5, ge=1, le=100)
    worker_concurrency: int = Field(default=2, ge=1, le=64)
    outbox_batch_size: int = Field(default=100, ge=1, le=1000)
    outbox_sweep_seconds: float = Field(default=5.0, gt=0, le=300)
    outbox_retention_days: int = Field(default=7, ge=1)
    publish_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: str = "starttls"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    email_from: str = "Gatehouse <no-reply@localhost>"
    email_verification_ttl_seconds: int = Field(default=48 * 3600, ge=60)
    password_reset_ttl_seconds: int = Field(default=3600, ge=60, le=24 * 3600)
    webhook_allow_private_targets: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Seconds to wait before each retry after the first attempt (Standard Webhooks'
    # schedule: about 27 hours in all); the subscription is disabled when a delivery
    # has used them all.
    webhook_retry_schedule: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [5, 300, 1800, 7200, 18000, 36000, 36000]
    )

    _split = field_validator("webhook_retry_schedule", mode="before")(_split_list)

    @field_validator("broker_url")
    @classmethod
    def _amqp_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("amqp://", "amqps://")):
            raise ValueError("must start with amqp:// or amqps://")
        return value

    @field_validator("smtp_security")
    @classmethod
    def _valid_security(cls, value: str) -> str:
        if value not in {"starttls", "tls", "none"}:
            raise ValueError("must be 'starttls', 'tls' or 'none'")
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _valid_schedule(cls, value: list[int]) -> list[int]:
        if not value or any(int(step) < 0 for step in value):
            raise ValueError("must be a comma-separated list of seconds, at least one")
        return [int(step) for step in value]

    @model_validator(mode="after")
    def _limits(self) -> WorkerSettings:
        if self.task_time_limit_seconds <= self.task_soft_time_limit_seconds:
            raise ValueError(
                "GATEHOUSE_TASK_TIME_LIMIT_SECONDS must be > GATEHOUSE_TASK_SOFT_TIME_LIMIT_SECONDS"
            )
        return self


class AuditSettings(Section):
    """The audit trail and the retention of personal data (docs/privacy.md, docs/audit.md)."""

    # Keys the audit chain's HMAC: with it outside the database, a superuser cannot
    # rewrite rows and recompute the chain. Unset: generated into the data dir.
    audit_key: SecretStr | None = None
    audit_retention_days: int = Field(default=365, ge=1)
    audit_page_max: int = Field(default=500, ge=10, le=5000)
    # Soft-deleted users are purged (personal data erased) this long after deletion.
    erasure_grace_days: int = Field(default=30, ge=0, le=3650)
    inactive_user_days: int = Field(default=730, ge=30)

    @field_validator("audit_retention_days")
    @classmethod
    def _at_least_a_year(cls, value: int) -> int:
        if value < 365:
            raise ValueError("must be at least 365 (audit records are kept for a year or more)")
        return value

    @field_validator("audit_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value


class BackupSettings(Section):
    """`gatehouse backup` and `gatehouse restore` (docs/operations.md#backups-and-restore)."""

    # An age identity (AGE-SECRET-KEY-1…, as `age-keygen` prints it) that encrypts the
    # archives. Unset: generated into the data dir on the first backup (not in production).
    backup_key: SecretStr | None = None
    # Where `gatehouse backup` writes; None: `<data dir>/backups`.
    backup_dir: Path | None = None
    # Archives kept in that directory after each backup, newest first.
    backup_keep: int = Field(default=30, ge=1, le=10000)
    # Where pg_dump and pg_restore are (e.g. /usr/lib/postgresql/16/bin); None: PATH.
    backup_pg_bin_dir: Path | None = None

    @field_validator("backup_dir", "backup_pg_bin_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("backup_key")
    @classmethod
    def _age_identity(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        # The key line alone: a file written by `age-keygen -o` also has comment lines.
        for line in value.get_secret_value().splitlines():
            if line.strip().startswith("AGE-SECRET-KEY-1"):
                return SecretStr(line.strip())
        raise ValueError("must be an age identity (AGE-SECRET-KEY-1…, made by age-keygen)")


class EncryptionSettings(Section):
    """Secrets stored encrypted (webhook signing secrets): gatehouse.kit.encryption."""

    # `kid:base64key` entries (32-byte AES keys), comma- or newline-separated; the first
    # encrypts, every one decrypts. Unset: generated into the data dir (not in production).
    encryption_keys: SecretStr | None = None

    @field_validator("encryption_keys")
    @classmethod
    def _key_ring(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_keys(value.get_secret_value())
        return value


class MetricsAccess(StrEnum):
    """Who may read `GET /metrics`."""

    # A scraper on the same host (or behind the gateway's internal path).
    loopback = "loopback"
    # Anyone with `Authorization: Bearer <GATEHOUSE_METRICS_TOKEN>`.
    token = "token"  # noqa: S105 (a mode's name, not a secret)
    off = "off"  # not served (404), and requests are not counted


class ObservabilitySettings(Section):
    """Metrics, tracing and error tracking (docs/metrics.md, docs/operations.md)."""

    metrics_access: MetricsAccess = MetricsAccess.loopback
    metrics_token: SecretStr | None = None
    # Under it, `gatehouse serve --workers N` and `gatehouse worker --metrics-port N` each
    # keep a per-run directory of their processes' metric files (`serve-<port>`,
    # `worker-<port>`, emptied at start); None: `<data dir>/metrics`.
    metrics_dir: Path | None = None
    # OpenTelemetry: exporters and sampling come from the standard OTEL_* variables.
    tracing_enabled: bool = False
    sentry_dsn: SecretStr | None = None
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)

    @field_validator("metrics_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _token_when_asked(self) -> ObservabilitySettings:
        if self.metrics_access is MetricsAccess.token:
            token = self.metrics_token.get_secret_value() if self.metrics_token else ""
            if len(token) < 16:
                raise ValueError(
                    "GATEHOUSE_METRICS_ACCESS=token needs GATEHOUSE_METRICS_TOKEN "
                    "of at least 16 characters"
                )
        return self


class WebAuthnSettings(Section):
    """Passkeys (WebAuthn): the relying party browsers bind credentials to.

    Unset, each is derived from GATEHOUSE_PUBLIC_URL (gatehouse.passkeys.service.
    relying_party): its host is the RP ID and its origin the one origin allowed.
    """

    webauthn_rp_id: str | None = None
    webauthn_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webauthn_rp_name: str | None = None

    _split = field_validator("webauthn_origins", mode="before")(_split_list)

    @field_validator("webauthn_rp_id", "webauthn_rp_name", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webauthn_rp_id")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        # A registrable domain (or "localhost"): what the browser compares the page's
        # host with; a scheme, port or path here would match no page at all.
        if value is not None and not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", value):
            raise ValueError("must be a bare host name such as example.com (no scheme or port)")
        return value

    @field_validator("webauthn_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not re.fullmatch(r"https?://[^/?#\s]+", origin):
                raise ValueError(f"{origin!r}: each origin is scheme://host[:port], without a path")
        return value


class Settings(BaseModel):
    """The root: every section, read from the environment once."""

    model_config = ConfigDict(frozen=True)

    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    mfa: MfaSettings = Field(default_factory=MfaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    encryption: EncryptionSettings = Field(default_factory=EncryptionSettings)
    webauthn: WebAuthnSettings = Field(default_factory=WebAuthnSettings)

    @property
    def is_production(self) -> bool:
        return self.server.env is Environment.production

    @property
    def database_url(self) -> str:
        if self.database.database_url is not None:
            return self.database.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{self.server.data_dir.resolve() / 'gatehouse.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def broker_url(self) -> str | None:
        url = self.worker.broker_url
        return url.get_secret_value() if url is not None else None

    @property
    def mfa_required_roles(self) -> frozenset[str]:
        """The roles that must have a second factor (GATEHOUSE_MFA_REQUIRED_ROLES)."""
        if self.mfa.mfa_required_roles is not None:
            return frozenset(self.mfa.mfa_required_roles)
        return frozenset({"admin"}) if self.is_production else frozenset()

    @property
    def docs_enabled(self) -> bool:
        if self.server.docs_enabled is not None:
            return self.server.docs_enabled
        return not self.is_production

    @property
    def log_format(self) -> str:
        if self.server.log_format is not None:
            return self.server.log_format
        return "json" if self.is_production or not sys.stdout.isatty() else "console"

    def production_problems(self) -> list[str]:
        """What a production deployment must not run with."""
        if not self.is_production:
            return []
        problems = []
        if self.database.database_url is None or self.is_sqlite:
            problems.append("GATEHOUSE_DATABASE_URL: production needs PostgreSQL, not SQLite")
        if self.auth.jwt_private_key is None:
            problems.append(
                "GATEHOUSE_JWT_PRIVATE_KEY: production needs a configured signing key, "
                "not one generated into the data dir"
            )
        if self.audit.audit_key is None:
            problems.append(
                "GATEHOUSE_AUDIT_KEY: production needs a configured audit key, "
                "not one generated into the data dir"
            )
        if self.backup.backup_key is None:
            problems.append(
                "GATEHOUSE_BACKUP_KEY: production needs a configured backup key "
                "(age-keygen), not one generated into the data dir"
            )
        if self.encryption.encryption_keys is None:
            problems.append(
                "GATEHOUSE_ENCRYPTION_KEYS: production needs configured encryption keys, "
                "not ones generated into the data dir"
            )
        if "*" in self.server.cors_origins:
            problems.append("GATEHOUSE_CORS_ORIGINS: production refuses '*' (open CORS)")
        if self.auth.bcrypt_rounds < 10:
            problems.append("GATEHOUSE_BCRYPT_ROUNDS: production needs a cost of at least 10")
        if self.auth.admin_password is not None:
            problems.append(
                "GATEHOUSE_ADMIN_PASSWORD: production creates admins with "
                "'gatehouse create-admin', not from the environment"
            )
        return problems


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the variable."""


_SECRET_WORDS = ("secret", "key", "password", "url", "token", "dsn")


def _describe(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"] if not isinstance(part, int)]
        name = f"{PREFIX}{loc[-1].upper()}" if loc else "settings"
        if not loc and item["msg"].startswith("Value error, GATEHOUSE_"):
            lines.append(item["msg"].removeprefix("Value error, "))
            continue
        value = item.get("input")
        shown = "" if isinstance(value, dict) or value is None else f" (got {value!r})"
        # Never echo a secret; a database URL carries its password.
        if any(word in name.lower() for word in _SECRET_WORDS):
            shown = ""
        lines.append(f"{name}: {item['msg']}{shown}")
    return lines


def load_settings() -> Settings:
    """Read and validate every setting; raise ConfigError naming each bad variable."""
    sections: dict[str, Any] = {}
    problems: list[str] = []
    for key, field in Settings.model_fields.items():
        cls = field.annotation
        if not (isinstance(cls, type) and issubclass(cls, Section)):
            raise TypeError(f"Settings.{key} is not a settings section")
        try:
            sections[key] = cls()
        except ValidationError as exc:
            problems.extend(_describe(exc))
    if problems:
        raise ConfigError("; ".join(problems))
    settings = Settings(**sections)
    problems = settings.production_problems()
    if problems:
        raise ConfigError("; ".join(problems))
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
