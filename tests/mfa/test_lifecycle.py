"""What turning MFA on and off does to sessions, a password reset, the admin's reset,
the recovery codes, passkeys as a second factor, the policy, the GDPR export and
erasure, the key rotation of TOTP secrets, and the words of the mails about second
factors."""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import func, select, text

from gatehouse.auth.principal import Principal
from gatehouse.dependencies import build_mfa_service
from gatehouse.emails.templates import TOKEN_PLACEHOLDER, Kind, render
from gatehouse.keys.service import rotate_encryption
from gatehouse.kit.jobs import LeftForSweep
from gatehouse.mfa.models import MfaChallenge, RecoveryCode, TotpFactor
from gatehouse.passkeys.models import Passkey
from gatehouse.privacy.erasure import erase
from gatehouse.privacy.repository import PrivacyRepository
from gatehouse.runtime import Runtime
from gatehouse.users.models import Role
from tests.conftest import make_settings
from tests.factories import Account, Api, assert_envelope
from tests.mfa.support import (
    MFA,
    REFRESH,
    VERIFY,
    audit_of,
    claims,
    enrol,
    mails_of,
    password_step,
    step_start,
)
from tests.privacy.support import outbox_types


async def test_mfa_going_on_ends_the_other_sessions_and_upgrades_this_one(api: Api) -> None:
    with step_start():
        user = await api.user("user")
        before = Account(**vars(await api.login(Account(**vars(user)))))
        enrolled = await enrol(api, user)
        # The refresh token of a session from before: dead, with its access token.
        dead = await api.client.post(REFRESH, json={"refresh_token": before.refresh_token})
        assert_envelope(dead, 400, "INVALID_GRANT")
        gone = await api.client.get("/api/v1/users/me", headers=before.headers)
        assert gone.status_code == 401
        # The enrolling session goes on; its next tokens say a second factor was used.
        kept = await api.client.post(
            REFRESH, json={"refresh_token": enrolled.account.refresh_token}
        )
        assert kept.status_code == 200, kept.text
        assert claims(kept.json()["access_token"])["amr"] == ["pwd", "otp", "mfa"]


async def test_a_password_reset_leaves_mfa_on(api: Api) -> None:
    new_password = "Quiet-Harbor-Pelican-77"
    with step_start():
        enrolled = await enrol(api, await api.user("user"))
        await api.reset_password(enrolled.account, new_password)
        details = await password_step(api, enrolled.account)
    assert details["methods"] == ["totp", "recovery_code"]


async def test_a_recovery_code_logs_in_once(api: Api, runtime: Runtime) -> None:
    with step_start():
        enrolled = await enrol(api, await api.user("user"))
        code = enrolled.recovery_codes[3]
        details = await password_step(api, enrolled.account)
        typed = code.upper().replace("-", " ")  # as someone might type it
        used = await api.client.post(
            VERIFY,
            json={"mfa_token": details["mfa_token"], "method": "recovery_code", "code": typed},
        )
        assert used.status_code == 200, used.text
        assert claims(used.json()["access_token"])["amr"] == ["pwd", "otp", "mfa"]
        details = await password_step(api, enrolled.account)
        again = await api.client.post(
            VERIFY,
            json={"mfa_token": details["mfa_token"], "method": "recovery_code", "code": code},
        )
        assert_envelope(again, 401, "INVALID_MFA_CODE")
        headers = {"Authorization": f"Bearer {used.json()['access_token']}"}
        state = (await api.client.get(MFA, headers=headers)).json()
    assert state["recovery_codes_left"] == 9
    assert "recovery_code_used" in await mails_of(runtime, enrolled.account.id)
    (row,) = await audit_of(runtime, "mfa.recovery_code_used", enrolled.account.id)
    assert row.details == {"left": 9}


async def _add_passkey(runtime: Runtime, user_id: uuid.UUID, name: str = "Laptop") -> None:
    """A passkey row as the passkeys feature stores it (this suite does not register)."""
    async with runtime.db.session() as session:
        session.add(
            Passkey(
                user_id=user_id,
                credential_id=secrets.token_bytes(32),
                public_key=b"\xa5\x01\x02",
                name=name,
                transports=["internal"],
                backed_up=True,
            )
        )


