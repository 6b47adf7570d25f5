"""The async engine and session factory, for PostgreSQL (asyncpg) or SQLite (aiosqlite)."""

from __future__ import annotations

import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import structlog
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from gatehouse.config import Settings
from gatehouse.db import replica
from gatehouse.db.replica import Replica
from gatehouse.errors import GatehouseError
from gatehouse.kit import metrics
from gatehouse.observability import tracing

# Execution option asking SQLite for `BEGIN IMMEDIATE`: a unit of work that will write
# takes the write lock with its first statement (read or write), so it never fails to
# upgrade a read snapshot. Not before: the lock is not held while a request waits for
# its body or a password hash (see `Database.session`).
SQLITE_IMMEDIATE = "gatehouse_sqlite_immediate"
# SQLite's writers queue for the writer pool's one connection, in order, instead of
# polling the lock in busy_timeout's growing sleeps; as long as the lock's own wait.
SQLITE_WRITER_TIMEOUT_SECONDS = 30.0
# Connections the read replica's pool keeps open (up to GATEHOUSE_DATABASE_POOL_MAX).
REPLICA_POOL_SIZE = 5
# Seconds the last checkout waited for its connection, kept on the connection for the
# "begin" listener: on SQLite's writer pool that wait is a wait for the write lock.
_CHECKOUT_WAIT = "gatehouse.checkout_wait"
_AFTER_COMMIT = "gatehouse.after_commit"
_BEFORE_COMMIT = "gatehouse.before_commit"
_AFTER_ROLLBACK = "gatehouse.after_rollback"

T = TypeVar("T")
# A read that may run on the read replica or on the primary, whichever serves it.
Read = Callable[[AsyncSession], Awaitable[T]]

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
        record = None
        try:
            record = super()._do_get()
            return record
        finally:
            waited = time.perf_counter() - started
            metrics.DB_POOL_WAIT.observe(waited)
            if record is not None:
                record.info[_CHECKOUT_WAIT] = waited
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
        # Waits (up to busy_timeout) while another process holds the write lock; this
        # process's other writers were queued for the writer's one connection before.
        queued = conn.connection.info.pop(_CHECKOUT_WAIT, 0.0)
        started = time.perf_counter()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            metrics.SQLITE_WRITE_LOCK_WAIT.observe(queued + time.perf_counter() - started)


def _sqlite_engine(url: str, settings: Settings, pool: dict[str, Any]) -> AsyncEngine:
    engine = create_async_engine(
        url, echo=settings.database.database_echo, hide_parameters=True, **pool
    )
    _configure_sqlite(engine)
    return engine


def _sqlite_path(url: str) -> str | None:
    """The database file, or None for an in-memory database."""
    path = url.split("///", 1)[1] if "///" in url else ""
    return None if not path or path == ":memory:" else path


def _is_disconnected(dbapi_connection: Any) -> bool:
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False


def create_engine(settings: Settings) -> AsyncEngine:
    """The engine every write goes through (on PostgreSQL, every statement)."""
    url = settings.database_url
    db = settings.database
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path is None:
            # An in-memory database lives in its one shared connection: readers too.
            return _sqlite_engine(url, settings, {})
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # SQLite has one write lock: a second connection could only wait for it.
        return _sqlite_engine(
            url,
            settings,
            {
                "poolclass": MeteredPool,
                "pool_size": 1,
                "max_overflow": 0,
                "pool_timeout": SQLITE_WRITER_TIMEOUT_SECONDS,
            },
        )
    return _postgres_engine(
        url,
        settings,
        pool_size=db.database_pool_min,
        connect_timeout=5,
        application_name="gatehouse",
    )


def create_replica_engine(settings: Settings) -> AsyncEngine | None:
    """The read replica's engine, or None when none is configured. Its pool stays
    small (lag-tolerant reads are the admin's lists, exports and counts) and a
    connection that cannot be made gives up sooner: the read then goes to the primary."""
    url = settings.database.database_replica_url
    if url is None:
        return None
    db = settings.database
    return _postgres_engine(
        url.get_secret_value(),
        settings,
        pool_size=min(REPLICA_POOL_SIZE, db.database_pool_max),
        connect_timeout=replica.CONNECT_TIMEOUT_SECONDS,
        application_name="gatehouse-replica-reads",
    )


