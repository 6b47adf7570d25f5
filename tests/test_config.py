"""Settings: `GATEHOUSE_*` variables, one clear line per mistake, secrets from files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gatehouse.app import create_app
from gatehouse.config import (
    PREFIX,
    ConfigError,
    Section,
    Settings,
    get_settings,
    load_settings,
)
from gatehouse.runtime import Runtime
from tests.conftest import make_settings
from tests.factories import assert_envelope

# Every section of Settings, so a new one cannot escape the checks below.
SECTIONS: list[type[Section]] = [
    field.annotation
    for field in Settings.model_fields.values()
    if isinstance(field.annotation, type) and issubclass(field.annotation, Section)
]
GATEHOUSE = Path(sys.executable).parent / "gatehouse"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Only what a test sets: no GATEHOUSE_* from the developer's shell."""
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEHOUSE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def config_error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message, message
    return message


# --- names --------------------------------------------------------------------------------


def test_every_setting_is_read_from_a_gatehouse_variable() -> None:
    for section in SECTIONS:
        assert section.model_config["env_prefix"] == "GATEHOUSE_"
        for name, field in section.model_fields.items():
            # No alias: the variable is exactly GATEHOUSE_<FIELD NAME>.
            assert field.alias is None, name
            assert field.validation_alias is None, name


@pytest.mark.parametrize(
    ("variable", "value", "read", "expected"),
    [
        ("GATEHOUSE_PORT", "8123", lambda s: s.server.port, 8123),
        ("GATEHOUSE_LOG_LEVEL", "debug", lambda s: s.server.log_level, "DEBUG"),
        (
            "GATEHOUSE_TRUSTED_PROXIES",
            "10.0.0.0/8, 192.168.1.1",
            lambda s: s.server.trusted_proxies,
            ["10.0.0.0/8", "192.168.1.1"],
        ),
        ("GATEHOUSE_BCRYPT_ROUNDS", "11", lambda s: s.auth.bcrypt_rounds, 11),
        ("GATEHOUSE_REGISTRATION_ENABLED", "false", lambda s: s.auth.registration_enabled, False),
        (
            "GATEHOUSE_BROKER_URL",
            "amqp://u:p@mq:5672/gh",
            lambda s: s.broker_url,
            "amqp://u:p@mq:5672/gh",
        ),
        (
            "GATEHOUSE_WEBHOOK_RETRY_SCHEDULE",
            "1, 60,3600",
            lambda s: s.worker.webhook_retry_schedule,
            [1, 60, 3600],
        ),
        ("GATEHOUSE_SMTP_SECURITY", "tls", lambda s: s.worker.smtp_security, "tls"),
    ],
)
def test_a_gatehouse_variable_sets_its_setting(
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    read: Callable[[Settings], object],
    expected: object,
) -> None:
    assert read(load_settings()) != expected
    monkeypatch.setenv(variable, value)
    assert read(load_settings()) == expected


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9999")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://elsewhere/db")
    monkeypatch.setenv("JWT_PRIVATE_KEY", "not-ours")
    settings = load_settings()
    assert settings.server.port == 8000
    assert settings.database.database_url is None
    assert settings.auth.jwt_private_key is None