async def test_a_passkey_alone_is_mfa(api: Api, runtime: Runtime) -> None:
    user = await api.user("user")
    await _add_passkey(runtime, user.id)
    details = await password_step(api, user)
    assert details["methods"] == ["webauthn"]
    body = {
        "mfa_token": details["mfa_token"],
        "method": "webauthn",
        "challenge_id": str(uuid.uuid4()),
        "credential": {"id": "abc", "type": "public-key"},
    }
    # No ceremony was started for it: a wrong second factor (tests/passkeys has the
    # right ones).
    refused = await api.client.post(VERIFY, json=body)
    assert assert_envelope(refused, 401, "INVALID_MFA_CODE")["details"] == {"attempts_left": 4}
    totp = await api.client.post(
        VERIFY, json={"mfa_token": details["mfa_token"], "method": "totp", "code": "123456"}
    )
    assert_envelope(totp, 400, "VALIDATION_ERROR")


async def test_an_admin_resets_a_users_factors(api: Api, runtime: Runtime) -> None:
    admin = await api.user("admin")
    with step_start():
        enrolled = await enrol(api, await api.user("user"))
    await _add_passkey(runtime, enrolled.account.id)
    target = f"/api/v1/users/{enrolled.account.id}/mfa"
    seen = await api.client.get(target, headers=admin.headers)
    assert seen.status_code == 200, seen.text
    state = seen.json()
    assert state["enabled"]
    assert state["totp"]["enabled"]
    assert state["recovery_codes_left"] == 10
    assert [p["name"] for p in state["passkeys"]] == ["Laptop"]
    assert set(state["passkeys"][0]) == {
        "id",
        "name",
        "created_at",
        "last_used_at",
        "backed_up",
        "transports",
    }

    reset = await api.client.delete(target, headers=admin.headers)
    assert reset.status_code == 204, reset.text
    after = (await api.client.get(target, headers=admin.headers)).json()
    assert (after["enabled"], after["recovery_codes_left"], after["passkeys"]) == (False, 0, [])
    # Logged out everywhere; the password alone logs in again.
    out = await api.client.get("/api/v1/users/me", headers=enrolled.account.headers)
    assert out.status_code == 401
    await api.login(enrolled.account)
    (row,) = await audit_of(runtime, "mfa.reset", enrolled.account.id)
    assert row.actor_id == admin.id
    assert row.details == {
        "totp": 1,
        "recovery_codes": 10,
        "passkeys": 1,
        "challenges": 0,
        "sessions_ended": 1,
    }
    assert (await outbox_types(runtime, enrolled.account.id))[-1] == "user.mfa_reset"
    assert "mfa_reset" in await mails_of(runtime, enrolled.account.id)
    missing = await api.client.get(f"/api/v1/users/{uuid.uuid4()}/mfa", headers=admin.headers)
    assert_envelope(missing, 404, "USER_NOT_FOUND")


@pytest.mark.parametrize("settings_overrides", [{"mfa_required_roles": "admin"}])
async def test_an_admin_who_must_enrol_can_and_then_works(api: Api) -> None:
    with step_start():
        admin = await api.user("admin")
        assert_envelope(
            await api.client.get("/api/v1/users", headers=admin.headers),
            403,
            "MFA_ENROLLMENT_REQUIRED",
        )
        state = (await api.client.get(MFA, headers=admin.headers)).json()
        assert (state["enabled"], state["required"]) == (False, True)
        enrolled = await enrol(api, admin)
        # The same token (amr pwd): the database now says MFA is on.
        listed = await api.client.get("/api/v1/users", headers=enrolled.account.headers)
        assert listed.status_code == 200, listed.text


