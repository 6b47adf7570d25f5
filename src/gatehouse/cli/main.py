"""`gatehouse`: serve, migrate, create-admin, seed, worker, beat, dead-letters, audit,
users, keys, clients, unlock, doctor, backup, restore."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.panel import Panel

from gatehouse import web
from gatehouse.cli import backup, operator
from gatehouse.cli.clients import clients_app
from gatehouse.cli.common import console, run, settings_or_exit
from gatehouse.cli.data import audit_app, users_app
from gatehouse.cli.keys import keys_app
from gatehouse.config import Settings, get_settings
from gatehouse.db import migrate as migrations
from gatehouse.logging import configure_logging
from gatehouse.metrics import exposition
from gatehouse.runtime import Runtime
from gatehouse.users import bootstrap
from gatehouse.users.seed import seed as run_seed
from gatehouse.worker.setup import run_beat, run_worker

app = typer.Typer(help="Gatehouse: accounts, login, roles and sessions for your product.")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes")] = None,
) -> None:
    """Serve the API (and the web apps) with uvicorn."""
    from uvicorn.supervisors import Multiprocess  # lazy: only `serve` runs a server

    from gatehouse.kit import server  # lazy: uvicorn's protocol classes, for `serve` only

    settings = settings_or_exit()
    configure_logging(settings.server.log_level, settings.log_format)
    host = host or settings.server.host
    port = port or settings.server.port
    workers = workers or settings.server.workers
    if settings.is_sqlite and workers > 1:
        console.print(f"[yellow]SQLite serves one writer: running 1 worker, not {workers}[/]")
        workers = 1
    # Bound before anything is announced or created: on a taken port, another program
    # would answer the URL we print.
    try:
        sock = server.bind(host, port)
    except OSError as exc:
        console.print(
            f"[bold red]gatehouse:[/] cannot listen on {host}:{port}: {exc.strerror or exc}"
            " (is another program using the port? `--port` or GATEHOUSE_PORT picks another)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    url = f"http://{_url_host(host)}:{port}"
    settings = _with_public_url(settings, url)

    async def prepare(runtime: Runtime) -> str | None:
        current = await migrations.current_revision(runtime.db.engine)
        if current != migrations.head_revision():
            return "The database schema is not up to date: run `gatehouse migrate` first."
        created = await bootstrap.first_admin(runtime)
        if created is not None:
            _print_first_admin(*created, url=url)
        elif settings.is_production and not await bootstrap.has_admin(runtime):
            console.print("[yellow]No admin exists yet: run `gatehouse create-admin`.[/]")
        return None

    problem = run(settings, prepare)
    if problem:
        sock.close()
        console.print(f"[bold red]gatehouse:[/] {problem}")
        raise typer.Exit(1)
    docs = "  (API docs: /docs)" if settings.docs_enabled else ""
    console.print(f"Gatehouse is serving on {url}{docs}")
    if web.is_built(web.web_dir(settings)):
        console.print(f"The client app: {url}/  The admin portal: {url}/admin")
    else:
        console.print("[yellow]The web apps are not built: `make web` builds them.[/]")
    config = server.uvicorn_config(
        "gatehouse.app:app_factory",
        settings.server,
        host=host,
        port=port,
        workers=workers,
        factory=True,
    )
    if workers > 1:
        # Each worker writes its metrics to files here; a scrape of any worker sums them.
        # Set before the workers start, so each of them imports prometheus-client in
        # multiprocess mode.
        metrics_dir = exposition.run_directory(settings, "serve", port)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(exposition.prepare_directory(metrics_dir))
        Multiprocess(config, sockets=[sock]).run()
        return
    process = server.GatehouseServer(config)
    process.run(sockets=[sock])
    if not process.started:
        raise typer.Exit(3)  # uvicorn's start-up failure, logged by it


def _url_host(host: str) -> str:
    """The host part of a URL that reaches `host` from this machine."""
    if host in ("0.0.0.0", ""):  # noqa: S104  (a wildcard bind is reached on loopback)
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _with_public_url(settings: Settings, url: str) -> Settings:
    """Without GATEHOUSE_PUBLIC_URL (outside production), the links in mails and the
    cookie checks use the address actually served, not the default port.

    Through the environment: each uvicorn worker reads its own settings from it.
    """
    if "public_url" in settings.server.model_fields_set or settings.is_production:
        return settings
    os.environ["GATEHOUSE_PUBLIC_URL"] = url
    get_settings.cache_clear()
    return settings_or_exit()


def _print_first_admin(email: str, password: str | None, *, url: str) -> None:
    lines = [f"Email:    [bold]{email}[/]"]
    if password:
        lines.append(f"Password: [bold]{password}[/]")
        lines.append("")
        lines.append("This password is shown once. Log in and change it.")
    console.print(
        Panel(
            "\n".join(lines),
            title="First admin created",
            subtitle=url,
            expand=False,
        )
    )


@app.command()
def migrate(
    direction: Annotated[str, typer.Argument(help="upgrade or downgrade")] = "upgrade",
    revision: Annotated[
        str | None,
        typer.Argument(help="Target (default: head). Downgrade needs one: base, an id, or -- -1"),
    ] = None,
) -> None:
    """Apply (or roll back) the database migrations."""
    settings = settings_or_exit()
    if direction == "upgrade":
        migrations.upgrade(settings.database_url, revision or "head")
    elif direction == "downgrade":
        if revision is None:
            console.print("[bold red]gatehouse:[/] downgrade needs a revision, e.g. -1 or base")
            raise typer.Exit(2)
        migrations.downgrade(settings.database_url, revision)
    else:
        console.print("[bold red]gatehouse:[/] direction must be 'upgrade' or 'downgrade'")
        raise typer.Exit(2)
    console.print(f"Database migrated ({direction} {revision or 'head'}).")


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email address")],
    name: Annotated[str, typer.Option(help="The admin's name")] = "Administrator",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create an admin account (the way to make the first admin in production)."""
    settings = settings_or_exit()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def work(runtime: Runtime) -> str:
        return await bootstrap.create_admin(runtime, email=email, name=name, password=password)

    user_id = run(settings, work)
    console.print(f"Admin {email} created (id {user_id}).")


