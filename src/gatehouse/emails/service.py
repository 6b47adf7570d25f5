"""Email as jobs: a row is written in the caller's transaction, then sent by a worker.

Sending is at least once: each attempt leases the row (`next_attempt_at` pushed past
the time a send can take), sends outside any transaction, then marks the row sent. A
worker that dies mid-send leaves a pending row that the sweep finds once the lease has
run out; the repeat carries the same Message-ID, so a receiver can drop the duplicate.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.config import Settings
from gatehouse.emails.models import EmailMessage
from gatehouse.emails.repository import CANCELLED, FAILED, EmailRepository
from gatehouse.emails.sender import Mailer, compose, send_deadline_seconds
from gatehouse.emails.templates import (
    EMAIL_CHANGE_UNDO_TTL_SECONDS,
    TOKEN_PLACEHOLDER,
    Kind,
    render,
)
from gatehouse.kit import metrics
from gatehouse.kit.time import utcnow
from gatehouse.recovery.repository import ActionTokenRepository
from gatehouse.runtime import Runtime
from gatehouse.uow import UnitOfWork
from gatehouse.users.models import User
from gatehouse.users.repository import UserRepository

log = structlog.get_logger("gatehouse.emails")

SEND_JOB = "emails.send"
# Attempts before a mail is given up (status `failed`), and the waits between them:
# 30 s doubling up to an hour, about 3 hours in all for an SMTP server to come back.
MAX_ATTEMPTS = 10
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
# Sent, failed and cancelled mails are kept this long (for support: "did the mail go
# out?"), then deleted by the cleanup: they hold a name and an address.
FINISHED_RETENTION_DAYS = 30


def backoff_seconds(attempts: int) -> int:
    return int(min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


def lease_seconds(settings: Settings) -> float:
    """How long a claimed row is left alone: longer than one send can take."""
    return send_deadline_seconds(settings) + 5


def token_ttl_seconds(kind: Kind, settings: Settings) -> int:
    if kind is Kind.verify_email:
        return settings.worker.email_verification_ttl_seconds
    if kind is Kind.email_changed:
        return EMAIL_CHANGE_UNDO_TTL_SECONDS
    return settings.worker.password_reset_ttl_seconds


async def queue_email(
    uow: UnitOfWork,
    settings: Settings,
    *,
    kind: Kind,
    user: User,
    dedupe_key: str,
    request_id: str | None = None,
    to: str | None = None,
) -> uuid.UUID | None:
    """Write a pending mail to `user` and send it after commit; None if one with the
    same (kind, dedupe_key) exists already.

    `to`: another address of the account's than its current one: the address it just
    left (`Kind.email_changed`, which then names the current one as the new address).
    """
    address = to or user.email
    new_email = user.email if address != user.email else None
    rendered = render(kind, settings, email=address, new_email=new_email)
    email_id = await EmailRepository(uow.session).add_once(
        {
            "user_id": user.id,
            "kind": kind.value,
            "dedupe_key": dedupe_key,
            "to_address": address,
            "subject": rendered.subject,
            "body": rendered.body,
            "request_id": request_id or uow.actor.request_id,
            "created_at": utcnow(),
        }
    )
    if email_id is not None:
        uow.jobs.after_commit(SEND_JOB, email_id=str(email_id))
    return email_id


async def _action_token(session: AsyncSession, settings: Settings, row: EmailMessage) -> str | None:
    """A fresh token for an action mail, or None when the mail is no longer wanted."""
    kind = Kind(row.kind)
    user = await UserRepository(session).get(row.user_id) if row.user_id else None
    if user is None:
        return None
    if kind is Kind.email_changed:
        # The token takes the account back to the address it left, which the mail goes
        # to; moot if the account has that address again.
        if user.email == row.to_address:
            return None
    elif user.email != row.to_address:
        return None
    if kind is Kind.verify_email and user.email_verified_at is not None:
        return None
    return await ActionTokenRepository(session).issue(
        user.id, kind.value, row.to_address, token_ttl_seconds(kind, settings), utcnow()
    )


def file_name(row: EmailMessage) -> str:
    return f"{row.created_at:%Y%m%d-%H%M%S}-{row.kind}-{row.id}.eml"


async def send(runtime: Runtime, email_id: uuid.UUID) -> None:
    """Send one pending, due mail; nothing for a mail already sent or being sent."""
    settings = runtime.settings
    now = utcnow()
    async with runtime.db.session() as session:
        row = await EmailRepository(session).claim(email_id, now)
        if row is None:
            return
        if row.attempts >= MAX_ATTEMPTS:
            # Its last attempt never reported back (the worker died): give up now.
            row.status, row.next_attempt_at = FAILED, None
            log.error("email.failed", email_id=str(row.id), kind=row.kind, attempts=row.attempts)
            return
        row.attempts += 1
        row.next_attempt_at = now + timedelta(seconds=lease_seconds(settings))
        body = row.body
        if TOKEN_PLACEHOLDER in body:
            # Minted and committed before the mail leaves: the link works on arrival.
            token = await _action_token(session, settings, row)
            if token is None:
                row.status = CANCELLED
                row.next_attempt_at = None
                row.last_error = "not sent: the account was deleted, verified or changed address"
                log.info("email.cancelled", email_id=str(row.id), kind=row.kind)
                return
            body = body.replace(TOKEN_PLACEHOLDER, token)
        attempts, kind, name = row.attempts, row.kind, file_name(row)
        message = compose(
            settings, email_id=row.id, to=row.to_address, subject=row.subject, body=body
        )

    try:
        await runtime.part(Mailer).send(message, file_name=name)
    except Exception as exc:  # any failure is retried: the row is the truth
        metrics.EMAILS.labels(kind, "failed").inc()
        error = f"{type(exc).__name__}: {exc}"
        retry_at = None
        if attempts < MAX_ATTEMPTS:
            retry_at = utcnow() + timedelta(seconds=backoff_seconds(attempts))
        async with runtime.db.session() as session:
            await EmailRepository(session).mark_failed_attempt(email_id, error, retry_at)
        if retry_at is None:
            log.error(
                "email.failed", email_id=str(email_id), kind=kind, attempts=attempts, error=error
            )
        else:
            log.warning(
                "email.send_failed",
                email_id=str(email_id),
                kind=kind,
                attempts=attempts,
                retry_at=retry_at.isoformat(),
                error=error,
            )
        return

    metrics.EMAILS.labels(kind, "sent").inc()
    async with runtime.db.session() as session:
        await EmailRepository(session).mark_sent(email_id, utcnow())
    log.info("email.sent", email_id=str(email_id), kind=kind, attempts=attempts)


async def sweep(runtime: Runtime) -> int:
    """Enqueue every pending mail that is due (new, backed off, or its lease ran out)."""
    async with runtime.db.session(write=False) as session:
        due = await EmailRepository(session).due_ids(
            utcnow(), runtime.settings.worker.outbox_batch_size
        )
    for email_id in due:
        runtime.enqueue(SEND_JOB, email_id=str(email_id))
    return len(due)


async def cleanup(runtime: Runtime) -> tuple[int, int]:
    """Delete finished mails past their retention, and spent action tokens."""
    now = utcnow()
    async with runtime.db.session() as session:
        mails = await EmailRepository(session).delete_finished(
            now - timedelta(days=FINISHED_RETENTION_DAYS)
        )
        tokens = await ActionTokenRepository(session).delete_spent(now)
    if mails or tokens:
        log.info("email.cleanup", mails_deleted=mails, tokens_deleted=tokens)
    return mails, tokens
