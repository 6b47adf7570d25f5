"""`gatehouse clients ...`: register and manage OAuth clients from the shell, through the
same service (and rules, audit rows and events) as the admin API."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from gatehouse.cli.common import run, settings_or_exit
from gatehouse.clients.schemas import (
    ClientCreate,
    ClientRead,
    ClientType,
    GrantType,
    ListParams,
    Scope,
)
from gatehouse.clients.service import ClientService, Issued
from gatehouse.errors import ValidationFailed
from gatehouse.runtime import Runtime

clients_app = typer.Typer(help="OAuth clients: the applications that log people in with Gatehouse.")


def _out() -> Console:
    # Made per command, so it reads the terminal's width (COLUMNS) as the command runs.
    # Names and URLs are the admin's text: printed as they are, never read as markup.
    return Console(soft_wrap=True, highlight=False, markup=False)


T = TypeVar("T")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]
ClientRef = Annotated[str, typer.Argument(help="The client's id or its client_id")]


def _with_service(work: Callable[[ClientService], Awaitable[T]]) -> T:
    async def command(runtime: Runtime) -> T:
        async with runtime.unit_of_work() as uow:
            return await work(ClientService(uow))

    # One name per command in traces: `cli clients`.
    command.__qualname__ = "clients"
    return run(settings_or_exit(), command)


def _read(issued: Issued) -> dict[str, Any]:
    return ClientRead.model_validate(issued.client).model_dump(mode="json")


def _print_json(value: object) -> None:
    # Plain stdout, so `| jq` reads it whole; notes go to stderr.
    typer.echo(json.dumps(value, indent=2))


def _print_issued(issued: Issued, as_json: bool) -> None:
    if as_json:
        _print_json({**_read(issued), "client_secret": issued.secret})
        return
    client = issued.client
    out = _out()
    state = "enabled" if client.enabled else "disabled"
    out.print(f"Client {client.name!r} ({client.type}, {state})")
    out.print(f"  id:            {client.id}")
    out.print(f"  client_id:     {client.client_id}")
    if issued.secret is not None:
        out.print(f"  client_secret: {issued.secret}")
        out.print("The secret is shown this once: store it now (rotate-secret makes a new one).")


@clients_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Shown to people on the consent screen")],
    type_: Annotated[
        ClientType, typer.Option("--type", help="confidential (a server) or public (an app)")
    ],
    scope: Annotated[list[Scope], typer.Option(help="An allowed scope (repeat the option)")],
    grant_type: Annotated[
        list[GrantType], typer.Option(help="An allowed grant type (repeat the option)")
    ],
    redirect_uri: Annotated[
        list[str] | None, typer.Option(help="An exact redirect URI (repeat the option)")
    ] = None,
    post_logout_redirect_uri: Annotated[
        list[str] | None, typer.Option(help="Where to go after logout (repeat the option)")
    ] = None,
    trusted: Annotated[
        bool, typer.Option("--trusted", help="First-party: people are not asked to consent")
    ] = False,
    logo_url: Annotated[str | None, typer.Option(help="An https URL of its logo")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a client; prints its client_id and, for a confidential one, its secret once."""

    async def work(clients: ClientService) -> Issued:
        try:
            data = ClientCreate(
                name=name,
                type=type_,
                redirect_uris=redirect_uri or [],
                post_logout_redirect_uris=post_logout_redirect_uri or [],
                scopes=scope,
                grant_types=grant_type,
                trusted=trusted,
                logo_url=logo_url,
            )
        except ValidationError as exc:
            raise ValidationFailed.from_pydantic(exc.errors()) from None
        return await clients.create(data)

    _print_issued(_with_service(work), as_json)


@clients_app.command("list")
def list_clients(as_json: JsonFlag = False) -> None:
    """Every client, newest first (never a secret)."""

    async def work(clients: ClientService) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            rows, total = await clients.list(ListParams(page=page, page_size=100))
            found += [ClientRead.model_validate(row).model_dump(mode="json") for row in rows]
            if len(found) >= total or not rows:
                return found
            page += 1

    rows = _with_service(work)
    if as_json:
        _print_json(rows)
        return
    out = _out()
    table = Table(title="Clients")
    # Ids wrap on a narrow terminal rather than lose characters to an ellipsis.
    for header in ("id", "client_id", "name", "type", "grant types", "enabled"):
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(
            row["id"],
            row["client_id"],
            row["name"],
            row["type"],
            ", ".join(row["grant_types"]),
            "yes" if row["enabled"] else "no",
        )
    out.print(table)
    out.print(f"{len(rows)} client(s)")


@clients_app.command("rotate-secret")
def rotate_secret(client: ClientRef, as_json: JsonFlag = False) -> None:
    """Give a confidential client a new secret, printed once; the old one stops working."""

    async def work(clients: ClientService) -> Issued:
        found = await clients.find(client)
        return await clients.rotate_secret(found.id, None)

    _print_issued(_with_service(work), as_json)


def _switch(client: str, enabled: bool, as_json: bool) -> None:
    async def work(clients: ClientService) -> Issued:
        found = await clients.find(client)
        return Issued(await clients.set_enabled(found.id, enabled, None), None)

    issued = _with_service(work)
    if as_json:
        _print_json(_read(issued))
        return
    state = "enabled" if enabled else "disabled: every authentication of it fails"
    _out().print(f"Client {issued.client.client_id} ({issued.client.name}) is {state}.")


@clients_app.command("disable")
def disable(client: ClientRef, as_json: JsonFlag = False) -> None:
    """Disable a client: it can no longer authenticate (until enabled again)."""
    _switch(client, False, as_json)


@clients_app.command("enable")
def enable(client: ClientRef, as_json: JsonFlag = False) -> None:
    """Enable a disabled client again."""
    _switch(client, True, as_json)
