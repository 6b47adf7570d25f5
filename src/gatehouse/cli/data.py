"""`gatehouse audit ...` and `gatehouse users ...`: the audit trail and personal data."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gatehouse.audit.chain import Verdict
from gatehouse.audit.sealer import seal_pending
from gatehouse.audit.service import verify_chain
from gatehouse.cli.common import console, run, settings_or_exit
from gatehouse.privacy.service import list_inactive, purge_inactive
from gatehouse.runtime import Runtime
from gatehouse.users.tasks import recount

audit_app = typer.Typer(help="The audit trail: check that nobody altered it.")
users_app = typer.Typer(help="Accounts: find and purge inactive ones; recount them.")
out = Console()


@audit_app.command("verify")
def audit_verify(
    seal: Annotated[
        bool,
        typer.Option(
            help="Seal the rows waiting for the sealer first, so the walk covers them "
            "(--no-seal: only read, e.g. on a replica or a restored backup)"
        ),
    ] = True,
) -> None:
    """Walk the audit chain; name the first row altered, removed or inserted (exit 1)."""

    async def work(runtime: Runtime) -> Verdict:
        if seal:
            await seal_pending(runtime.db, runtime.audit_key)
        return await verify_chain(runtime.db, runtime.audit_key)

    verdict = run(settings_or_exit(), work)
    if verdict.unsealed:
        # Rows recorded since the sealing above, or every pending row with --no-seal.
        out.print(
            f"{verdict.unsealed} rows not sealed yet, not covered (oldest "
            f"{verdict.oldest_unsealed_seconds or 0:.0f} s old)",
            highlight=False,
        )
    if verdict.problem is None:
        out.print(f"audit chain OK: {verdict.checked} rows verified")
        return
    console.print(
        f"[bold red]audit chain broken[/] after {verdict.checked} good rows: {verdict.problem}",
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(1)


@users_app.command("inactive")
def users_inactive(
    days: Annotated[
        int | None,
        typer.Option(help="No login for this many days (default GATEHOUSE_INACTIVE_USER_DAYS)"),
    ] = None,
    purge: Annotated[
        bool, typer.Option("--purge", help="Delete and erase them now (cannot be undone)")
    ] = False,
) -> None:
    """List accounts without a login for a long time; erase them only with --purge."""
    settings = settings_or_exit()
    window = days if days is not None else settings.audit.inactive_user_days
    rows = run(settings, lambda runtime: list_inactive(runtime, window))
    table = Table(
        "id", "email", "role", "last login", "created", title=f"No login for {window} days"
    )
    for row in rows:
        table.add_row(
            str(row.id),
            row.email,
            row.role,
            row.last_login_at.isoformat() if row.last_login_at else "never",
            row.created_at.isoformat(),
        )
    out.print(table)
    out.print(f"{len(rows)} inactive account(s)")
    if not purge:
        if rows:
            out.print("Nothing was changed; add --purge to delete and erase them.")
        return
    result = run(settings, lambda runtime: purge_inactive(runtime, window))
    out.print(f"{result.erased} account(s) deleted and erased")
    for skipped in result.skipped:
        out.print(f"kept {skipped.email} ({skipped.id}): {skipped.reason}")


@users_app.command("recount")
def users_recount() -> None:
    """Recount the live users per role (the admin list's totals) and repair the counts."""
    drift = run(settings_or_exit(), recount)
    if not drift:
        out.print("user counts OK: nothing to repair")
        return
    for role, (was, now) in drift.items():
        out.print(f"{role}: {was} -> {now}")
    out.print(f"user counts repaired for {len(drift)} role(s)")
