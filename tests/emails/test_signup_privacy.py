"""Sign-up tells nobody which addresses have an account, and no mail prints text the
signer chose (issue "Hardening", item 9 and "sign-up that does not reveal accounts")."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from gatehouse.audit.models import AuditEvent
from gatehouse.runtime import Runtime
from gatehouse.users.models import Role, User
from gatehouse.worker.embedded import InProcessRunner
from tests.emails.conftest import REGISTER, by_subject, email_rows, signup
from tests.factories import PASSWORD, Api, assert_envelope
from tests.smtp import SmtpServer

LURE = "Jane, your account was flagged. Verify now at https://evil.example/login"


async def _users_with(runtime: Runtime, email: str) -> int:
    async with runtime.db.session(write=False) as session:
        count = await session.scalar(
            select(func.count()).select_from(User).where(User.email == email)
        )
    return int(count or 0)


async def test_no_mail_prints_the_name_the_signer_chose(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer
) -> None:
    body = signup() | {"name": LURE}
    assert (await api.client.post(REGISTER, json=body)).status_code == 202
    await runner.drain()
    mails = await smtp_server.wait_for(2)
    assert len(by_subject(mails, "Welcome")) == 1
    assert len(by_subject(mails, "Confirm your email")) == 1
    for mail in mails:
        content = mail.get_content()
        assert "evil.example" not in content
        assert "flagged" not in content
        assert "Jane" not in content
        assert "Jane" not in str(mail["Subject"])


def _shape(response: httpx.Response) -> tuple[int, object, dict[str, str]]:
    """All of an answer but its request id (and the clock's Date)."""
    headers = {
        k: v for k, v in response.headers.items() if k.lower() not in ("x-request-id", "date")
    }
    return response.status_code, response.json(), headers


async def test_a_taken_address_is_answered_exactly_like_a_new_one(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    owner = await api.create_user(email="owner@example.com")
    await runner.drain()
    await smtp_server.wait_for(2)  # the owner's own welcome and verification

    new = await api.client.post(REGISTER, json=signup("newcomer@example.com"))
    taken = await api.client.post(REGISTER, json=signup(owner.email) | {"name": LURE})

    assert new.status_code == 202, new.text
    assert _shape(new) == _shape(taken)
    assert set(new.json()) == {"status", "message"}
    assert new.json()["status"] == "check_your_email"

    # Nothing made for the taken address: still one account, the owner's, unchanged.
    assert await _users_with(runtime, owner.email) == 1
    async with runtime.db.session(write=False) as session:
        stored = await session.scalar(select(User).where(User.email == owner.email))
        audit = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "auth.register", AuditEvent.outcome == "failure"
                )
            )
        ).all()
    assert stored is not None
    assert (stored.id, stored.name) == (owner.id, "Test Person")
    assert [(a.reason, a.target_id) for a in audit] == [("email_taken", str(owner.id))]

    # The owner is told instead, in words of ours only; the newcomer gets their two.
    await runner.drain()
    await smtp_server.wait_for(5)
    [notice] = by_subject(smtp_server.to(owner.email), "tried to sign up")
    content = notice.get_content()
    assert "log in" in content
    assert "/forgot-password" in content
    assert "evil.example" not in content
    assert "Jane" not in content
    assert len(smtp_server.to(owner.email)) == 3
    assert len(smtp_server.to("newcomer@example.com")) == 2


async def test_the_owner_gets_one_notice_per_window_however_often_it_is_tried(
    api: Api, runner: InProcessRunner, smtp_server: SmtpServer, runtime: Runtime
) -> None:
    owner = await api.create_user(email="popular@example.com")
    for _ in range(3):
        response = await api.client.post(REGISTER, json=signup(owner.email))
        assert response.status_code == 202, response.text
    await runner.drain()
    rows = await email_rows(runtime, kind="signup_attempt")
    assert [row.to_address for row in rows] == [owner.email]


@pytest.mark.parametrize("email", ["owner@example.com", "nobody@example.com"])
async def test_a_weak_password_is_refused_alike_for_a_taken_or_a_new_address(
    api: Api, runtime: Runtime, email: str
) -> None:
    await api.create_user(email="owner@example.com")
    response = await api.client.post(REGISTER, json=signup(email) | {"password": "password"})
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]) == ["password"]
    assert await email_rows(runtime, kind="signup_attempt") == []


async def test_the_admin_create_keeps_its_400_for_a_taken_address(api: Api) -> None:
    admin = await api.user(Role.admin)
    await api.create_user(email="owner@example.com")
    response = await api.client.post(
        "/api/v1/users",
        json={"email": "owner@example.com", "name": "Again", "password": PASSWORD},
        headers=admin.headers,
    )
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert error["details"] == {"email": ["Email already exists"]}
