"""`gatehouse users recount`, as an operator runs it after manual SQL."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.cli.test_cli import STRONG, Cli, cli

__all__ = ["cli"]


async def test_users_recount_repairs_the_counts_and_says_so(cli: Cli) -> None:
    await cli.migrated()
    await cli.ok("create-admin", "--email", "boss@example.com", "--password-stdin", stdin=STRONG)
    assert "nothing to repair" in (await cli.ok("users", "recount")).out

    engine = create_async_engine(cli.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE user_counts SET live = 7 WHERE role = 'admin'"))
    finally:
        await engine.dispose()

    repaired = await cli.ok("users", "recount")
    assert "admin: 7 -> 1" in repaired.out
    assert "repaired for 1 role(s)" in repaired.out
    assert await cli.scalar("SELECT live FROM user_counts WHERE role = 'admin'") == 1
    assert "nothing to repair" in (await cli.ok("users", "recount")).out
