"""`gatehouse unlock` and `gatehouse doctor`: an operator's first aid."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gatehouse.auth.service import Unlocked
from gatehouse.auth.service import unlock as unlock_account
from gatehouse.cli.common import console, run, settings_or_exit
from gatehouse.health import doctor as checks
from gatehouse.runtime import Runtime

out = Console()
STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def unlock(
    email: Annotated[str, typer.Option(help="The account's email address")],
) -> None:
    """End the login locks (every client address) and the account delay on an account."""

    async def work(runtime: Runtime) -> Unlocked:
        async with runtime.unit_of_work() as uow:
            return await unlock_account(uow, runtime.protection, email)

    done = run(settings_or_exit(), work)
    if done.shared:
        out.print(f"{email}: login locks and delay ended (user {done.user_id}).", highlight=False)
    else:
        out.print(
            f"{email}: unlocked (user {done.user_id}). Without Redis, each `gatehouse serve` "
            "process applies it at the account's next login attempt.",
            highlight=False,
        )


def doctor(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per check on stdout, for machines")
    ] = False,
) -> None:
    """Check the configuration, keys, dependencies, schema and clock; exit 1 on a failure."""
    # The AMQP client logs a refused connection itself; the table already says it.
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    findings = asyncio.run(checks.diagnose())
    if as_json:
        typer.echo(json.dumps([finding.as_dict() for finding in findings], indent=2))
    else:
        table = Table("check", "status", "detail", "what to fix", title="gatehouse doctor")
        for finding in findings:
            status = f"[{STYLES[finding.status]}]{finding.status}[/]"
            table.add_row(finding.check, status, finding.detail, finding.fix)
        out.print(table)
    if checks.failed(findings):
        if not as_json:
            console.print("[bold red]gatehouse doctor:[/] at least one check failed")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(unlock)
    app.command()(doctor)
