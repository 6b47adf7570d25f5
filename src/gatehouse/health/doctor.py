"""`gatehouse doctor`: what an operator checks before (and after) putting an instance in
service, each with what to do about it.

Read only: nothing is created or migrated (a signing, audit or encryption key not
generated yet is reported as such, not generated). The connectivity checks are the readiness probe's
(`gatehouse.health.checks`), run from here with a longer timeout and their error shown,
since the operator, not a load balancer, reads the answer.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr
from sqlalchemy import text

from gatehouse.audit import chain
from gatehouse.auth import tokens
from gatehouse.cache.redis import RedisClient
from gatehouse.config import ConfigError, Settings, load_settings
from gatehouse.db import migrate as migrations
from gatehouse.db.engine import Database
from gatehouse.db.replica import Replica
from gatehouse.emails.sender import Mailer
from gatehouse.health.broker import BrokerProbe
from gatehouse.health.checks import ping_redis, probe_error, url_passwords
from gatehouse.keys import ring
from gatehouse.kit.encryption import parse_keys

Status = Literal["ok", "warn", "fail"]

# An operator waits for a connection that a load balancer's probe would give up on.
TIMEOUT_SECONDS = 5.0
# Clock skew between this host and the database: above the first a warning (the
# timestamps the database and the application write disagree visibly); above the
# token leeway a failure (this host's tokens are refused, or outlive their expiry, on
# hosts with the right time).
SKEW_WARN_SECONDS = 2.0
# An audit key shorter than this is refused when configured (config.AuditSettings).
AUDIT_KEY_MIN_CHARS = 32
NTP_FIX = (
    "synchronise the clocks with NTP (chrony, systemd-timesyncd) on this host and the database's"
)


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def diagnose(load: Callable[[], Settings] = load_settings) -> list[Finding]:
    """Every check, in the order an operator fixes them: configuration first (without
    it nothing else can be checked), then keys, dependencies, schema and clock."""
    try:
        settings = load()
    except ConfigError as exc:
        return [Finding("configuration", "fail", str(exc), "set the variables named above")]
    findings = [
        _configuration(settings),
        _signing_key(settings),
        _audit_key(settings),
        _encryption_keys(settings),
    ]
    passwords = url_passwords(settings)
    database = Database(settings)
    try:
        error = await probe_error(database.ping, passwords, within=TIMEOUT_SECONDS)
        if error is None:
            findings.append(Finding("database", "ok", _where(settings)))
            findings.append(await _migrations(database))
            findings.append(await _clock(database, settings))
            if database.replica is not None:
                findings.append(await _replica(database.replica, settings, passwords))
        else:
            findings.append(
                Finding(
                    "database",
                    "fail",
                    f"{_where(settings)}: {error}",
                    "check GATEHOUSE_DATABASE_URL and that the database server is up",
                )
            )
    finally:
        await database.dispose()
    findings.append(await _redis(settings, passwords))
    findings.append(await _broker(settings, passwords))
    findings.append(await _smtp(settings, passwords))
    return findings


def failed(findings: list[Finding]) -> bool:
    return any(finding.status == "fail" for finding in findings)


def _where(settings: Settings) -> str:
    return "SQLite" if settings.is_sqlite else "PostgreSQL"


def _configuration(settings: Settings) -> Finding:
    # What load_settings refuses in production is a failure above; these are allowed,
    # and usually a mistake there.
    if not settings.is_production:
        return Finding("configuration", "ok", f"loaded ({settings.server.env.value})")
    warnings: list[tuple[str, str]] = []
    if settings.redis.redis_url is None and settings.server.workers > 1:
        warnings.append(
            (
                f"{settings.server.workers} workers without Redis: each counts login "
                "failures and rate limits on its own",
                "set GATEHOUSE_REDIS_URL",
            )
        )
    if not settings.rate_limit.rate_limit_enabled:
        warnings.append(
            (
                "the rate limits and the login protection are off",
                "unset GATEHOUSE_RATE_LIMIT_ENABLED (on by default)",
            )
        )
    if settings.worker.smtp_host is None:
        warnings.append(
            (
                "no SMTP server: mails are written to files in the data directory, not sent",
                "set GATEHOUSE_SMTP_HOST",
            )
        )
    if settings.auth.cookie_secure is False:
        warnings.append(
            (
                "the session cookies are sent over plain HTTP too",
                "unset GATEHOUSE_COOKIE_SECURE (automatic) or set it to true",
            )
        )
    if not warnings:
        return Finding("configuration", "ok", "loaded (production)")
    return Finding(
        "configuration",
        "warn",
        "; ".join(detail for detail, _ in warnings),
        "; ".join(fix for _, fix in warnings),
    )


def _exposed(path: Path) -> bool:
    """Readable or writable by anyone but the owner."""
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def _key_text(
    name: str, configured: SecretStr | None, variable: str, path: Path
) -> tuple[str, str] | Finding:
    """A key's text and where it came from: the setting, else the file the embedded
    default generated (a Finding when there is none yet)."""
    if configured is not None:
        return configured.get_secret_value(), variable
    if path.exists():
        return path.read_text(), str(path)
    return Finding(name, "ok", "none yet: generated in the data directory on first start")


def _checked(name: str, detail: str, configured: SecretStr | None, path: Path) -> Finding:
    """A key that loads: a warning when its generated file is open to other users."""
    if configured is None and _exposed(path):
        return Finding(name, "warn", f"{detail}: readable by other users", f"chmod 600 {path}")
    return Finding(name, "ok", detail)


def _signing_key(settings: Settings) -> Finding:
    name = "signing key"
    configured = settings.auth.jwt_private_key
    path = settings.server.data_dir / tokens.KEY_FILE
    found = _key_text(name, configured, "GATEHOUSE_JWT_PRIVATE_KEY", path)
    if isinstance(found, Finding):
        return found
    pem, source = found
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        return Finding(name, "fail", f"{source}: not an unencrypted PEM private key", _NEW_KEY_FIX)
    if not isinstance(key, rsa.RSAPrivateKey):
        return Finding(name, "fail", f"{source}: not an RSA key (RS256 needs one)", _NEW_KEY_FIX)
    if key.key_size < tokens.MIN_RSA_BITS:
        return Finding(
            name,
            "fail",
            f"{source}: RSA {key.key_size} bits, at least {tokens.MIN_RSA_BITS} are needed",
            _NEW_KEY_FIX,
        )
    return _checked(name, f"RSA {key.key_size} bits ({source})", configured, path)


_NEW_KEY_FIX = (
    "generate one: openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
    "(docs/operations.md, rotating the signing key)"
)


def _audit_key(settings: Settings) -> Finding:
    name = "audit key"
    if settings.audit.audit_key is not None:
        # Its length is checked when the settings load.
        return Finding(name, "ok", "GATEHOUSE_AUDIT_KEY")
    path = settings.server.data_dir / chain.KEY_FILE
    if not path.exists():
        return Finding(name, "ok", "none yet: generated in the data directory on first use")
    if len(path.read_text().strip()) < AUDIT_KEY_MIN_CHARS:
        return Finding(
            name,
            "fail",
            f"{path}: shorter than {AUDIT_KEY_MIN_CHARS} characters",
            "set GATEHOUSE_AUDIT_KEY (docs/audit.md, tamper evidence)",
        )
    return _checked(name, str(path), None, path)


def _encryption_keys(settings: Settings) -> Finding:
    name = "encryption keys"
    configured = settings.encryption.encryption_keys
    path = settings.server.data_dir / ring.KEY_FILE
    # A configured ring was validated when the settings loaded; the file was not.
    found = _key_text(name, configured, "GATEHOUSE_ENCRYPTION_KEYS", path)
    if isinstance(found, Finding):
        return found
    text, source = found
    try:
        kids = [kid for kid, _ in parse_keys(text)]
    except ValueError as exc:
        return Finding(
            name,
            "fail",
            f"{source}: {exc}",
            "set GATEHOUSE_ENCRYPTION_KEYS (docs/configuration.md, encryption of stored secrets)",
        )
    detail = f"{len(kids)} key(s), encrypting with {kids[0]!r} ({source})"
    return _checked(name, detail, configured, path)


async def _migrations(database: Database) -> Finding:
    name = "migrations"
    current = await migrations.current_revision(database.engine)
    head = migrations.head_revision()
    if current == head:
        return Finding(name, "ok", f"at {head} (the code's head)")
    if current is None:
        return Finding(name, "fail", "the database has no schema", "run `gatehouse migrate`")
    script = ScriptDirectory.from_config(migrations.alembic_config(""))
    try:
        script.get_revision(current)
    except CommandError:
        return Finding(
            name,
            "fail",
            f"the database is at {current}, which this code does not know (migrated by a "
            "newer version?)",
            "run the version that migrated it, or downgrade with that version's "
            "`gatehouse migrate downgrade`",
        )
    return Finding(
        name,
        "fail",
        f"the database is at {current}, the code at {head}",
        "run `gatehouse migrate`",
    )


async def _clock(database: Database, settings: Settings) -> Finding:
    name = "clock"
    if settings.is_sqlite:
        return Finding(name, "ok", "SQLite: the database keeps this host's time")
    async with database.engine.connect() as conn:
        before = time.time()
        db_now = (await conn.execute(text("SELECT now()"))).scalar_one()
        after = time.time()
    # The database read its clock somewhere within the round trip: its middle.
    local = datetime.fromtimestamp((before + after) / 2, UTC)
    skew = (db_now - local).total_seconds()
    direction = "ahead of" if skew >= 0 else "behind"
    detail = f"the database's clock is {abs(skew):.1f} s {direction} this host's"
    leeway = settings.auth.jwt_leeway_seconds
    if abs(skew) > max(leeway, SKEW_WARN_SECONDS):
        return Finding(name, "fail", f"{detail} (more than the token leeway, {leeway} s)", NTP_FIX)
    if abs(skew) > SKEW_WARN_SECONDS:
        return Finding(name, "warn", detail, NTP_FIX)
    return Finding(name, "ok", detail)


async def _dependency(
    name: str,
    probe: Callable[[], Awaitable[None]],
    passwords: list[str],
    where: str,
    fix: str,
) -> Finding:
    error = await probe_error(probe, passwords, within=TIMEOUT_SECONDS)
    if error is None:
        return Finding(name, "ok", where)
    return Finding(name, "fail", f"{where}: {error}", fix)


async def _replica(replica: Replica, settings: Settings, passwords: list[str]) -> Finding:
    url = settings.database.database_replica_url
    where = _host(url.get_secret_value()) if url is not None else "replica"
    lag: list[float] = []

    async def probe() -> None:
        lag.append(await replica.measure_lag())

    found = await _dependency(
        "replica",
        probe,
        passwords,
        where,
        "check GATEHOUSE_DATABASE_REPLICA_URL and that the replica is up; meanwhile its "
        "reads go to the primary",
    )
    if found.status != "ok" or not lag:
        return found
    detail = f"{where}, {lag[0]:.1f} s behind the primary"
    limit = settings.database.database_replica_max_lag_seconds
    if lag[0] > limit:
        return Finding(
            "replica",
            "warn",
            f"{detail} (over GATEHOUSE_DATABASE_REPLICA_MAX_LAG_SECONDS, {limit:g} s: skipped)",
            "look at the replica's replay (I/O, a long query holding it back)",
        )
    return Finding("replica", "ok", detail)


def _host(url: str) -> str:
    """`host:port` of a URL, never its credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname or url)


