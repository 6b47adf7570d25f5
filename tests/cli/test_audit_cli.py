"""`gatehouse audit verify` and `gatehouse users inactive`, as an operator runs them."""

from __future__ import annotations

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
