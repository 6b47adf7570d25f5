"""Helpers of the privacy suite: a subject with data in every table, audit rows of our
own, and a scan of every text and JSON column of the database."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, String, func, select, update

from gatehouse.audit import trail
from gatehouse.audit.models import AuditEvent
from gatehouse.db.models import Base
from gatehouse.emails.models import EmailMessage
from gatehouse.emails.sender import MAIL_DIR
from gatehouse.emails.service import file_name
from gatehouse.events import service as events
from gatehouse.events.models import OutboxEvent
from gatehouse.kit.context import Actor
from gatehouse.kit.time import utcnow
from gatehouse.recovery.repository import ActionTokenRepository
from gatehouse.runtime import Runtime
from gatehouse.users.models import Role, User
from gatehouse.webhooks.models import WebhookDelivery
from gatehouse.webhooks.schemas import WebhookCreate
from gatehouse.webhooks.service import WebhookService
from gatehouse.worker import registry
from tests.factories import PASSWORD, Account, Api

# Never resolved: the subscription is only there to owe deliveries, none is attempted.
WEBHOOK_URL = "https://hooks.example.com/gatehouse-privacy"
# Clients of the requests our own audit rows describe, told apart in the export.
SUBJECT_IP, ADMIN_IP, STRANGER_IP = "198.51.100.7", "203.0.113.77", "192.0.2.200"
ADMIN_AGENT = "AdminConsole/9.9"


def unique(word: str) -> str:
    return f"{word}{uuid.uuid4().hex[:8]}"


@dataclass
class Person:
    account: Account
    name: str

    @property
    def id(self) -> uuid.UUID:
        return self.account.id

    @property
    def email(self) -> str:
        return self.account.email


async def person(api: Api, role: Role = Role.user, *, login: bool = True) -> Person:
    """A user with a name and address of their own; plain users sign up over HTTP (so
    whatever the API records about a sign-up exists), staff are made by the service."""
    name = f"{unique('Quill')} {unique('Marrow')}"
    email = f"{unique(role.value)}@example.com"
    if role is Role.user:
        response = await api.client.post(
            "/api/v1/auth/register", json={"email": email, "name": name, "password": PASSWORD}
        )
        assert response.status_code == 202, response.text
        async with api.runtime.db.session(write=False) as session:
            user_id = await session.scalar(select(User.id).where(User.email == email))
        assert user_id is not None
        account = Account(user_id, email, PASSWORD, role)
    else:
        account = await api.create_user(role, email=email, name=name)
    if login:
        await api.login(account, **{"User-Agent": f"Browser-{role.value}/1.0"})
    return Person(account, name)


async def audit(runtime: Runtime, *entries: trail.Entry) -> None:
    """Append audit rows of our own, in a unit of work (no caller in context)."""
    async with runtime.unit_of_work(actor=Actor()) as uow:
        for entry in entries:
            uow.audit.record(entry)


async def dispatch_all(runtime: Runtime) -> None:
    while await events.dispatch_batch(runtime, registry.reactions()):
        pass


async def subscribe(runtime: Runtime) -> None:
    async with runtime.unit_of_work() as uow:
        await WebhookService(uow, runtime.settings.worker, runtime.encryption).create(
            WebhookCreate(url=WEBHOOK_URL, event_types=["*"])
        )


async def issue_action_token(runtime: Runtime, someone: Person) -> None:
    async with runtime.db.session() as session:
        await ActionTokenRepository(session).issue(
            someone.id, "verify_email", someone.email, 3600, utcnow()
        )


@dataclass
class World:
    subject: Person
    other: Person
    admin: Person
    # The subject's names over time (the admin renamed them).
    names: tuple[str, ...]


async def populate(api: Api) -> World:
    """A subject with rows in every table; another user and an admin with their own.

    The subject's user.created is dispatched (mails and webhook deliveries owed, the
    outbox row done); the admin's rename of the subject stays undispatched.
    """
    runtime = api.runtime
    await subscribe(runtime)
    subject = await person(api)
    other = await person(api)
    admin = await person(api, Role.admin)
    await api.login(subject.account, **{"User-Agent": "Second-Browser/2.0"})
    await dispatch_all(runtime)
    await issue_action_token(runtime, subject)
    await issue_action_token(runtime, other)
    first_name = subject.name
    subject.name = f"{unique('Renamed')} {unique('Person')}"
    response = await api.client.patch(
        f"/api/v1/users/{subject.id}", json={"name": subject.name}, headers=admin.account.headers
    )
    assert response.status_code == 200, response.text
    subject_id = str(subject.id)
    await audit(
        runtime,
        # The subject's own action, from their client.
        trail.Entry(
            action="test.self_action",
            actor_id=subject.id,
            actor_role="user",
            target_type="user",
            target_id=subject_id,
            pii={"ip": SUBJECT_IP, "user_agent": "SubjectAgent/1.0", "email": subject.email},
        ),
        # The admin acting on the subject: the admin's client, the subject's new name.
        trail.Entry(
            action="test.admin_rename",
            actor_id=admin.id,
            actor_role="admin",
            target_type="user",
            target_id=subject_id,
            details={"fields": ["name"]},
            pii={"ip": ADMIN_IP, "user_agent": ADMIN_AGENT, "name": subject.name},
        ),
        # An anonymous login attempt on the subject's account.
        trail.Entry(
            action="test.login_failed",
            outcome="failure",
            target_type="user",
            target_id=subject_id,
            pii={"ip": STRANGER_IP, "identifier": subject.email},
        ),
        # An attempt naming the subject's address, tied to no account row.
        trail.Entry(
            action="test.login_unknown",
            outcome="failure",
            pii={"identifier": subject.email},
        ),
        # The other user's own business.
        trail.Entry(
            action="test.self_action",
            actor_id=other.id,
            actor_role="user",
            target_type="user",
            target_id=str(other.id),
            pii={"ip": "192.0.2.1", "email": other.email, "name": other.name},
        ),
    )
    return World(subject, other, admin, (first_name, subject.name))


# --- reading the database back ------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


async def scan(runtime: Runtime, needles: list[str]) -> list[str]:
    """Every (table.column, row) of the database whose text holds one of `needles`,
    case-insensitively: all tables, all string and JSON columns, from the metadata."""
    wanted = [n.lower() for n in needles]
    hits: list[str] = []
    async with runtime.db.session(write=False) as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, (String, JSON))]
            if not columns:
                continue
            for row in (await session.execute(select(*columns))).all():
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    text = _text(value).lower()
                    hits.extend(
                        f"{table.name}.{column.name}: {needle}"
                        for needle in wanted
                        if needle in text
                    )
    return hits


def string_columns_scanned() -> int:
    return sum(
        isinstance(c.type, (String, JSON))
        for table in Base.metadata.sorted_tables
        for c in table.columns
    )


async def write_mail_files(runtime: Runtime) -> Path:
    """Every mail row as the file mailer (no SMTP server) would have written it."""
    mail_dir = runtime.settings.server.data_dir / MAIL_DIR
    mail_dir.mkdir(parents=True, exist_ok=True)
    async with runtime.db.session(write=False) as session:
        for row in (await session.scalars(select(EmailMessage))).all():
            (mail_dir / file_name(row)).write_text(f"To: {row.to_address}\n\n{row.body}")
    return mail_dir


def files_holding(directory: Path, needles: list[str]) -> list[str]:
    return [
        path.name
        for path in directory.iterdir()
        if any(n.lower() in path.read_text().lower() for n in needles)
    ]


async def outbox_types(runtime: Runtime, user_id: uuid.UUID) -> list[str]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(
            select(OutboxEvent.event_type)
            .where(OutboxEvent.aggregate_id == user_id)
            .order_by(OutboxEvent.id)
        )
        return list(rows.all())


async def outbox_of(runtime: Runtime, user_id: uuid.UUID) -> list[OutboxEvent]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(
            select(OutboxEvent).where(OutboxEvent.aggregate_id == user_id).order_by(OutboxEvent.id)
        )
        return list(rows.all())


async def deliveries_of(runtime: Runtime, user_id: uuid.UUID) -> list[WebhookDelivery]:
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(select(WebhookDelivery))
        return [d for d in rows.all() if d.payload.get("data", {}).get("user_id") == str(user_id)]


async def audit_rows(runtime: Runtime, **where: Any) -> list[AuditEvent]:
    """Audit rows, in the order they were recorded (sealed or not)."""
    async with runtime.db.session(write=False) as session:
        stmt = select(AuditEvent).order_by(AuditEvent.id)
        for name, value in where.items():
            stmt = stmt.where(getattr(AuditEvent, name) == value)
        return list((await session.scalars(stmt)).all())


async def audit_count(runtime: Runtime) -> int:
    async with runtime.db.session(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


async def user_row(runtime: Runtime, user_id: uuid.UUID) -> User:
    async with runtime.db.session(write=False) as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


async def set_times(runtime: Runtime, user_id: uuid.UUID, **times: datetime | None) -> None:
    async with runtime.db.session() as session:
        await session.execute(update(User).where(User.id == user_id).values(**times))
