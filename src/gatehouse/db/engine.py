"""The async engine and session factory, for PostgreSQL (asyncpg) or SQLite (aiosqlite)."""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from gatehouse.config import Settings
from gatehouse.errors import GatehouseError
from gatehouse.kit import metrics
from gatehouse.observability import tracing

# Execution option asking SQLite for `BEGIN IMMEDIATE`: a unit of work that will write
# takes the write lock with its first statement (read or write), so it never fails to
# upgrade a read snapshot. Not before: the lock is not held while a request waits for
# its body or a password hash (see `Database.session`).
SQLITE_IMMEDIATE = "gatehouse_sqlite_immediate"
_AFTER_COMMIT = "gatehouse.after_commit"
_BEFORE_COMMIT = "gatehouse.before_commit"
_AFTER_ROLLBACK = "gatehouse.after_rollback"

log = structlog.get_logger("gatehouse.db")


def after_commit(
    session: AsyncSession | OrmSession, callback: Callable[[], Awaitable[None]]
) -> None:
    """Run `callback` once this unit of work has committed; never after a rollback.

    For effects outside the database that must not run ahead of the data (e.g. cache
    invalidation: invalidated before the commit, another process could cache the old
    row again).
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def before_commit(
    session: AsyncSession | OrmSession, callback: Callable[[AsyncSession], Awaitable[None]]
) -> None:
    """Run `callback(session)` just before this unit of work commits, inside it.

    For writes that must be last in the transaction (the audit chain's lock is then
    held only for the commit itself).
    """
    session.info.setdefault(_BEFORE_COMMIT, []).append(callback)


def after_rollback(
    session: AsyncSession | OrmSession, callback: Callable[[], Awaitable[None]]
) -> None:
    """Run `callback` after this unit of work rolled back (e.g. audit a failed attempt)."""
    session.info.setdefault(_AFTER_ROLLBACK, []).append(callback)


async def _run_before_commit(session: AsyncSession) -> None:
    while callbacks := session.info.pop(_BEFORE_COMMIT, []):
        for callback in callbacks:
            await callback(session)


async def _run_after_rollback(session: AsyncSession) -> None:
    session.info.pop(_AFTER_COMMIT, None)
    callbacks: list[Callable[[], Awaitable[None]]] = session.info.pop(_AFTER_ROLLBACK, [])
    for callback in callbacks:
        try:
            await callback()
        except Exception:
            log.exception("db.after_rollback_failed")


async def _run_after_commit(session: AsyncSession) -> None:
    callbacks: list[Callable[[], Awaitable[None]]] = session.info.pop(_AFTER_COMMIT, [])
    for callback in callbacks:
        try:
            await callback()
        except Exception:  # the data is committed: report, do not fail the request
            log.exception("db.after_commit_failed")


class MeteredPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's async queue pool, reporting its state (gatehouse_db_pool_*) and how long
    each checkout waited for a connection (a free one, or a new one opened for it).

    Measured inside the pool rather than from its events: the `checkin` event fires
    before the connection is back in the queue, so the counts read there are one off.
    """

    def _do_get(self) -> ConnectionPoolEntry:
        started = time.perf_counter()
        try:
            return super()._do_get()
        finally:
            metrics.DB_POOL_WAIT.observe(time.perf_counter() - started)
            # Counted from its first checkout: the fresh pool an engine's dispose() leaves
            # behind at shutdown holds nothing and is never used.
            _live_pools.add(self)
            _publish_pools()

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        try:
            super()._do_return_conn(record)
        finally:
            _publish_pools()

    def dispose(self) -> None:
        super().dispose()
        _live_pools.discard(self)
        _publish_pools()


# This process's pools in use (one per Database; tests make many): the gauges are sums.
_live_pools: weakref.WeakSet[MeteredPool] = weakref.WeakSet()


def _publish_pools() -> None:
    pools = list(_live_pools)
    metrics.DB_POOL_SIZE.set(sum(pool.size() for pool in pools))
    metrics.DB_POOL_MAX.set(sum(pool.size() + max(pool._max_overflow, 0) for pool in pools))
    metrics.DB_POOL_CHECKED_OUT.set(sum(pool.checkedout() for pool in pools))
    # SQLAlchemy counts overflow from -size (connections it may still open within size).
    metrics.DB_POOL_OVERFLOW.set(sum(max(pool.overflow(), 0) for pool in pools))


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if not conn.get_execution_options().get(SQLITE_IMMEDIATE, False):
            conn.exec_driver_sql("BEGIN")
            return
        # Waits (up to busy_timeout) while another connection holds the write lock.
        started = time.perf_counter()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            metrics.SQLITE_WRITE_LOCK_WAIT.observe(time.perf_counter() - started)


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    db = settings.database
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        in_memory = not path or path == ":memory:"
        if not in_memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # A file database gets SQLAlchemy's default for it (a queue pool), metered; an
        # in-memory one keeps its single shared connection.
        pool: dict[str, Any] = {} if in_memory else {"poolclass": MeteredPool}
        engine = create_async_engine(url, echo=db.database_echo, hide_parameters=True, **pool)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        echo=db.database_echo,
        # An error's message would quote its parameters: password hashes, emails.
        hide_parameters=True,
        poolclass=MeteredPool,
        pool_size=db.database_pool_min,
        max_overflow=db.database_pool_max - db.database_pool_min,
        pool_timeout=db.database_pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "timeout": 5,
            "command_timeout": 30,
            "server_settings": {"application_name": "gatehouse"},
        },
    )


class Database:
    """One engine and its session factory; one per process (API, worker, CLI)."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        tracing.instrument_engine(self.engine)
        self.is_sqlite = settings.is_sqlite
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Same pool and events; the option reaches the "begin" listener, which SQLAlchemy
        # fires at the session's first statement, not when the session is made.
        self.write_sessionmaker = (
            async_sessionmaker(
                self.engine.execution_options(**{SQLITE_IMMEDIATE: True}),
                expire_on_commit=False,
            )
            if self.is_sqlite
            else self.sessionmaker
        )

    @asynccontextmanager
    async def session(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """A transaction: committed once when the block ends, rolled back on error.

        Services get theirs inside a `gatehouse.uow.UnitOfWork`; a bare session is for
        code that only reads or writes rows (repositories' callers in jobs, tests).

        On SQLite, `write=True` takes the write lock at the first statement, so whatever
        runs before it (bcrypt, waiting on a client) holds no lock; a service that must
        read before a slow step reads in `UnitOfWork.reader()`.
        """
        maker = self.write_sessionmaker if write else self.sessionmaker
        async with maker() as session:
            try:
                yield session
            except GatehouseError as exc:
                if exc.persist:
                    await self._commit(session)
                else:
                    await session.rollback()
                    await _run_after_rollback(session)
                raise
            except BaseException:
                await session.rollback()
                await _run_after_rollback(session)
                raise
            await self._commit(session)

    async def _commit(self, session: AsyncSession) -> None:
        try:
            await _run_before_commit(session)
            await session.commit()
        except BaseException:
            await session.rollback()
            await _run_after_rollback(session)
            raise
        session.info.pop(_AFTER_ROLLBACK, None)
        await _run_after_commit(session)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