def _postgres_engine(
    url: str,
    settings: Settings,
    *,
    pool_size: int,
    connect_timeout: float,
    application_name: str,
) -> AsyncEngine:
    db = settings.database
    engine = create_async_engine(
        url,
        echo=db.database_echo,
        # An error's message would quote its parameters: password hashes, emails.
        hide_parameters=True,
        poolclass=MeteredPool,
        pool_size=pool_size,
        max_overflow=db.database_pool_max - pool_size,
        pool_timeout=db.database_pool_timeout,
        # No ping per checkout: it cost every unit of work three round trips (BEGIN, an
        # empty query, ROLLBACK). A connection PostgreSQL closed (a restart, a terminated
        # backend) is known to asyncpg without asking, and refused below; one that dies
        # silently fails its statement, and SQLAlchemy then invalidates the pool's
        # connections; pool_recycle bounds how long any connection lives.
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={
            "timeout": connect_timeout,
            "command_timeout": 30,
            "server_settings": {"application_name": application_name},
        },
    )

    @event.listens_for(engine.sync_engine, "checkout")
    def _refuse_closed(dbapi_connection: Any, record: ConnectionPoolEntry, _: Any) -> None:
        if _is_disconnected(dbapi_connection):
            # The pool drops this connection and checks out (or opens) another.
            raise DisconnectionError("the server closed the connection")

    return engine


def create_read_engine(settings: Settings) -> AsyncEngine | None:
    """SQLite's readers, apart from the writer's connection so that no read waits for
    it (WAL: a reader sees the last commit while a writer holds the lock); None where
    reads share the one engine (PostgreSQL, an in-memory SQLite)."""
    url = settings.database_url
    if not url.startswith("sqlite") or _sqlite_path(url) is None:
        return None
    db = settings.database
    return _sqlite_engine(
        url,
        settings,
        {
            "poolclass": MeteredPool,
            "pool_size": db.database_pool_min,
            "max_overflow": db.database_pool_max - db.database_pool_min,
            "pool_timeout": db.database_pool_timeout,
        },
    )


class Database:
    """The engines and session factories of one process (API, worker, CLI).

    On PostgreSQL one engine serves everything, except the reads that tolerate lag
    (`replica_ok`) when a read replica is configured. On a SQLite file there are two:
    the writer, one connection that writing units of work take in turn, and the
    readers, a pool of their own, so a read-only unit of work never waits for a writer.
    """

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        self.read_engine = create_read_engine(settings) or self.engine
        replica_engine = create_replica_engine(settings)
        self.replica = (
            Replica(replica_engine, settings.database) if replica_engine is not None else None
        )
        engines = {self.engine, self.read_engine}
        if replica_engine is not None:
            engines.add(replica_engine)
        for engine in engines:
            tracing.instrument_engine(engine)
        self.is_sqlite = settings.is_sqlite
        self.read_sessionmaker = async_sessionmaker(self.read_engine, expire_on_commit=False)
        # The option reaches the "begin" listener, which SQLAlchemy fires at the
        # session's first statement, not when the session is made.
        self.write_sessionmaker = async_sessionmaker(
            self.engine.execution_options(**{SQLITE_IMMEDIATE: True})
            if self.is_sqlite
            else self.engine,
            expire_on_commit=False,
        )

    @asynccontextmanager
    async def session(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """A transaction: committed once when the block ends, rolled back on error.

        Services get theirs inside a `gatehouse.uow.UnitOfWork`; a bare session is for
        code that only reads or writes rows (repositories' callers in jobs, tests).

        On SQLite, `write=True` takes the write lock at the first statement, so whatever
        runs before it (bcrypt, waiting on a client) holds no lock; a service that must
        read before a slow step reads in `UnitOfWork.reader()`. `write=False` reads on
        the readers' pool, never behind a writer.
        """
        maker = self.write_sessionmaker if write else self.read_sessionmaker
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
            # A request answered from the cache never began a transaction: committing
            # would begin an empty one only to end it (two greenlet switches).
            if session.in_transaction() or session.new or session.dirty or session.deleted:
                await session.commit()
        except BaseException:
            await session.rollback()
            await _run_after_rollback(session)
            raise
        session.info.pop(_AFTER_ROLLBACK, None)
        await _run_after_commit(session)

    async def replica_ok(
        self,
        read: Read[T],
        *,
        actor_id: uuid.UUID | None,
        primary: AsyncSession | None = None,
    ) -> T:
        """`read(session)` where an answer a few seconds old is acceptable: on the read
        replica when one is configured, the actor has not written within the sticky
        window and the replica is up and close enough (`gatehouse.db.replica`); else on
        `primary` (a unit of work's session) or a read-only session of its own.

        A read the replica fails for its own sake (refused, timed out, dropped) runs
        again on the primary: the caller gets an answer either way.
        """
        target = self.replica
        if target is not None and await target.usable_for(actor_id):
            try:
                # Read only: closing the session ends its transaction.
                async with target.sessionmaker() as session:
                    result = await read(session)
            except Exception as exc:
                if not replica.is_unavailable(exc):
                    raise
                target.failed(exc)
            else:
                target.served()
                return result
        if target is not None:
            metrics.DB_REPLICA_READS.labels(target="primary").inc()
        if primary is not None:
            return await read(primary)
        async with self.session(write=False) as session:
            return await read(session)

    async def ping(self) -> None:
        async with self.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self.replica is not None:
            await self.replica.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
        await self.engine.dispose()