# --- wrong values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEHOUSE_PORT", "abc"),
        ("GATEHOUSE_PORT", "70000"),
        ("GATEHOUSE_DATABASE_URL", "mysql://x"),
        ("GATEHOUSE_DATABASE_URL", "postgresql://no-async-driver/db"),
        ("GATEHOUSE_TRUSTED_PROXIES", "notanip"),
        ("GATEHOUSE_TRUSTED_PROXIES", "10.0.0.0/8,300.1.1.1"),
        ("GATEHOUSE_ENV", "staging"),
        ("GATEHOUSE_LOG_LEVEL", "LOUD"),
        ("GATEHOUSE_LOG_FORMAT", "xml"),
        ("GATEHOUSE_BCRYPT_ROUNDS", "3"),
        ("GATEHOUSE_ACCESS_TOKEN_TTL_SECONDS", "86400"),
        ("GATEHOUSE_REGISTRATION_ENABLED", "maybe"),
        ("GATEHOUSE_MAX_BODY_BYTES", "10"),
        ("GATEHOUSE_DATABASE_POOL_MAX", "1"),
        ("GATEHOUSE_REFRESH_TOKEN_MAX_SECONDS", "120"),
        ("GATEHOUSE_BROKER_URL", "redis://localhost:6379/0"),
        ("GATEHOUSE_SMTP_SECURITY", "ssl3"),
        ("GATEHOUSE_WEBHOOK_RETRY_SCHEDULE", "5,-1"),
        ("GATEHOUSE_WEBHOOK_RETRY_SCHEDULE", ""),
        # Past RabbitMQ's consumer timeout a running task's channel would be closed.
        ("GATEHOUSE_TASK_TIME_LIMIT_SECONDS", "3600"),
        ("GATEHOUSE_TASK_RETRY_BACKOFF_MAX_SECONDS", "3600"),
        ("GATEHOUSE_TASK_TIME_LIMIT_SECONDS", "60"),
        ("GATEHOUSE_AUDIT_RETENTION_DAYS", "364"),
        ("GATEHOUSE_AUDIT_KEY", "short"),
        ("GATEHOUSE_BACKUP_KEY", "not-an-age-identity"),
        ("GATEHOUSE_BACKUP_KEEP", "0"),
        ("GATEHOUSE_ENCRYPTION_KEYS", "k1"),
        ("GATEHOUSE_ENCRYPTION_KEYS", ","),
    ],
)
def test_a_wrong_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    message = config_error(monkeypatch, **{variable: value})
    assert message.startswith(variable), message


def test_every_wrong_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(
        monkeypatch,
        GATEHOUSE_PORT="abc",
        GATEHOUSE_DATABASE_URL="mysql://x",
        GATEHOUSE_BCRYPT_ROUNDS="99",
    )
    for variable in ("GATEHOUSE_PORT", "GATEHOUSE_DATABASE_URL", "GATEHOUSE_BCRYPT_ROUNDS"):
        assert variable in message


def test_a_wrong_database_url_does_not_echo_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(
        monkeypatch, GATEHOUSE_DATABASE_URL="mysql://gatehouse:Pa55-in-the-url@db/gatehouse"
    )
    assert message.startswith("GATEHOUSE_DATABASE_URL")
    assert "Pa55-in-the-url" not in message


# --- *_FILE secrets --------------------------------------------------------------------------


def test_jwt_key_is_read_from_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, signing_key_pem: str
) -> None:
    key_file = tmp_path / "jwt.pem"
    key_file.write_text(signing_key_pem + "\n")
    monkeypatch.setenv("GATEHOUSE_JWT_PRIVATE_KEY_FILE", str(key_file))
    key = load_settings().auth.jwt_private_key
    assert key is not None
    assert key.get_secret_value() == signing_key_pem.strip()


def test_database_url_is_read_from_a_file_and_wins_over_the_plain_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = "postgresql+asyncpg://gatehouse:s3cret@db:5432/gatehouse"
    url_file = tmp_path / "database-url"
    url_file.write_text(url + "\n")
    monkeypatch.setenv("GATEHOUSE_DATABASE_URL", "sqlite+aiosqlite:///ignored.db")
    monkeypatch.setenv("GATEHOUSE_DATABASE_URL_FILE", str(url_file))
    settings = load_settings()
    assert settings.database_url == url
    assert "s3cret" not in repr(settings)


def test_a_file_secret_is_validated_like_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url_file = tmp_path / "database-url"
    url_file.write_text("mysql://root:hunter2@db/x")
    message = config_error(monkeypatch, GATEHOUSE_DATABASE_URL_FILE=str(url_file))
    assert "GATEHOUSE_DATABASE_URL" in message
    assert "hunter2" not in message


def test_a_missing_secret_file_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "jwt.pem"
    message = config_error(monkeypatch, GATEHOUSE_JWT_PRIVATE_KEY_FILE=str(missing))
    assert message.startswith("GATEHOUSE_JWT_PRIVATE_KEY_FILE")
    assert str(missing) in message
    assert "No such file" in message


# --- DP-05: production refuses to start unsafe -----------------------------------------------