@app.command()
def seed(
    env: Annotated[str, typer.Option(help="development or test; production is refused")] = (
        "development"
    ),
    count: Annotated[int, typer.Option(help="Also bulk-insert this many users")] = 0,
) -> None:
    """Sample users of every role, with sessions (idempotent)."""
    if env == "production":
        console.print("[bold red]gatehouse:[/] seeding is refused for --env production")
        raise typer.Exit(2)
    settings = settings_or_exit()
    if settings.is_production:
        console.print("[bold red]gatehouse:[/] seeding is refused when GATEHOUSE_ENV=production")
        raise typer.Exit(2)
    report = run(settings, lambda runtime: run_seed(runtime, count=count))
    console.print(report)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _log_level(value: str | None, settings: Settings) -> str:
    level = (value or settings.server.log_level).upper()
    if level not in LOG_LEVELS:
        console.print(f"[bold red]gatehouse:[/] --loglevel must be one of {', '.join(LOG_LEVELS)}")
        raise typer.Exit(2)
    return level


MetricsPort = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=65535,
        help="Serve this process's metrics on http://<metrics-host>:<port>/metrics "
        "(default: not served)",
    ),
]
MetricsHost = Annotated[
    str,
    typer.Option(help="Address the metrics port listens on (0.0.0.0: every interface)"),
]


def _broker_settings(command: str) -> Settings:
    settings = settings_or_exit()
    if settings.broker_url is None:
        console.print(
            f"[bold red]gatehouse:[/] `gatehouse {command}` needs GATEHOUSE_BROKER_URL "
            "(amqp://…). Without a broker, `gatehouse serve` runs the background jobs "
            "in its own process: no worker or beat is needed.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    return settings


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Worker processes (default GATEHOUSE_WORKER_CONCURRENCY)"),
    ] = None,
    loglevel: Annotated[
        str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR (default GATEHOUSE_LOG_LEVEL)")
    ] = None,
    queues: Annotated[
        str, typer.Option(help="Queues to consume, comma-separated: tasks, webhooks")
    ] = "tasks,webhooks",
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Run background jobs from RabbitMQ (Celery worker)."""
    settings = _broker_settings("worker")
    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    if not chosen or not set(chosen) <= {"tasks", "webhooks"}:
        console.print("[bold red]gatehouse:[/] --queues takes tasks, webhooks or both")
        raise typer.Exit(2)
    code = run_worker(
        settings,
        concurrency=concurrency or settings.worker.worker_concurrency,
        loglevel=_log_level(loglevel, settings),
        queues=chosen,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )
    raise typer.Exit(code)


@app.command()
def beat(
    loglevel: Annotated[
        str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR (default GATEHOUSE_LOG_LEVEL)")
    ] = None,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Publish the periodic jobs (outbox sweep, cleanup): run exactly one."""
    settings = _broker_settings("beat")
    code = run_beat(
        settings,
        loglevel=_log_level(loglevel, settings),
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )
    if code:
        raise typer.Exit(code)


@app.command("dead-letters")
def dead_letters(
    replay: Annotated[
        bool, typer.Option("--replay", help="Move them back to their queue, to run again")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many (default: show 20, replay all)")
    ] = None,
) -> None:
    """Show the jobs in the dead-letter queue, or replay them once the cause is fixed."""
    from kombu.exceptions import OperationalError  # lazy: Kombu comes with Celery

    from gatehouse.worker.dead_letters import (  # lazy: loads Celery, for the broker
        peek_dead_letters,
        replay_dead_letters,
    )

    settings = _broker_settings("dead-letters")
    try:
        if replay:
            moved = replay_dead_letters(settings, limit)
        else:
            count, letters = peek_dead_letters(settings, limit or 20)
    except (OperationalError, OSError) as exc:
        console.print(f"[bold red]gatehouse:[/] cannot reach the broker: {exc}")
        raise typer.Exit(1) from None
    if replay:
        for letter in moved:
            console.print(f"replayed {letter.job} {letter.task_id} → {letter.queue}")
        console.print(f"{len(moved)} dead letter(s) replayed.")
        return
    console.print(f"{count} dead letter(s) in {settings.worker.task_queue_prefix}.dead")
    for letter in letters:
        console.print(
            f"{letter.died_at}  {letter.job}  {letter.reason} in {letter.queue}  "
            f"task {letter.task_id}  request {letter.request_id or '-'}  {letter.arguments}",
            highlight=False,
            soft_wrap=True,
        )


app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(clients_app, name="clients")
backup.register(app)
operator.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
