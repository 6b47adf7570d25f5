"""Calling services directly, as the API, a job or the CLI does: inside a unit of work
with an actor, and reading what was stored afterwards in a fresh session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import select

from gatehouse.audit.models import AuditEvent
from gatehouse.audit.sealer import seal_pending
from gatehouse.auth.models import Session
from gatehouse.auth.principal import Principal
from gatehouse.auth.service import TokenPair
from gatehouse.dependencies import build_auth_service, build_user_service
from gatehouse.events.models import OutboxEvent
from gatehouse.kit.context import Actor
from gatehouse.runtime import Runtime
from gatehouse.uow import UnitOfWork
from gatehouse.users.models import Role, User
from gatehouse.users.schemas import UserCreate
from tests.factories import PASSWORD

CLIENT_IP = "203.0.113.7"


# Built as the API builds them for a request.
users_of = build_user_service
auth_of = build_auth_service


def principal(user: User, session_id: uuid.UUID | None = None) -> Principal:
    """The caller as the API resolves them; a session of their own unless given one."""
    return Principal(
        user_id=user.id,
        role=Role(user.role),
        session_id=session_id or uuid.uuid4(),
        auth_version=user.auth_version,
    )


def actor(who: Principal | None = None, *, ip: str | None = CLIENT_IP) -> Actor:
    """A request's actor: anonymous, or the authenticated `who`."""
    if who is None:
        return Actor(ip=ip, user_agent="service-tests", request_id=uuid.uuid4().hex)
    return Actor(
        user_id=who.user_id,
        role=who.role.value,
        ip=ip,
        user_agent="service-tests",
        request_id=uuid.uuid4().hex,
    )


@asynccontextmanager
async def acting(
    runtime: Runtime, who: Principal | None = None, *, write: bool = True
) -> AsyncIterator[UnitOfWork]:
    async with runtime.unit_of_work(write=write, actor=actor(who)) as uow:
        yield uow


async def make_user(
    runtime: Runtime,
    role: Role | str = Role.user,
    *,
    email: str | None = None,
    name: str = "Service Person",
    password: str = PASSWORD,
) -> User:
    """A committed user, made by the system (as the CLI would)."""
    email = email or f"{Role(role).value}-{uuid.uuid4().hex[:8]}@example.com"
    async with runtime.unit_of_work() as uow:
        return await users_of(uow, runtime).create(
            UserCreate(email=email, name=name, password=password, role=Role(role))
        )


async def log_in(runtime: Runtime, user: User, password: str = PASSWORD) -> TokenPair:
    async with acting(runtime) as uow:
        return await auth_of(uow, runtime).login(user.email, password)


async def stored_user(runtime: Runtime, user_id: uuid.UUID) -> User:
    """The user's row as committed, deleted or not."""
    async with runtime.db.session(write=False) as session:
        user = await session.get(User, user_id)
    assert user is not None
    return user


async def users_with_email(runtime: Runtime, email: str) -> list[User]:
    async with runtime.db.session(write=False) as session:
        return list(await session.scalars(select(User).where(User.email == email)))


async def sessions_of(runtime: Runtime, user_id: uuid.UUID) -> dict[uuid.UUID, Session]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(select(Session).where(Session.user_id == user_id))
        return {row.id: row for row in rows}


async def seal(runtime: Runtime) -> int:
    """Seal the committed audit rows into the chain, as the worker's next sweep would."""
    return await seal_pending(runtime.db, runtime.audit_key)


async def audit_rows(
    runtime: Runtime, action: str, *, target_id: object | None = None
) -> list[AuditEvent]:
    """Committed audit rows of `action` (about `target_id` if given), oldest first."""
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    if target_id is not None:
        query = query.where(AuditEvent.target_id == str(target_id))
    async with runtime.db.session(write=False) as session:
        return list(await session.scalars(query))


async def outbox_rows(
    runtime: Runtime, event_type: str, aggregate_id: uuid.UUID
) -> list[OutboxEvent]:
    query = (
        select(OutboxEvent)
        .where(OutboxEvent.event_type == event_type, OutboxEvent.aggregate_id == aggregate_id)
        .order_by(OutboxEvent.id)
    )
    async with runtime.db.session(write=False) as session:
        return list(await session.scalars(query))
