"""The real `gatehouse` command, run as a subprocess on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from gatehouse.app import create_app
from gatehouse.config import AuthSettings, DatabaseSettings, ServerSettings, Settings
from gatehouse.db import migrate as migrations
from gatehouse.runtime import Runtime
from tests import services
from tests.processes import ServerProcess, start, stop, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GATEHOUSE = str(BIN / "gatehouse")
PYTHON = str(BIN / "python")
STRONG = "plum-Kettle-42-river"


@dataclass
class Result:
    code: int
    out: str  # stdout and stderr together, as an operator reads them


@dataclass
class Cli:
    backend: str
    data_dir: Path
    database_url: str
    env: dict[str, str]

    async def run(self, *args: str, stdin: str = "", program: str = GATEHOUSE) -> Result:
        proc = await asyncio.create_subprocess_exec(
            program,
            *args,
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(stdin.encode()), 180)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        return Result(proc.returncode or 0, out.decode())

    async def ok(self, *args: str, stdin: str = "", program: str = GATEHOUSE) -> Result:
        result = await self.run(*args, stdin=stdin, program=program)
        assert result.code == 0, result.out
        return result

    async def migrated(self) -> None:
        """Prepare the schema in-process, for tests about other commands (alembic runs its
        own event loop, hence the thread)."""
        await asyncio.to_thread(migrations.upgrade, self.database_url)

    async def scalar(self, sql: str) -> Any:
        engine = create_async_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text(sql))).scalar()
        finally:
            await engine.dispose()

    async def tables(self) -> set[str]:
        engine = create_async_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    def settings(self) -> Settings:
        """The settings the CLI itself reads, for talking to the same database in-process."""
        return Settings(
            server=ServerSettings(env="development", data_dir=self.data_dir),
            database=DatabaseSettings(
                database_url=self.database_url if self.backend == "postgres" else None
            ),
            auth=AuthSettings(bcrypt_rounds=4),
        )


@pytest.fixture(params=["sqlite", "postgres"])
async def cli(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cli]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    data_dir = tmp_path / "data"
    env |= {
        "GATEHOUSE_DATA_DIR": str(data_dir),
        "GATEHOUSE_BCRYPT_ROUNDS": "4",
        "GATEHOUSE_LOG_FORMAT": "json",
        "COLUMNS": "120",
        "NO_COLOR": "1",
    }
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{data_dir.resolve() / 'gatehouse.db'}"
        yield Cli("sqlite", data_dir, url, env)
        return
    services.require("PostgreSQL", services.POSTGRES_ADMIN_URL)
    name = f"gatehouse_cli_{uuid.uuid4().hex[:10]}"
    await services.admin_sql(f'CREATE DATABASE "{name}"')
    rendered = (
        make_url(services.POSTGRES_ADMIN_URL)
        .set(database=name)
        .render_as_string(hide_password=False)
    )
    try:
        yield Cli("postgres", data_dir, rendered, env | {"GATEHOUSE_DATABASE_URL": rendered})
    finally:
        await services.admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- migrate ---------------------------------------------------------------------------------


async def test_migrate_upgrades_downgrades_to_base_and_upgrades_again(cli: Cli) -> None:
    expected = {"users", "sessions", "refresh_tokens"}
    assert "Database migrated" in (await cli.ok("migrate")).out
    assert expected <= await cli.tables()
    assert await cli.scalar("SELECT version_num FROM alembic_version") == (
        migrations.head_revision()
    )

    unsure = await cli.run("migrate", "downgrade")
    assert unsure.code != 0
    assert "downgrade needs a revision" in unsure.out
    assert expected <= await cli.tables()

    await cli.ok("migrate", "downgrade", "base")
    assert not expected & await cli.tables()

    await cli.ok("migrate", "upgrade")
    assert expected <= await cli.tables()
    assert await cli.scalar("SELECT count(*) FROM users") == 0


# --- create-admin ------------------------------------------------------------------------------


async def test_create_admin_makes_an_admin_who_logs_in_through_the_api(cli: Cli) -> None:
    await cli.migrated()
    result = await cli.ok(
        "create-admin",
        "--email",
        "Boss@Example.com",
        "--name",
        "Bo Boss",
        "--password-stdin",
        stdin=f"{STRONG}\n",
    )
    assert "created" in result.out
    assert STRONG not in result.out
    # The CLI runs no jobs: it says which ones the service's sweep will pick up.
    assert "Left for the service's sweep: events.relay, events.dispatch" in result.out

    runtime = Runtime.create(cli.settings())
    try:
        transport = httpx.ASGITransport(app=create_app(runtime=runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://cli") as client:
            login = await client.post(
                "/api/v1/auth/token", json={"username": "boss@example.com", "password": STRONG}
            )
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
            me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
            assert (me.json()["email"], me.json()["name"], me.json()["role"]) == (
                "boss@example.com",
                "Bo Boss",
                "admin",
            )
    finally:
        await runtime.close()


# The refusals are the command's input checks and the users service's, whose duplicate
# and policy rules are tested on both databases by the users API tests.
@pytest.mark.parametrize("cli", ["sqlite"], indirect=True)
async def test_create_admin_explains_what_is_wrong_and_exits_non_zero(cli: Cli) -> None:
    await cli.migrated()
    await cli.ok("create-admin", "--email", "boss@example.com", "--password-stdin", stdin=STRONG)
    for email, password, says in [
        ("BOSS@example.com", STRONG, "Email already exists"),
        ("other@example.com", "password", "too common"),
        ("other@example.com", "short", "at least 8"),
        ("not-an-email", STRONG, "email"),
    ]:
        result = await cli.run("create-admin", "--email", email, "--password-stdin", stdin=password)
        assert result.code != 0, result.out
        assert says in result.out, result.out
        assert "Traceback" not in result.out
    assert await cli.scalar("SELECT count(*) FROM users") == 1


# --- seed -----------------------------------------------------------------------------------


async def _counts(cli: Cli) -> tuple[int, int]:
    return (
        int(await cli.scalar("SELECT count(*) FROM users")),
        int(await cli.scalar("SELECT count(*) FROM sessions")),
    )


async def test_seed_makes_sample_users_of_every_role_with_sessions_once(cli: Cli) -> None:
    await cli.migrated()
    refused = await cli.run("scripts/seed_database.py", "--env", "production", program=PYTHON)
    assert refused.code != 0
    assert "refused" in refused.out
    assert await _counts(cli) == (0, 0)

    first = await cli.ok("seed")
    assert "Sample users created: 4" in first.out
    roles = await cli.scalar("SELECT count(DISTINCT role) FROM users")
    assert roles == 3  # admin, user and readonly
    without_session = await cli.scalar(
        "SELECT count(*) FROM users u WHERE NOT EXISTS "
        "(SELECT 1 FROM sessions s WHERE s.user_id = u.id)"
    )
    assert without_session == 0
    before = await _counts(cli)
    assert before[0] == 4

    # The script at the path the architecture names does the same, and is idempotent.
    again = await cli.ok("scripts/seed_database.py", "--env", "development", program=PYTHON)
    assert "Sample users created: 0" in again.out
    assert await _counts(cli) == before

    bulk = await cli.ok(
        "scripts/seed_database.py", "--env", "development", "--count", "2000", program=PYTHON
    )
    assert "Sample users created: 0" in bulk.out
    assert "Bulk users inserted: 2000" in bulk.out
    assert await cli.scalar("SELECT count(*) FROM users WHERE email LIKE 'bulk-%'") == 2000
    assert await _counts(cli) == (2004, before[1])


# --- serve ----------------------------------------------------------------------------------


async def test_serve_refuses_an_unmigrated_database(cli: Cli, tmp_path: Path) -> None:
    server = await start(cli.env, tmp_path / "serve.log")
    try:
        code = await asyncio.wait_for(server.proc.wait(), 60)
    finally:
        await stop(server)
    assert code != 0
    out = server.output()
    assert "not up to date" in out
    assert "gatehouse migrate" in out


async def test_serve_prints_the_first_admin_once_and_those_credentials_log_in(
    cli: Cli, tmp_path: Path
) -> None:
    await cli.migrated()
    server: ServerProcess | None = None
    try:
        server = await start(cli.env, tmp_path / "first.log")
        await wait_healthy(server)
        out = server.output()
        assert "First admin created" in out
        email = re.search(r"Email:\s+(\S+)", out)
        password = re.search(r"Password:\s+(\S+)", out)
        assert email is not None, out
        assert password is not None, out
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            login = await client.post(
                "/api/v1/auth/token",
                data={
                    "grant_type": "password",
                    "username": email.group(1),
                    "password": password.group(1),
                },
            )
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
            me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
            assert me.json()["role"] == "admin"
        await stop(server)

        server = await start(cli.env, tmp_path / "second.log")
        await wait_healthy(server)
        again = server.output()
        assert "First admin created" not in again
        assert "Password" not in again
        assert password.group(1) not in again
    finally:
        await stop(server)
    assert await cli.scalar("SELECT count(*) FROM users") == 1
