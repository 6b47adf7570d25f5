"""`gatehouse keys ...`: the keys of secrets stored encrypted."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from gatehouse.cli.common import console, run, settings_or_exit
from gatehouse.keys.service import ColumnCounts, Rotation, rotate_encryption
from gatehouse.runtime import Runtime

keys_app = typer.Typer(help="Encryption keys of the secrets stored encrypted: rotate them.")
out = Console(soft_wrap=True, highlight=False)


@keys_app.command("rotate-encryption")
def rotate(
    batch_size: Annotated[
        int,
        typer.Option(min=1, max=10_000, help="Rows per transaction"),
    ] = 500,
) -> None:
    """Re-encrypt every stored secret not under the first key of GATEHOUSE_ENCRYPTION_KEYS
    (and encrypt those saved in clear before); exit 1 if some cannot be decrypted."""

    def progress(counts: ColumnCounts) -> None:
        if counts.batches > 1:  # a long walk says where it is
            console.print(
                f"[dim]{counts.label}: batch {counts.batches}, "
                f"{counts.reencrypted + counts.encrypted} rewritten so far[/]",
                highlight=False,
            )

    async def work(runtime: Runtime) -> Rotation:
        return await rotate_encryption(runtime, batch_size, progress=progress)

    rotation = run(settings_or_exit(), work)
    for counts in rotation.columns:
        out.print(
            f"{counts.label}: {counts.reencrypted} re-encrypted, {counts.encrypted} "
            f"encrypted (were in clear), {counts.failures} failed"
        )
    if not rotation.failures:
        out.print(f"Every stored secret is under key {rotation.key_id!r}.")
        return
    for counts in rotation.columns:
        for why, number in sorted(counts.failed.items()):
            console.print(
                f"[bold red]gatehouse:[/] {counts.label}: {number} value(s) cannot be "
                f"decrypted: {why}",
                highlight=False,
                soft_wrap=True,
            )
    raise typer.Exit(1)
