"""The unit of work: everything one request, job or command changes together.

Created at the boundary (`dependencies.get_uow` for a request, `Runtime.unit_of_work`
for a job or the CLI) and handed to services explicitly: a service's constructor says
what it depends on. It commits once, when the boundary's block ends; hooks that must
follow the commit (cache invalidation, job kicks) or a rollback (an audit row of a
failed attempt) run then.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.audit.trail import AuditTrail
from gatehouse.cache.store import CACHE_INFO_KEY, Cache, Prefetched
from gatehouse.db.engine import Database, Read, after_commit
from gatehouse.kit.context import Actor
from gatehouse.kit.jobs import JobQueue, Jobs

T = TypeVar("T")


@dataclass
class UnitOfWork:
    session: AsyncSession
    # Who acts: anonymous until the request's principal is known (`act_as`).
    actor: Actor
    audit: AuditTrail = field(init=False)
    jobs: Jobs = field(init=False)
    # None when this process caches nothing (no Redis on PostgreSQL).
    cache: Cache | None = None
    write: bool = True
    database: Database | None = None
    # Cache entries this request read ahead of their use (the caller's own profile,
    # read with their principal): one Redis round trip instead of two.
    cache_reads: Prefetched = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        session: AsyncSession,
        *,
        database: Database,
        actor: Actor,
        cache: Cache,
        jobs: JobQueue | None,
        audit_key: bytes,
        write: bool,
        strict_jobs: bool,
    ) -> UnitOfWork:
        uow = cls(
            session,
            actor,
            cache=cache if cache.enabled else None,
            write=write,
            database=database,
        )
        uow.audit = AuditTrail(session, database, audit_key, lambda: uow.actor, write=write)
        uow.jobs = Jobs(session, jobs, strict=strict_jobs)
        if write and database.replica is not None:
            # Read-your-writes: once this commits, the actor's lag-tolerant reads stay
            # on the primary for the sticky window (`gatehouse.db.replica`). The actor
            # is read then: a request's is known only after authentication.
            replica = database.replica
            after_commit(session, lambda: replica.wrote(uow.actor.user_id))
        if uow.cache is not None:
            # The one thing left in session.info: ORM flush events get only the session,
            # and a changed user row must reach the cache without each write remembering.
            session.info[CACHE_INFO_KEY] = uow.cache
        return uow

    def act_as(self, actor: Actor) -> None:
        """The request's caller is now known (after authentication)."""
        self.actor = actor

    async def replica_ok(self, read: Read[T]) -> T:
        """`read(session)` for a read that tolerates a few seconds' lag (an admin's
        list, an export, counts): on the read replica when one is configured and this
        actor has not just written, else on `session` (`Database.replica_ok`). A
        writing unit of work always reads its own session."""
        if self.write or self.database is None or self.database.replica is None:
            return await read(self.session)
        return await self.database.replica_ok(
            read, actor_id=self.actor.user_id, primary=self.session
        )

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads that come before a slow step (a bcrypt verify).

        On SQLite, a writing unit of work's first statement takes the database's one
        write lock: what must be read before checking a password is read here, in a
        short read transaction of its own, so no lock is held while bcrypt runs. The
        caller re-checks in `session` what it relies on. Elsewhere (PostgreSQL, a
        read-only unit of work, or one that already holds the lock) this is `session`
        itself: a plain read takes no lock there.
        """
        separate = (
            self.write
            and self.database is not None
            and self.database.is_sqlite
            and not self.session.in_transaction()
        )
        if not separate:
            yield self.session
            return
        assert self.database is not None  # noqa: S101  (checked above, for mypy)
        # Read only: nothing to commit, no hooks; closing ends the read transaction.
        # From the readers' pool: on SQLite the writer's one connection may be taken.
        async with self.database.read_sessionmaker() as session:
            yield session
