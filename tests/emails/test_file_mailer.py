"""The embedded default: no SMTP server configured, mails land in the data dir."""

from __future__ import annotations

import stat
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from gatehouse.runtime import Runtime
from gatehouse.worker.embedded import InProcessRunner
from tests.emails.conftest import PUBLIC_URL, REGISTER, VERIFY, link, signup
from tests.factories import Api
from tests.logs import LogCapture


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"public_url": PUBLIC_URL}


async def test_without_smtp_each_mail_is_an_eml_file_in_the_data_dir(
    api: Api, runner: InProcessRunner, runtime: Runtime, json_logs: LogCapture
) -> None:
    body = signup()
    assert (await api.client.post(REGISTER, json=body)).status_code == 202
    await runner.drain()

    files = sorted((runtime.settings.server.data_dir / "mail").glob("*.eml"))
    assert len(files) == 2
    mails: list[EmailMessage] = []
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(mail, EmailMessage)
        assert str(mail["To"]) == body["email"]
        mails.append(mail)
    [verify] = [m for m in mails if "Confirm" in str(m["Subject"])]
    _, token = link(verify)
    # The link sits on one line of the file, as a developer would copy it.
    assert f"{PUBLIC_URL}/verify-email?token={token}" in files[mails.index(verify)].read_text()

    written = [r for r in json_logs.records() if r["event"] == "email.written"]
    assert sorted(r["path"] for r in written) == [str(f) for f in files]
    assert token not in json_logs.text()
    assert (await api.client.post(VERIFY, json={"token": token})).status_code == 200