# An age identity made for these tests (age-keygen's format); it encrypts nothing here.
BACKUP_KEY = "AGE-SECRET-KEY-143FA4CP3YDA9Z5KYUEJZRQWT5SASL73XEEF6AHZNWLXKS6C73T4STVZH3L"
# One encryption key, as `echo "k1:$(openssl rand -base64 32)"` makes it.
ENCRYPTION_KEYS = "k1:qoN5AdYGDrQxLtsX4WDgmwpuH9y1U5yB9gxUJjt6Tb8="


@pytest.fixture
def production_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, signing_key_pem: str
) -> Iterator[None]:
    """A production configuration that starts; each test breaks one thing."""
    monkeypatch.setenv("GATEHOUSE_ENV", "production")
    monkeypatch.setenv("GATEHOUSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GATEHOUSE_DATABASE_URL", "postgresql+asyncpg://gatehouse:pw@db/gatehouse")
    monkeypatch.setenv("GATEHOUSE_JWT_PRIVATE_KEY", signing_key_pem)
    monkeypatch.setenv("GATEHOUSE_AUDIT_KEY", "an-audit-key-of-at-least-32-characters")
    monkeypatch.setenv("GATEHOUSE_BACKUP_KEY", BACKUP_KEY)
    monkeypatch.setenv("GATEHOUSE_ENCRYPTION_KEYS", ENCRYPTION_KEYS)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_sound_production_configuration_starts(production_env: None) -> None:
    settings = load_settings()
    assert settings.is_production
    assert not settings.docs_enabled
    assert settings.auth.bcrypt_rounds >= 12


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEHOUSE_DATABASE_URL", None),
        ("GATEHOUSE_DATABASE_URL", "sqlite+aiosqlite:///gatehouse.db"),
        ("GATEHOUSE_JWT_PRIVATE_KEY", None),
        ("GATEHOUSE_CORS_ORIGINS", "*"),
        ("GATEHOUSE_CORS_ORIGINS", "https://app.example.com,*"),
        ("GATEHOUSE_BCRYPT_ROUNDS", "9"),
        ("GATEHOUSE_ADMIN_PASSWORD", "Adm1n-from-the-env"),
        ("GATEHOUSE_AUDIT_KEY", None),
        ("GATEHOUSE_BACKUP_KEY", None),
        ("GATEHOUSE_ENCRYPTION_KEYS", None),
    ],
)
def test_production_refuses_an_unsafe_setting(
    production_env: None, monkeypatch: pytest.MonkeyPatch, variable: str, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(variable), caught.value
    assert "Adm1n-from-the-env" not in str(caught.value)


def test_a_short_signing_key_is_refused_at_start_up(tmp_path: Path) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point
    pem = weak.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db", tmp_path, pem)
    with pytest.raises(ConfigError, match=r"^GATEHOUSE_JWT_PRIVATE_KEY: .*2048 bits"):
        Runtime.create(settings)


async def test_production_serves_no_docs(production_env: None) -> None:
    settings = load_settings()
    app = create_app(settings=settings)
    app.state.runtime = None  # never reached: unknown routes need no database
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/api/v1/openapi.json"):
            assert_envelope(await client.get(path), 404, "NOT_FOUND")


def test_production_requires_mfa_of_admins_by_default(
    production_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().mfa_required_roles == {"admin"}
    # Set empty, it requires it of nobody, in production too; a list is taken as given.
    monkeypatch.setenv("GATEHOUSE_MFA_REQUIRED_ROLES", "")
    assert load_settings().mfa_required_roles == frozenset()
    monkeypatch.setenv("GATEHOUSE_MFA_REQUIRED_ROLES", "admin, readonly")
    assert load_settings().mfa_required_roles == {"admin", "readonly"}


def test_the_embedded_default_requires_mfa_of_nobody(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    # The embedded default: no variable but the data dir, SQLite, no broker.
    assert (settings.is_production, settings.is_sqlite, settings.broker_url) == (
        False,
        True,
        None,
    )
    assert settings.mfa_required_roles == frozenset()
    monkeypatch.setenv("GATEHOUSE_MFA_REQUIRED_ROLES", "user")
    assert load_settings().mfa_required_roles == {"user"}


# --- the CLI ------------------------------------------------------------------------------------


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    return subprocess.run(
        [str(GATEHOUSE), *args],
        env={**clean, "GATEHOUSE_DATA_DIR": str(tmp_path / "data"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEHOUSE_PORT", "abc"),
        ("GATEHOUSE_DATABASE_URL", "mysql://root:hunter2@db/x"),
        ("GATEHOUSE_TRUSTED_PROXIES", "notanip"),
        ("GATEHOUSE_JWT_PRIVATE_KEY_FILE", "/nowhere/jwt.pem"),
        # Valid as a string, refused when the runtime loads it.
        ("GATEHOUSE_JWT_PRIVATE_KEY", "not a pem"),
    ],
)
def test_serve_with_a_bad_variable_exits_with_one_line_naming_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    result = run_cli(tmp_path, "serve", **{variable: value})
    assert result.returncode != 0
    output = (result.stdout + result.stderr).strip()
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert variable in output
    assert "hunter2" not in output
    assert "serving" not in output.lower()


def test_every_setting_is_documented() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    missing = [
        f"{PREFIX}{name.upper()}"
        for section in SECTIONS
        for name in section.model_fields
        if f"{PREFIX}{name.upper()}" not in doc
    ]
    assert missing == []


def test_metrics_by_token_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(monkeypatch, GATEHOUSE_METRICS_ACCESS="token")
    assert message.startswith("GATEHOUSE_METRICS_ACCESS=token needs GATEHOUSE_METRICS_TOKEN")
    short = config_error(
        monkeypatch, GATEHOUSE_METRICS_ACCESS="token", GATEHOUSE_METRICS_TOKEN="hunter2"
    )
    assert "hunter2" not in short
    assert config_error(monkeypatch, GATEHOUSE_METRICS_ACCESS="public").startswith(
        "GATEHOUSE_METRICS_ACCESS: Input should be 'loopback', 'token' or 'off'"
    )


# --- the read replica ---------------------------------------------------------------------

REPLICA = "postgresql+asyncpg://gatehouse:hunter2@replica:5432/gatehouse"


def test_a_replica_needs_a_postgresql_primary(monkeypatch: pytest.MonkeyPatch) -> None:
    # No primary URL is the embedded SQLite default: it has no replica.
    message = config_error(monkeypatch, GATEHOUSE_DATABASE_REPLICA_URL=REPLICA)
    assert message.startswith("GATEHOUSE_DATABASE_REPLICA_URL needs a PostgreSQL primary")
    assert "hunter2" not in message
    sqlite = config_error(
        monkeypatch,
        GATEHOUSE_DATABASE_URL="sqlite+aiosqlite:///gatehouse.db",
        GATEHOUSE_DATABASE_REPLICA_URL=REPLICA,
    )
    assert sqlite.startswith("GATEHOUSE_DATABASE_REPLICA_URL needs a PostgreSQL primary")


def test_a_replica_uses_the_primarys_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(
        monkeypatch,
        GATEHOUSE_DATABASE_URL="postgresql+asyncpg://gatehouse:hunter2@primary/gatehouse",
        GATEHOUSE_DATABASE_REPLICA_URL="postgresql+psycopg://gatehouse:hunter2@replica/gatehouse",
    )
    assert message == (
        "GATEHOUSE_DATABASE_REPLICA_URL must start with postgresql+asyncpg://, the primary's driver"
    )


def test_a_replica_of_a_postgresql_primary_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_DATABASE_URL", "postgresql+asyncpg://gatehouse@primary/gatehouse")
    monkeypatch.setenv("GATEHOUSE_DATABASE_REPLICA_URL", REPLICA)
    monkeypatch.setenv("GATEHOUSE_DATABASE_REPLICA_STICKY_SECONDS", "2.5")
    database = load_settings().database
    assert database.database_replica_url is not None
    assert database.database_replica_url.get_secret_value() == REPLICA
    assert database.database_replica_sticky_seconds == 2.5
    assert database.database_replica_max_lag_seconds == 30.0
