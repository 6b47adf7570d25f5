"""`gatehouse backup` and `gatehouse restore`: encrypted archives of the database."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from gatehouse.backup import service
from gatehouse.cli.common import console, settings_or_exit
from gatehouse.errors import GatehouseError

out = Console(soft_wrap=True, highlight=False)
T = TypeVar("T")


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except GatehouseError as exc:
        console.print(f"[bold red]gatehouse:[/] {exc.message}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def backup(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Where to write the archive (default GATEHOUSE_BACKUP_DIR, "
            "else <data dir>/backups)",
        ),
    ] = None,
    keep: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Then keep only this many newest archives there (default GATEHOUSE_BACKUP_KEEP)",
        ),
    ] = None,
) -> None:
    """Write an encrypted archive of the database; print its path last."""
    settings = settings_or_exit()
    result = _run(service.create_backup(settings, directory, keep))
    if result.key_generated is not None:
        console.print(
            f"[yellow]A backup key was generated into {result.key_generated}. Keep a copy "
            "of it away from this host and from the archives: without it no archive can "
            "be restored.[/]",
            highlight=False,
            soft_wrap=True,
        )
    manifest = result.manifest
    out.print(
        f"Backed up {manifest.rows} rows in {len(manifest.tables)} tables "
        f"({manifest.database}, migration {manifest.migration_revision})."
    )
    if result.removed:
        out.print(f"Removed {len(result.removed)} older archive(s) (keeping the newest).")
    # Last, alone: scripts read the archive's path from the final line.
    print(result.path.resolve())


def restore(
    archive: Annotated[Path, typer.Argument(help="The archive gatehouse backup wrote")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a database that already holds users"),
    ] = False,
) -> None:
    """Restore an archive into the configured database (stop the service first)."""
    settings = settings_or_exit()
    result = _run(service.restore_backup(settings, archive, force=force))
    manifest = result.manifest
    out.print(
        f"Restored {archive} ({manifest.database}, made {manifest.created_at} by Gatehouse "
        f"{manifest.gatehouse_version}): {manifest.rows} rows in {len(manifest.tables)} "
        "tables, as its manifest lists."
    )
    if result.cache_flushed is False:
        prefix = settings.redis.redis_prefix
        console.print(
            f"[yellow]Redis was not reachable: empty the cache before starting the service "
            f"(redis-cli --scan --pattern '{prefix}cache:*' | xargs redis-cli unlink).[/]",
            highlight=False,
            soft_wrap=True,
        )
    if result.migrate_to is not None:
        out.print(
            f"The archive is at migration {manifest.migration_revision}: run `gatehouse "
            f"migrate` (to {result.migrate_to}) before starting the service."
        )


def register(app: typer.Typer) -> None:
    app.command()(backup)
    app.command()(restore)
