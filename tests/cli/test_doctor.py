"""`gatehouse doctor`, as an operator runs it: on a healthy deployment, on a broken one,
and with this host's clock off the database's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gatehouse.db import migrate as migrations
from gatehouse.health.doctor import diagnose
from tests import services
from tests.cli.test_cli import Cli, cli
from tests.conftest import make_settings
from tests.redis_server import free_port
from tests.smtp import SmtpServer

__all__ = ["cli"]

CHECKS = [
    "configuration",
    "signing key",
    "audit key",
    "encryption keys",
    "database",
    "migrations",
    "clock",
    "redis",
    "broker",
    "smtp",
]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(credentials=("mailer", "mail-secret-1")).start()
    try:
        yield server
    finally:
        server.stop()


def env_of(settings: dict[str, Any]) -> dict[str, str]:
    return {f"GATEHOUSE_{name.upper()}": str(value) for name, value in settings.items()}


def by_check(out: str) -> dict[str, dict[str, str]]:
    findings = json.loads(out)
    assert [finding["check"] for finding in findings] == CHECKS
    return {finding["check"]: finding for finding in findings}


async def test_a_healthy_deployment_passes_every_check(
    cli: Cli, request: pytest.FixtureRequest, smtp: SmtpServer
) -> None:
    await cli.migrated()
    if cli.backend == "postgres":
        # The production shape: PostgreSQL, Redis, RabbitMQ and an SMTP server that
        # wants a login (the doctor logs in as a send would, and sends nothing).
        services.require("Redis", services.REDIS_URL)
        cli.env |= env_of(smtp.settings()) | {
            "GATEHOUSE_REDIS_URL": services.REDIS_URL,
            "GATEHOUSE_BROKER_URL": request.getfixturevalue("rabbitmq_url"),
        }

    result = await cli.run("doctor", "--json")

    assert result.code == 0, result.out
    findings = by_check(result.out)
    assert {check: f["status"] for check, f in findings.items()} == dict.fromkeys(CHECKS, "ok")
    assert findings["migrations"]["detail"] == f"at {migrations.head_revision()} (the code's head)"
    if cli.backend == "postgres":
        assert findings["database"]["detail"] == "PostgreSQL"
        assert "the database's clock is" in findings["clock"]["detail"]
        assert findings["smtp"]["detail"] == f"127.0.0.1:{smtp.port} (none)"
        assert smtp.messages == []
    else:
        assert findings["redis"]["detail"].startswith("not configured")


# The faults read the same on PostgreSQL; its healthy run covers its connection.
@pytest.mark.parametrize("cli", ["sqlite"], indirect=True)
async def test_a_broken_deployment_names_each_fault_and_its_fix(cli: Cli) -> None:
    await cli.migrated()
    await asyncio.to_thread(migrations.downgrade, cli.database_url, "-1")
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the point)
    redis_port, broker_port = free_port(), free_port()
    cli.env |= {
        "GATEHOUSE_JWT_PRIVATE_KEY": weak.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        # Free ports nothing listens on: connection refused.
        "GATEHOUSE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "GATEHOUSE_BROKER_URL": f"amqp://guest:broker-secret@127.0.0.1:{broker_port}/",
    }

    # The embedded default's generated key file, cut short by hand.
    cli.data_dir.mkdir(parents=True, exist_ok=True)
    (cli.data_dir / "encryption.keys").write_text("k1:c2hvcnQ=\n")

    table = await cli.run("doctor")
    as_json = await cli.run("doctor", "--json")

    assert table.code == as_json.code == 1
    findings = by_check(as_json.out)
    failing = {check for check, finding in findings.items() if finding["status"] == "fail"}
    assert failing == {"signing key", "encryption keys", "migrations", "redis", "broker"}
    assert "entry 1 (k1): the key must be 32 bytes, not 5" in findings["encryption keys"]["detail"]
    assert "GATEHOUSE_ENCRYPTION_KEYS" in findings["encryption keys"]["fix"]
    assert "RSA 1024 bits, at least 2048 are needed" in findings["signing key"]["detail"]
    assert "openssl genpkey" in findings["signing key"]["fix"]
    assert findings["migrations"]["fix"] == "run `gatehouse migrate`"
    assert f"127.0.0.1:{redis_port}" in findings["redis"]["detail"]
    assert f"127.0.0.1:{broker_port}" in findings["broker"]["detail"]
    # What an operator reads in the table: each fault, its fix, never a password.
    for text in ("run `gatehouse migrate`", "GATEHOUSE_REDIS_URL", "GATEHOUSE_BROKER_URL"):
        assert text in table.out
    assert "at least one check failed" in table.out
    assert "broker-secret" not in table.out + as_json.out
    assert "Traceback" not in table.out + as_json.out


@pytest.mark.parametrize("cli", ["sqlite"], indirect=True)
async def test_the_configuration_is_checked_first(cli: Cli) -> None:
    cli.env |= {"GATEHOUSE_ENV": "production"}

    result = await cli.run("doctor", "--json")

    assert result.code == 1
    (finding,) = json.loads(result.out)
    assert finding["check"] == "configuration"
    assert finding["status"] == "fail"
    assert (
        "GATEHOUSE_JWT_PRIVATE_KEY: production needs a configured signing key"
        in (finding["detail"])
    )


@pytest.mark.parametrize(("seconds", "status"), [(0, "ok"), (5, "warn"), (120, "fail")])
async def test_clock_skew_against_the_database(
    postgres_url: str, tmp_path: Path, signing_key_pem: str, seconds: int, status: str
) -> None:
    settings = make_settings(postgres_url, tmp_path, signing_key_pem)
    # This host's clock moved ahead of the database's (which time_machine cannot move).
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=seconds), tick=True):
        findings = {f.check: f for f in await diagnose(lambda: settings)}

    clock = findings["clock"]
    assert clock.status == status, clock
    if seconds:
        assert "behind this host's" in clock.detail
        assert "NTP" in clock.fix


@pytest.mark.parametrize("cli", ["postgres"], indirect=True)
async def test_a_configured_replica_is_checked_after_the_clock(cli: Cli) -> None:
    await cli.migrated()
    # The primary itself stands in for a replica that is up: no standby, so no lag.
    cli.env["GATEHOUSE_DATABASE_REPLICA_URL"] = cli.database_url
    up = await cli.run("doctor", "--json")
    port = free_port()
    cli.env["GATEHOUSE_DATABASE_REPLICA_URL"] = (
        f"postgresql+asyncpg://gatehouse:replica-secret@127.0.0.1:{port}/gatehouse"
    )
    down = await cli.run("doctor", "--json")

    assert up.code == 0, up.out
    checks = [finding["check"] for finding in json.loads(up.out)]
    assert checks == [*CHECKS[:7], "replica", *CHECKS[7:]]
    (found,) = (f for f in json.loads(up.out) if f["check"] == "replica")
    assert found["status"] == "ok"
    assert found["detail"].endswith("0.0 s behind the primary")

    assert down.code == 1
    (found,) = (f for f in json.loads(down.out) if f["check"] == "replica")
    assert found["status"] == "fail"
    assert f"127.0.0.1:{port}" in found["detail"]
    assert "GATEHOUSE_DATABASE_REPLICA_URL" in found["fix"]
    assert "replica-secret" not in down.out
