"""SMTP over STARTTLS and implicit TLS, with a login, and a certificate that is checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gatehouse.runtime import Runtime
from gatehouse.worker.embedded import InProcessRunner
from tests.emails.conftest import REGISTER, email_rows, signup
from tests.factories import Api
from tests.smtp import SmtpServer, make_certificate

# The transport does not depend on the database.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

CREDENTIALS = ("mailer", "smtp-pass-123")


@pytest.fixture(params=["starttls", "tls"])
def smtp_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SmtpServer]:
    certificate = make_certificate(tmp_path / "certs")
    with SmtpServer(
        security=request.param, certificate=certificate, credentials=CREDENTIALS
    ) as server:
        yield server


@pytest.fixture
def settings_overrides(smtp_server: SmtpServer) -> dict[str, Any]:
    # A handshake never takes long here, but a CI machine busy with browsers can stall
    # the server's thread for seconds: a timeout would hide the certificate's refusal
    # this file is about behind "timed out".
    return smtp_server.settings() | {"smtp_timeout_seconds": 20.0}


async def test_mail_goes_out_over_tls_with_a_login(
    api: Api,
    runner: InProcessRunner,
    runtime: Runtime,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert smtp_server.certificate is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_server.certificate.ca_file))
    body = signup()
    assert (await api.client.post(REGISTER, json=body)).status_code == 202
    await runner.drain(within=60)
    mails = await smtp_server.wait_for(2)
    assert {str(m["To"]) for m in mails} == {body["email"]}
    assert smtp_server.authenticated == [True, True]
    assert {r.status for r in await email_rows(runtime)} == {"sent"}


async def test_an_untrusted_certificate_stops_the_mail(
    api: Api, runner: InProcessRunner, runtime: Runtime, smtp_server: SmtpServer
) -> None:
    body = signup()
    assert (await api.client.post(REGISTER, json=body)).status_code == 202
    await runner.drain(within=60)
    assert smtp_server.messages == []
    rows = await email_rows(runtime)
    assert {(r.status, r.attempts) for r in rows} == {("pending", 1)}
    assert all("CERTIFICATE_VERIFY_FAILED" in (r.last_error or "") for r in rows), [
        r.last_error for r in rows
    ]
