"""Shared fixtures: the app over httpx on SQLite and on a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import pkgutil
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from sqlalchemy import MetaData, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

import gatehouse
from gatehouse import observability
from gatehouse.app import create_app
from gatehouse.config import Settings
from gatehouse.db import migrate
from gatehouse.db.models import Base
from gatehouse.kit.jobs import LeftForSweep
from gatehouse.logging import configure_logging
from gatehouse.observability import errors, tracing
from gatehouse.runtime import Runtime
from gatehouse.worker.embedded import InProcessRunner
from tests import rabbitmq, services
from tests.factories import Api
from tests.logs import LogCapture, capture_json_logs
from tests.redis_server import DedicatedRedis, drop_keys

BACKENDS = ["sqlite", "postgres"]


def _import_every_models_module() -> MetaData:
    """The declarative metadata with every feature's `models` module imported, so that a
    table is known here even before gatehouse.db.models lists it."""
    for package in pkgutil.iter_modules(gatehouse.__path__, f"{gatehouse.__name__}."):
        if package.ispkg and importlib.util.find_spec(f"{package.name}.models") is not None:
            importlib.import_module(f"{package.name}.models")
    return Base.metadata


# Every table, children before parents (foreign-key order), emptied after each test;
# derived from the models so a new table cannot leak rows between tests
# (tests/db/test_table_cleanup.py checks it against the migrated database).
TABLES = [table.name for table in reversed(_import_every_models_module().sorted_tables)]


async def empty_tables(engine: AsyncEngine) -> None:
    """Delete every row a test may have written (tables in foreign-key order)."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # The audit tables are append-only (maintenance may delete expired rows only,
            # checkpoints never): emptied as a superuser would, triggers off.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in TABLES:
            await conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(scope="session")
def signing_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sqlite") / "gatehouse.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own for this run, migrated, dropped afterwards."""
    services.require("PostgreSQL", services.POSTGRES_ADMIN_URL)
    name = f"gatehouse_test_{uuid.uuid4().hex[:10]}"
    admin_url = services.POSTGRES_ADMIN_URL
    asyncio.run(services.admin_sql(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(services.admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_settings(
    database_url: str, data_dir: Path, signing_key_pem: str, **overrides: Any
) -> Settings:
    """Test settings: cheap bcrypt, a fixed key, limits off, and what a test overrides."""
    defaults: dict[str, Any] = {
        "env": "test",
        "data_dir": data_dir,
        "database_url": database_url,
        "bcrypt_rounds": 4,
        "jwt_private_key": signing_key_pem,
        # Suites that are not about rate limits send far more than 100 requests an hour.
        "rate_limit_enabled": False,
        # Independent of whether the web apps were built into web/dist.
        "web_dir": data_dir / "no-web",
    }
    values = {**defaults, **overrides}
    sections = {name: field.annotation for name, field in Settings.model_fields.items()}
    unknown = set(values) - {f for cls in sections.values() for f in cls.model_fields}  # type: ignore[union-attr]
    assert not unknown, f"unknown settings: {unknown}"
    return Settings(
        **{
            name: cls(**{k: v for k, v in values.items() if k in cls.model_fields})  # type: ignore[misc,union-attr]
            for name, cls in sections.items()
        }
    )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{backend}_url")
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    services.require("Redis", services.REDIS_URL)
    return services.REDIS_URL


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"gatehouse-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    await drop_keys(redis_url, prefix)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module (or parametrize) to change settings for its tests."""
    return {}


@pytest.fixture
async def runtime(
    database_url: str,
    tmp_path: Path,
    signing_key_pem: str,
    settings_overrides: dict[str, Any],
) -> AsyncIterator[Runtime]:
    settings = make_settings(database_url, tmp_path, signing_key_pem, **settings_overrides)
    rt = Runtime.create(settings)
    # Explicit: jobs asked for by a test's requests wait for a sweep unless the test
    # starts a runner (`runner`); a Runtime without a queue fails on the first job.
    rt.use_jobs(LeftForSweep())
    try:
        yield rt
    finally:
        await empty_tables(rt.db.engine)
        await rt.close()


# Apps built by `client`, by what they were built from. A new app builds FastAPI's view of
# all its routes on its first request (~0.4 s here), which every test paid again; an app
# reads its runtime from `app.state` on each request, so tests whose settings match share
# one app with their own runtime swapped in.
_APPS: OrderedDict[str, FastAPI] = OrderedDict()
_APPS_KEPT = 8


def _app_key(settings: Settings) -> str:
    """What an app is built from: the settings (the test's own directory left out) and
    whether tracing and error reporting were on when it was built."""
    dumped = settings.model_dump_json().replace(str(settings.server.data_dir), "<data>")
    return f"{dumped}|{tracing.enabled()}|{errors.enabled()}"


def app_for(runtime: Runtime) -> FastAPI:
    observability.setup(runtime.settings)
    key = _app_key(runtime.settings)
    app = _APPS.pop(key, None) or create_app(runtime=runtime)
    _APPS[key] = app
    while len(_APPS) > _APPS_KEPT:
        _APPS.popitem(last=False)
    app.state.runtime = runtime
    return app


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = app_for(runtime)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def api(client: httpx.AsyncClient, runtime: Runtime) -> Api:
    return Api(client, runtime)


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """An AMQP URL on a vhost of this run's own (RabbitMQ suites only)."""
    yield from rabbitmq.run_vhost()


@pytest.fixture
def broker_overrides(rabbitmq_url: str) -> dict[str, Any]:
    """Settings for a test that publishes: the run's vhost, names of the test's own."""
    return {"broker_url": rabbitmq_url, **rabbitmq.unique_names()}


@pytest.fixture
async def runner(runtime: Runtime) -> AsyncIterator[InProcessRunner]:
    """The embedded default's in-process job runner, running on `runtime`."""
    jobs = InProcessRunner(runtime)
    runtime.use_jobs(jobs)
    await jobs.start()
    try:
        yield jobs
    finally:
        await jobs.stop()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and isinstance(report.longrepr, tuple):
        services.note_skip(str(report.longrepr[2]))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if services.skipped_suites:
        terminalreporter.section("SKIPPED SUITES (service not reachable)", sep="!", red=True)
        for name, reason in services.skipped_suites.items():
            terminalreporter.write_line(f"!!! {name}: {reason} — its tests did not run", red=True)


@pytest.fixture
def json_logs() -> Iterator[LogCapture]:
    """What the app logs during the test, as production writes it (JSON lines)."""
    with capture_json_logs() as capture:
        yield capture


def pytest_configure(config: pytest.Config) -> None:
    # The JSON pipeline at WARNING: an unexpected 500 logs one line with its traceback,
    # instead of structlog's default console dump of every frame's locals (seconds each).
    configure_logging("WARNING", "json")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[DedicatedRedis]:
    """A redis-server of this test's own, started; killed afterwards."""
    server = DedicatedRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker with `--dist loadgroup`, a test marked `xdist_group` must carry
    its group in its id by now: that is all the scheduler reads. When a pytest release
    changed how ids are kept, the marks were silently ignored and each group's servers
    and data were set up once per worker."""
    if not getattr(config.option, "loadgroup", False):
        return
    lost = [
        item.nodeid
        for item in items
        if item.get_closest_marker("xdist_group") and "@" not in item.nodeid.rsplit("]", 1)[-1]
    ]
    if lost:
        raise pytest.UsageError(
            f"xdist_group is not applied ({len(lost)} tests, e.g. {lost[0]}): "
            "pytest-xdist cannot group tests under this pytest"
        )
