"""A real SMTP server for tests: aiosmtpd on a free loopback port, in a thread.

    server = SmtpServer()                       # plain SMTP
    server = SmtpServer(security="starttls", certificate=make_certificate(tmp_path))
    server.start()
    settings_overrides.update(server.settings())   # smtp_host/port/security(/username)
    ...
    [mail] = await server.wait_for(1)           # parsed email.message.EmailMessage
    server.stop()                               # connections are refused until start()

Faults, for the first DATA only (later ones are accepted normally):
- `refuse_first_data=True`: answered `451 4.3.0` (a temporary failure: retry later).
- `stall_first_data=True`: the message is recorded (the server has it, as a real MTA
  that queued it would) and the reply withheld until `release()` or `stop()`.
  `data_received` is set at that moment: the client is mid-send, waiting for the 250;
  kill it now and its retry delivers a second copy with the same Message-ID.

STARTTLS or implicit TLS ("tls") need a certificate: `make_certificate(dir)` creates a
throwaway CA and a certificate for 127.0.0.1 / localhost signed by it; point the client
at `certificate.ca_file` (e.g. `monkeypatch.setenv("SSL_CERT_FILE", ...)`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"
Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class Certificate:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_certificate(directory: Path) -> Certificate:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Gatehouse test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    result = Certificate(
        ca_file=directory / "smtp-ca.pem",
        cert_file=directory / "smtp-cert.pem",
        key_file=directory / "smtp-key.pem",
    )
    result.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    result.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    result.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        server = self.server
        with server.lock:
            first = not server._data_seen
            server._data_seen = True
        if first and server.refuse_first_data:
            return "451 4.3.0 Try again later"
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        server.messages.append(message)
        server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        server.authenticated.append(bool(session.authenticated))
        server.data_received.set()
        if first and server.stall_first_data:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, server._released.wait, server.stall_seconds)
        return "250 2.0.0 OK"


class SmtpServer:
    """aiosmtpd on 127.0.0.1, a free port chosen once (kept across stop/start)."""

    def __init__(
        self,
        *,
        security: Security = "none",
        certificate: Certificate | None = None,
        credentials: tuple[str, str] | None = None,
        refuse_first_data: bool = False,
        stall_first_data: bool = False,
        stall_seconds: float = 60.0,
    ) -> None:
        if security != "none" and certificate is None:
            raise ValueError("STARTTLS and TLS need a certificate (make_certificate)")
        self.host = HOST
        self.port = free_port()
        self.security = security
        self.certificate = certificate
        self.credentials = credentials
        self.refuse_first_data = refuse_first_data
        self.stall_first_data = stall_first_data
        self.stall_seconds = stall_seconds
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str | None, list[str]]] = []
        # Per message: whether the client had logged in (AUTH) first.
        self.authenticated: list[bool] = []
        self.data_received = threading.Event()
        self.lock = threading.Lock()
        self._data_seen = False
        self._released = threading.Event()
        self._controller: Controller | None = None

    def settings(self) -> dict[str, Any]:
        """The settings that make Gatehouse send to this server."""
        values: dict[str, Any] = {
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_security": self.security,
            "smtp_timeout_seconds": 5.0,
        }
        if self.credentials is not None:
            values["smtp_username"], values["smtp_password"] = self.credentials
        return values

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {}
        if self.security == "starttls":
            assert self.certificate is not None
            kwargs.update(tls_context=self.certificate.server_context(), require_starttls=True)
        if self.credentials is not None:
            # Only STARTTLS needs the check: aiosmtpd does not see implicit TLS (it is
            # already there), and plain SMTP allows a login test without a certificate.
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=self.security == "starttls",
            )
        ssl_context = None
        if self.security == "tls":
            assert self.certificate is not None
            ssl_context = self.certificate.server_context()
        self._released.clear()
        self._controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            ssl_context=ssl_context,
            server_hostname="localhost",
            **kwargs,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening; a client gets "connection refused" until `start()`."""
        self._released.set()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def release(self) -> None:
        """Answer the stalled DATA now."""
        self._released.set()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword) or self.credentials is None:
            return AuthResult(success=False, handled=False)
        user, password = self.credentials
        ok = data.login.decode() == user and data.password.decode() == password
        return AuthResult(success=ok)

    def message_ids(self) -> Counter[str]:
        """How many copies of each Message-ID arrived (a retry repeats it)."""
        return Counter(str(m["Message-ID"]) for m in self.messages)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if str(m["To"]) == address]

    async def wait_for(self, count: int, *, within: float = 10.0) -> list[EmailMessage]:
        """At least `count` messages (polled); AssertionError after `within` seconds."""
        deadline = time.monotonic() + within
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} messages within {within} s, got {len(self.messages)}"
                )
            await asyncio.sleep(0.02)
        return list(self.messages)

    def wait(self, count: int, *, within: float = 10.0) -> list[EmailMessage]:
        """`wait_for` for synchronous code."""
        deadline = time.monotonic() + within
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} messages within {within} s, got {len(self.messages)}"
                )
            time.sleep(0.02)
        return list(self.messages)

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()