async def test_the_export_lists_factors_and_erasure_removes_them(
    api: Api, runtime: Runtime
) -> None:
    with step_start():
        enrolled = await enrol(api, await api.user("user"))
        await password_step(api, enrolled.account)  # a pending mfa_token too
    await _add_passkey(runtime, enrolled.account.id, name="Phone")
    export = await api.client.get("/api/v1/users/me/export", headers=enrolled.account.headers)
    assert export.status_code == 200, export.text
    factors = export.json()["factors"]
    assert [f["kind"] for f in factors] == ["totp", "passkey"] + ["recovery_code"] * 10
    assert factors[1]["name"] == "Phone"
    assert factors[0]["confirmed_at"]
    text_of = export.text
    assert enrolled.secret not in text_of
    assert not any(code in text_of for code in enrolled.recovery_codes)

    async with runtime.unit_of_work() as uow:
        user = await PrivacyRepository(uow.session).user(enrolled.account.id, lock=True)
        assert user is not None
        erased = await erase(uow, user, settings=runtime.settings, details={})
    assert erased.factors == 1 + 10 + 1 + 1
    async with runtime.db.session(write=False) as session:
        for model in (TotpFactor, RecoveryCode, Passkey, MfaChallenge):
            count = await session.scalar(
                select(func.count()).select_from(model).where(model.user_id == user.id)
            )
            assert count == 0, model.__tablename__


def _entry(kid: str) -> str:
    return f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


async def test_rotate_encryption_moves_totp_secrets_to_the_new_key(
    api: Api, database_url: str, tmp_path: Path, signing_key_pem: str
) -> None:
    old, new = _entry("old"), _entry("new")

    def runtime_with(keys: str) -> Runtime:
        rt = Runtime.create(
            make_settings(database_url, tmp_path, signing_key_pem, encryption_keys=keys)
        )
        rt.use_jobs(LeftForSweep())
        return rt

    user = await api.create_user("user")
    actor = Principal(user.id, Role.user, uuid.uuid4(), 0)
    with step_start():
        before = runtime_with(old)
        try:
            async with before.unit_of_work() as uow:
                enrolment = await build_mfa_service(uow, before).enrol_totp(actor, user.password)
        finally:
            await before.close()
        both = runtime_with(f"{new},{old}")
        try:
            rotation = await rotate_encryption(both, batch_size=10)
        finally:
            await both.close()
        counts = {c.label: (c.reencrypted, c.failures) for c in rotation.columns}
        assert counts["mfa_totp.secret"] == (1, 0)
        async with api.runtime.db.session(write=False) as session:
            (stored,) = (await session.execute(text("SELECT secret FROM mfa_totp"))).scalars()
        assert stored.startswith("v1.new.")

        # Only the new key now: the secret still confirms with the app's code.
        only_new = runtime_with(new)
        try:
            async with only_new.unit_of_work() as uow:
                codes = await build_mfa_service(uow, only_new).confirm_totp(
                    actor, pyotp.TOTP(enrolment.secret).now()
                )
        finally:
            await only_new.close()
    assert len(codes) == 10


# Every mail about second factors (the others are about logins, addresses and sign-ups).
MFA_MAILS = [
    Kind.totp_enabled,
    Kind.totp_disabled,
    Kind.passkey_added,
    Kind.passkey_removed,
    Kind.recovery_codes_regenerated,
    Kind.recovery_code_used,
    Kind.mfa_reset,
    Kind.mfa_code_guessing,
]


def test_every_second_factor_mail_renders_without_a_secret_or_a_code(
    tmp_path: Path, signing_key_pem: str
) -> None:
    others = {
        Kind.welcome,
        Kind.verify_email,
        Kind.password_reset,
        Kind.login_under_attack,
        Kind.email_changed,
        Kind.signup_attempt,
    }
    assert set(MFA_MAILS) == set(Kind) - others, "a new kind of mail: which is it?"
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/unused.db",
        tmp_path,
        signing_key_pem,
        public_url="https://login.acme.test",
        email_from="Acme Login <no-reply@acme.test>",
    )
    subjects = set()
    for kind in MFA_MAILS:
        mail = render(kind, settings, email="jane@example.com")
        subjects.add(mail.subject)
        assert "Acme Login" in mail.subject, kind
        assert "\n" not in mail.subject, kind
        assert "jane@example.com" in mail.body, kind
        # What to do if it was not you: a link to ask for a reset mail, itself no token.
        assert "https://login.acme.test/forgot-password" in mail.body, kind
        text = f"{mail.subject}\n{mail.body}"
        assert TOKEN_PLACEHOLDER not in text, kind
        assert "token" not in text.lower(), kind
        assert not re.search(r"\d{6}", text), kind  # no TOTP code
        assert not re.search(r"\b[a-z0-9]{5}-[a-z0-9]{5}\b", text), kind  # no recovery code
    assert len(subjects) == len(MFA_MAILS)  # each says what happened