async def _redis(settings: Settings, passwords: list[str]) -> Finding:
    url = settings.redis.redis_url
    if url is None:
        return Finding("redis", "ok", "not configured: caches and counters in process memory")
    client = RedisClient(settings.redis)
    try:
        return await _dependency(
            "redis",
            lambda: ping_redis(client),
            passwords,
            _host(url.get_secret_value()),
            "check GATEHOUSE_REDIS_URL and that Redis is up",
        )
    finally:
        await client.close()


async def _broker(settings: Settings, passwords: list[str]) -> Finding:
    url = settings.broker_url
    if url is None:
        return Finding("broker", "ok", "not configured: jobs run inside `gatehouse serve`")
    probe = BrokerProbe(url)
    try:
        return await _dependency(
            "broker",
            probe.ping,
            passwords,
            _host(url),
            "check GATEHOUSE_BROKER_URL (its vhost, user and password) and that RabbitMQ is up",
        )
    finally:
        await probe.aclose()


async def _smtp(settings: Settings, passwords: list[str]) -> Finding:
    worker = settings.worker
    if worker.smtp_host is None:
        return Finding("smtp", "ok", "not configured: mails are written to the data directory")
    password = worker.smtp_password.get_secret_value() if worker.smtp_password else None
    return await _dependency(
        "smtp",
        Mailer(settings).probe,
        [*passwords, *([password] if password else [])],
        f"{worker.smtp_host}:{worker.smtp_port} ({worker.smtp_security})",
        "check GATEHOUSE_SMTP_HOST, _PORT, _SECURITY and the credentials",
    )
