"""Getting a composed email out of the process: SMTP, or files in the data dir.

With `GATEHOUSE_SMTP_HOST` set, mails go to that server (STARTTLS, implicit TLS or
plain, per `GATEHOUSE_SMTP_SECURITY`). Without it (the embedded default) each mail is
written as an .eml file into `<data_dir>/mail/`, so a developer can read it.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import aiosmtplib
import structlog

from gatehouse.config import Settings
from gatehouse.kit.time import utcnow

if TYPE_CHECKING:
    from gatehouse.runtime import Runtime

log = structlog.get_logger("gatehouse.emails")

MAIL_DIR = "mail"


def send_deadline_seconds(settings: Settings) -> float:
    """The longest one SMTP send may take, all commands together."""
    return 2 * settings.worker.smtp_timeout_seconds


def message_id(email_id: object, settings: Settings) -> str:
    """Stable per row: a retried send carries the same Message-ID, so receivers can dedupe."""
    _, address = parseaddr(settings.worker.email_from)
    domain = address.rpartition("@")[2] or "gatehouse.invalid"
    return f"<{email_id}@{domain}>"


def compose(
    settings: Settings, *, email_id: object, to: str, subject: str, body: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.worker.email_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id(email_id, settings)
    message["Date"] = format_datetime(utcnow())
    # RFC 3834: no auto-replies (vacation notices) to a machine-sent mail.
    message["Auto-Submitted"] = "auto-generated"
    # 7bit keeps a long link on one line (quoted-printable would fold it) in the .eml
    # files and in any mail reader; a name in another script needs quoted-printable.
    message.set_content(body, cte="7bit" if body.isascii() else "quoted-printable")
    return message


class Mailer:
    """This process's way out for email (a runtime Part: one per process)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        worker = settings.worker
        self.smtp_host = worker.smtp_host
        self.mail_dir = settings.server.data_dir / MAIL_DIR
        self._tls: ssl.SSLContext | None = None
        if self.smtp_host and worker.smtp_security != "none":
            # The system's CAs (SSL_CERT_FILE / SSL_CERT_DIR name others); hostname
            # checked: a mail with a reset link must not go to an impostor server.
            self._tls = ssl.create_default_context()

    @classmethod
    def create(cls, runtime: Runtime) -> Self:
        return cls(runtime.settings)

    async def send(self, message: EmailMessage, *, file_name: str) -> None:
        """Deliver one message; raises on failure (the caller retries later)."""
        if self.smtp_host:
            await self._send_smtp(message)
        else:
            path = await asyncio.to_thread(self._write, message, file_name)
            log.info("email.written", path=str(path), message_id=message["Message-ID"])

    def _smtp_options(self) -> dict[str, Any]:
        worker = self.settings.worker
        password = worker.smtp_password.get_secret_value() if worker.smtp_password else None
        return {
            "hostname": self.smtp_host,
            "port": worker.smtp_port,
            "username": worker.smtp_username,
            "password": password if worker.smtp_username else None,
            "use_tls": worker.smtp_security == "tls",
            # Explicit: "none" must not upgrade on its own, and "starttls" must fail
            # rather than fall back to plain text when the server does not offer it.
            "start_tls": worker.smtp_security == "starttls",
            "tls_context": self._tls,
            "timeout": worker.smtp_timeout_seconds,
        }

    async def _send_smtp(self, message: EmailMessage) -> None:
        # aiosmtplib's timeout is per command; the whole send is bounded too, so that
        # the row's lease (see emails.service) always outlasts it.
        async with asyncio.timeout(send_deadline_seconds(self.settings)):
            await aiosmtplib.send(message, **self._smtp_options())

    async def probe(self) -> None:
        """Connect, greet, upgrade to TLS and log in as a send would, then quit, sending
        nothing (`gatehouse doctor`); raises what a send would."""
        if not self.smtp_host:
            raise RuntimeError("no SMTP server configured (GATEHOUSE_SMTP_HOST)")
        # The constructor logs in on connect when given a username, as send() does.
        async with aiosmtplib.SMTP(**self._smtp_options()):
            pass

    def _write(self, message: EmailMessage, file_name: str) -> Path:
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        path = self.mail_dir / file_name
        partial = path.with_suffix(".part")
        # Owner-only: the file holds a live link (a password reset, say).
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.as_bytes())
        # Same name on a retry: the file is replaced, never duplicated.
        partial.replace(path)
        return path

    async def aclose(self) -> None:
        return None
