"""`gatehouse audit verify` and `gatehouse users inactive`, as an operator runs them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.cli.test_cli import STRONG, Cli, cli

__all__ = ["cli"]


async def tamper(cli: Cli, statement: str) -> None:
    """As a database superuser, behind Gatehouse's back (triggers off on PostgreSQL)."""
    engine = create_async_engine(cli.database_url)
    try:
        async with engine.begin() as conn:
            if cli.backend == "postgres":
                await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def test_audit_verify_passes_then_names_the_altered_row(cli: Cli) -> None:
    await cli.migrated()
    for n in range(3):
        await cli.ok(
            "create-admin", "--email", f"boss{n}@example.com", "--password-stdin", stdin=STRONG
        )
    result = await cli.ok("audit", "verify")
    assert "audit chain OK: 3 rows verified" in result.out

    second = await cli.scalar("SELECT id FROM audit_events WHERE seq = 2")
    await tamper(cli, 'UPDATE audit_events SET details = \'{"role": "user"}\' WHERE seq = 2')
    broken = await cli.run("audit", "verify")
    assert broken.code == 1
    assert f"row id {second} (seq 2)" in broken.out
    assert "altered" in broken.out


async def test_audit_verify_no_seal_reports_the_rows_it_does_not_cover(cli: Cli) -> None:
    await cli.migrated()
    for n in range(2):
        await cli.ok(
            "create-admin", "--email", f"boss{n}@example.com", "--password-stdin", stdin=STRONG
        )
    read_only = await cli.ok("audit", "verify", "--no-seal")
    assert "2 rows not sealed yet, not covered" in read_only.out
    assert "audit chain OK: 0 rows verified" in read_only.out
    assert await cli.scalar("SELECT count(*) FROM audit_events WHERE seq IS NULL") == 2

    sealed = await cli.ok("audit", "verify")
    assert "not sealed" not in sealed.out
    assert "audit chain OK: 2 rows verified" in sealed.out


async def test_users_inactive_lists_and_purges_only_with_the_flag(cli: Cli) -> None:
    await cli.migrated()
    for who in ("boss", "sleeper"):
        await cli.ok(
            "create-admin", "--email", f"{who}@example.com", "--password-stdin", stdin=STRONG
        )
    engine = create_async_engine(cli.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE users SET role = 'user', created_at = :old, last_login_at = :old"
                    " WHERE email = 'sleeper@example.com'"
                ),
                {"old": datetime.now(UTC) - timedelta(days=800)},
            )
    finally:
        await engine.dispose()

    listed = await cli.ok("users", "inactive")
    assert "sleeper@example.com" in listed.out
    assert "boss@example.com" not in listed.out
    assert "1 inactive account(s)" in listed.out
    assert "add --purge" in listed.out
    assert await cli.scalar("SELECT count(*) FROM users WHERE deleted_at IS NULL") == 2

    purged = await cli.ok("users", "inactive", "--purge")
    assert "1 account(s) deleted and erased" in purged.out
    assert await cli.scalar("SELECT count(*) FROM users WHERE email = 'sleeper@example.com'") == 0
    assert "0 inactive account(s)" in (await cli.ok("users", "inactive")).out
    assert "audit chain OK" in (await cli.ok("audit", "verify")).out
