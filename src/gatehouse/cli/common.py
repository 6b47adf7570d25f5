"""What every `gatehouse` command shares: the error console, settings, and running a
piece of async work on a Runtime of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console

from gatehouse import observability
from gatehouse.config import ConfigError, Settings, get_settings
from gatehouse.errors import GatehouseError
from gatehouse.kit.jobs import LeftForSweep
from gatehouse.observability import tracing
from gatehouse.runtime import Runtime

console = Console(stderr=True)
T = TypeVar("T")


def config_error(exc: ConfigError) -> typer.Exit:
    # One line, never wrapped to the terminal width: it is read in logs as often as on a tty.
    console.print(
        f"[bold red]gatehouse: configuration error:[/] {exc}", highlight=False, soft_wrap=True
    )
    return typer.Exit(2)


def settings_or_exit() -> Settings:
    """The settings, or exit 2 with the configuration error on one line."""
    try:
        return get_settings()
    except ConfigError as exc:
        raise config_error(exc) from None


def run(settings: Settings, work: Callable[[Runtime], Awaitable[T]]) -> T:
    # A command's changes start traces of their own (its events carry them to the
    # service); spans and error reports are sent before the process exits.
    observability.setup(settings)
    # The command's function: `create_admin.<locals>.work` is `cli create_admin`.
    name = f"cli {work.__qualname__.split('.', 1)[0]}"

    async def main() -> T:
        runtime = Runtime.create(settings)
        # The CLI runs no jobs: what a command asks for (an event to publish, a mail to
        # send) waits in its table for the running service's sweep, and we say so.
        left = LeftForSweep()
        runtime.use_jobs(left)
        try:
            with tracing.span(name):
                return await work(runtime)
        finally:
            await runtime.close()
            if left.left:
                console.print(
                    f"[dim]Left for the service's sweep: {', '.join(left.left)} (they run"
                    " once `gatehouse serve` or `gatehouse worker` is up)[/]"
                )

    try:
        return asyncio.run(main())
    except ConfigError as exc:
        # Found while building the runtime, e.g. a signing key that is not a usable PEM.
        raise config_error(exc) from None
    except GatehouseError as exc:
        details = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.details.items())
        console.print(
            f"[bold red]gatehouse:[/] {exc.message}" + (f" ({details})" if details else "")
        )
        raise typer.Exit(1) from None
