"""Passkeys over HTTP, on SQLite and PostgreSQL, with a software authenticator:
registration (a first passkey turning MFA on), management, passwordless login, and the
second-factor check at login and for a step-up."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
import time_machine
from sqlalchemy import select

from gatehouse.auth.models import Session
from gatehouse.dependencies import build_passkey_service
from gatehouse.kit.time import utcnow
from gatehouse.mfa.models import MfaChallenge
from gatehouse.passkeys import tasks
from gatehouse.passkeys.errors import InvalidPasskey
from gatehouse.passkeys.service import PasskeyAssertions
from tests.factories import Account, Api, assert_envelope
from tests.mfa.support import REFRESH, STEP_UP, claims, mails_to
from tests.passkeys.authenticator import CredentialExcluded, SoftwareAuthenticator, b64url
from tests.passkeys.support import (
    MINE,
    ORIGIN,
    RP_ID,
    SETTINGS,
    VERIFY,
    age_step_up,
    audit_of,
    challenge_row,
    login_options,
    passwordless,
    register,
    registration_options,
    stored_passkeys,
    try_login,
)
from tests.privacy.support import outbox_of

ME = "/api/v1/users/me"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return SETTINGS


async def test_register_list_rename_and_remove(api: Api) -> None:
    user = await api.user()
    laptop = SoftwareAuthenticator(ORIGIN)
    phone = SoftwareAuthenticator(ORIGIN, synced=True)

    # No second factor yet: the password proves it is the owner.
    missing = await registration_options(api, user)
    assert_envelope(missing, 403, "REAUTHENTICATION_REQUIRED")
    wrong = await registration_options(api, user, "Not-The-Password-1")
    assert_envelope(wrong, 403, "INVALID_CURRENT_PASSWORD")
    started = await registration_options(api, user, user.password)
    options = started.json()["options"]
    assert options["rp"] == {"id": RP_ID, "name": "Example Login"}
    assert options["user"]["id"] == b64url(user.id.bytes)
    assert options["user"]["name"] == user.email
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["excludeCredentials"] == []

    first = await register(api, user, laptop, "  Laptop  ", password=user.password)
    # The first factor turned MFA on: recovery codes, shown this once.
    assert len(first["recovery_codes"]) == 10
    passkey = first["passkey"]
    assert set(passkey) == {"id", "name", "created_at", "last_used_at", "backed_up", "transports"}
    assert (passkey["name"], passkey["backed_up"], passkey["last_used_at"]) == (
        "Laptop",
        False,
        None,
    )
    assert passkey["transports"] == ["hybrid", "internal"]

    # Turning MFA on counted as this session's step-up; once that has aged, the
    # password session must step up again before adding another.
    await age_step_up(api.runtime, user)
    refused = await registration_options(api, user, user.password)
    error = assert_envelope(refused, 403, "STEP_UP_REQUIRED")
    assert error["details"] == {
        "methods": ["recovery_code", "webauthn"],
        "step_up_url": "/api/v1/auth/mfa/step-up",
    }

    # A passkey login is a fresh step-up.
    stepped = await passwordless(api, user, laptop)
    again = await registration_options(api, stepped)
    excluded = again.json()["options"]["excludeCredentials"]
    assert [c["id"] for c in excluded] == [b64url(laptop.only.id)]
    with pytest.raises(CredentialExcluded):
        laptop.create(again.json()["options"])
    # A client that registers the same credential anyway is refused.
    duplicate = await api.client.post(
        MINE,
        json={
            "challenge_id": again.json()["challenge_id"],
            "name": "Laptop again",
            "credential": laptop.create(again.json()["options"], reuse=laptop.only),
        },
        headers=stepped.headers,
    )
    assert_envelope(duplicate, 409, "PASSKEY_ALREADY_REGISTERED")
    second = await register(api, stepped, phone, "Phone")
    assert second["passkey"]["backed_up"] is True

    listed = await api.client.get(MINE, headers=user.headers)
    assert [p["name"] for p in listed.json()] == ["Laptop", "Phone"]
    assert listed.json()[0]["last_used_at"] is not None  # the login used it

    renamed = await api.client.patch(
        f"{MINE}/{passkey['id']}", json={"name": " Work laptop "}, headers=user.headers
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Work laptop"
    for bad in ("", "   ", "x" * 101, "tab\there"):
        response = await api.client.patch(
            f"{MINE}/{passkey['id']}", json={"name": bad}, headers=user.headers
        )
        assert_envelope(response, 400, "VALIDATION_ERROR")

    # Someone else's passkey is not there for them, whatever they do.
    stranger = await api.user()
    for method, body in (("PATCH", {"name": "Mine now"}), ("DELETE", None)):
        response = await api.client.request(
            method, f"{MINE}/{passkey['id']}", json=body, headers=stranger.headers
        )
        assert_envelope(response, 404, "PASSKEY_NOT_FOUND")

    # Removing one needs a step-up: the password session has none.
    denied = await api.client.delete(f"{MINE}/{passkey['id']}", headers=user.headers)
    assert_envelope(denied, 403, "STEP_UP_REQUIRED")
    removed = await api.client.delete(f"{MINE}/{passkey['id']}", headers=stepped.headers)
    assert removed.status_code == 204
    listed = await api.client.get(MINE, headers=user.headers)
    assert [p["name"] for p in listed.json()] == ["Phone"]

    # Each passkey added or removed is mailed to the account's address.
    mails = [(m.kind, m.to_address) for m in await mails_to(api.runtime, user.id)]
    assert mails == [
        ("passkey_added", user.email),
        ("passkey_added", user.email),
        ("passkey_removed", user.email),
    ]

    rows = [(r.action, r.outcome, r.reason) for r in await audit_of(api.runtime)]
    assert rows == [
        ("passkey.register", "failure", "wrong_password"),
        ("passkey.register", "success", None),
        ("passkey.login", "success", None),
        ("passkey.register", "failure", "already_registered"),
        ("passkey.register", "success", None),
        ("passkey.rename", "success", None),
        ("passkey.remove", "success", None),
    ]


async def test_passwordless_login_issues_a_token_pair(api: Api) -> None:
    user = await api.user()
    device = SoftwareAuthenticator(ORIGIN)
    await register(api, user, device, "Laptop", password=user.password)

    ceremony = await login_options(api)
    options = ceremony["options"]
    assert options["rpId"] == RP_ID
    assert options["userVerification"] == "required"
    assert options["allowCredentials"] == []
    response = await api.client.post(
        VERIFY,
        json={"challenge_id": ceremony["challenge_id"], "credential": device.get(options)},
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    me = await api.client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["email"] == user.email
    refreshed = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200

    # Browser apps get the cookie-mode answer, as from /auth/token.
    ceremony = await login_options(api)
    cookie = await api.client.post(
        VERIFY,
        json={
            "challenge_id": ceremony["challenge_id"],
            "credential": device.get(ceremony["options"]),
        },
        headers={"X-Token-Transport": "cookie"},
    )
    assert cookie.status_code == 200, cookie.text
    assert set(cookie.json()) == {"access_token", "token_type", "expires_in", "csrf_token"}
    assert "gatehouse_refresh" in cookie.headers["set-cookie"]

    async with api.runtime.db.session(write=False) as session:
        logins = (
            await session.scalars(
                select(Session).where(Session.user_id == user.id, Session.amr.is_not(None))
            )
        ).all()
    # The registering password session gained "mfa" when MFA went on; the two
    # passwordless ones are the passkey alone, user-verified.
    assert sorted(s.amr or "" for s in logins) == ["hwk user mfa", "hwk user mfa", "pwd mfa"]
    assert all(s.mfa_verified_at is not None for s in logins)
    [stored] = await stored_passkeys(api.runtime)
    assert stored.sign_count == device.only.sign_count == 2
    assert [r.outcome for r in await audit_of(api.runtime, "passkey.login")] == ["success"] * 2


async def test_the_second_factor_and_step_up_use_the_same_check(api: Api) -> None:
    user, other = await api.user(), await api.user()
    mine, theirs = SoftwareAuthenticator(ORIGIN, synced=True), SoftwareAuthenticator(ORIGIN)
    await register(api, user, mine, "Phone", password=user.password)
    await register(api, other, theirs, "Key", password=other.password)
    token = "mfa-token-" + uuid.uuid4().hex
    async with api.runtime.db.session() as session:
        pending = MfaChallenge(
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            user_id=user.id,
            expires_at=utcnow() + timedelta(minutes=5),
        )
        session.add(pending)

    ceremony = await login_options(api, {"mfa_token": token})
    allowed = ceremony["options"]["allowCredentials"]
    assert [c["id"] for c in allowed] == [b64url(mine.only.id)]
    assert ceremony["options"]["userVerification"] == "preferred"
    async with api.runtime.unit_of_work() as uow:
        kind = await PasskeyAssertions(build_passkey_service(uow, api.runtime)).verify_assertion(
            user_id=user.id,
            challenge_id=ceremony["challenge_id"],
            credential=mine.get(ceremony["options"]),
            purpose="mfa",
        )
    assert kind == "swk"  # synced

    # Another user's passkey cannot answer this user's second step.
    ceremony = await login_options(api, {"mfa_token": token})
    assert await refusal(
        api, user.id, ceremony, theirs.get(ceremony["options"], credential=theirs.only), "mfa"
    ) == ("credential_of_another_user")
    # Nor can a challenge made for another purpose.
    ceremony = await login_options(api, {"mfa_token": token})
    answer = mine.get(ceremony["options"])
    assert await refusal(api, user.id, ceremony, answer, "step_up") == "challenge_mismatch"

    step_up = await api.client.post(f"{MINE}/authentication-options", headers=user.headers)
    assert step_up.status_code == 200
    assert [c["id"] for c in step_up.json()["options"]["allowCredentials"]] == [
        b64url(mine.only.id)
    ]
    async with api.runtime.unit_of_work() as uow:
        found, kind = await build_passkey_service(uow, api.runtime).verify_assertion(
            user_id=user.id,
            challenge_id=step_up.json()["challenge_id"],
            credential=mine.get(step_up.json()["options"]),
            purpose="step_up",
        )
    assert (found.name, kind) == ("Phone", "swk")

    for bad in ("not-a-token", token + "x"):
        response = await api.client.post("/api/v1/auth/passkey/options", json={"mfa_token": bad})
        assert_envelope(response, 401, "MFA_TOKEN_INVALID")
    with time_machine.travel(utcnow() + timedelta(minutes=6)):
        response = await api.client.post("/api/v1/auth/passkey/options", json={"mfa_token": token})
    assert_envelope(response, 401, "MFA_TOKEN_INVALID")


async def test_a_passkey_finishes_a_password_login_over_http(api: Api) -> None:
    user = await api.user()
    device = SoftwareAuthenticator(ORIGIN)
    await register(api, user, device, "Laptop", password=user.password)
    step = await api.client.post(
        "/api/v1/auth/token", json={"username": user.email, "password": user.password}
    )
    details = assert_envelope(step, 401, "MFA_REQUIRED")["details"]
    assert details["methods"] == ["recovery_code", "webauthn"]
    second = "/api/v1/auth/mfa/verify"

    # A made-up credential is a wrong second factor: one attempt of the mfa_token's five.
    ceremony = await login_options(api, {"mfa_token": details["mfa_token"]})
    forged = device.get(ceremony["options"], origin="https://evil.example.test")
    body = {"mfa_token": details["mfa_token"], "method": "webauthn"}
    wrong = await api.client.post(
        second, json={**body, "challenge_id": ceremony["challenge_id"], "credential": forged}
    )
    assert assert_envelope(wrong, 401, "INVALID_MFA_CODE")["details"] == {"attempts_left": 4}

    ceremony = await login_options(api, {"mfa_token": details["mfa_token"]})
    answer = device.get(ceremony["options"])
    done = await api.client.post(
        second, json={**body, "challenge_id": ceremony["challenge_id"], "credential": answer}
    )
    assert done.status_code == 200, done.text
    claims = jwt.decode(done.json()["access_token"], options={"verify_signature": False})
    assert claims["amr"] == ["pwd", "hwk", "mfa"]
    # The ceremony was bound to that mfa_token: spent, it finishes nothing again.
    again = await api.client.post(
        second, json={**body, "challenge_id": ceremony["challenge_id"], "credential": answer}
    )
    assert_envelope(again, 401, "MFA_TOKEN_INVALID")


async def test_a_first_passkey_turns_mfa_on_and_ends_the_other_sessions(api: Api) -> None:
    user = await api.user()
    before = Account(**vars(await api.login(Account(**vars(user)))))
    await register(api, user, SoftwareAuthenticator(ORIGIN), "Laptop", password=user.password)

    # The session from before: its refresh token is dead, with its access token.
    dead = await api.client.post(REFRESH, json={"refresh_token": before.refresh_token})
    assert_envelope(dead, 400, "INVALID_GRANT")
    gone = await api.client.get(ME, headers=before.headers)
    assert gone.status_code == 401
    # The registering session goes on; its next tokens say a second factor was used.
    kept = await api.client.post(REFRESH, json={"refresh_token": user.refresh_token})
    assert kept.status_code == 200, kept.text
    assert claims(kept.json()["access_token"])["amr"] == ["pwd", "mfa"]

    events = await outbox_of(api.runtime, user.id)
    assert [e.event_type for e in events] == ["user.created", "user.mfa_enabled"]
    data = events[-1].payload["data"]
    assert (data["user_id"], data["method"]) == (str(user.id), "passkey")
    headers = {"Authorization": f"Bearer {kept.json()['access_token']}"}
    state = (await api.client.get("/api/v1/users/me/mfa", headers=headers)).json()
    assert (state["enabled"], state["totp"]["enabled"], len(state["passkeys"])) == (True, False, 1)
    assert state["recovery_codes_left"] == 10
    # A password login now asks for the passkey.
    step = await api.client.post(
        "/api/v1/auth/token", json={"username": user.email, "password": user.password}
    )
    details = assert_envelope(step, 401, "MFA_REQUIRED")["details"]
    assert details["methods"] == ["recovery_code", "webauthn"]


async def test_a_passkey_steps_up_a_stale_session_over_http(api: Api) -> None:
    user = await api.user()
    device = SoftwareAuthenticator(ORIGIN)
    await register(api, user, device, "Laptop", password=user.password)
    await age_step_up(api.runtime, user)
    refused = await registration_options(api, user)
    assert_envelope(refused, 403, "STEP_UP_REQUIRED")

    ceremony = await api.client.post(f"{MINE}/authentication-options", headers=user.headers)
    assert ceremony.status_code == 200, ceremony.text
    answer = device.get(ceremony.json()["options"])
    body = {
        "method": "webauthn",
        "challenge_id": ceremony.json()["challenge_id"],
        "credential": answer,
    }
    stepped = await api.client.post(STEP_UP, json=body, headers=user.headers)
    assert stepped.status_code == 200, stepped.text
    assert "step_up_expires_at" in stepped.json()
    allowed = await registration_options(api, user)
    assert allowed.status_code == 200, allowed.text
    [stored] = await stored_passkeys(api.runtime)
    assert (stored.sign_count, stored.last_used_at is not None) == (1, True)

    # The ceremony was spent: the same answer again is a wrong second factor.
    replay = await api.client.post(STEP_UP, json=body, headers=user.headers)
    assert_envelope(replay, 401, "INVALID_MFA_CODE")
    rows = await audit_of(api.runtime, "mfa.step_up")
    assert [(r.outcome, r.reason, r.details) for r in rows] == [
        ("success", None, {"method": "webauthn"}),
        ("failure", "wrong_code", {"method": "webauthn"}),
    ]


async def refusal(
    api: Api, user_id: uuid.UUID, ceremony: dict[str, Any], answer: dict[str, Any], purpose: Any
) -> str:
    """The reason the shared check refuses `answer` for `user_id` and `purpose`."""
    with pytest.raises(InvalidPasskey) as refused:
        async with api.runtime.unit_of_work() as uow:
            await build_passkey_service(uow, api.runtime).verify_assertion(
                user_id=user_id,
                challenge_id=ceremony["challenge_id"],
                credential=answer,
                purpose=purpose,
            )
    row = await challenge_row(api.runtime, ceremony["challenge_id"])
    assert row is not None
    assert row.used_at is not None  # spent, though refused
    return refused.value.reason


async def test_refused_assertions(api: Api) -> None:
    """Every way a passwordless login can be wrong: 401 INVALID_PASSKEY, a generic
    message, the challenge spent, the counter untouched, the reason in the audit row."""
    user, other = await api.user(), await api.user()
    device = SoftwareAuthenticator(ORIGIN)
    await register(api, user, device, "Laptop", password=user.password)
    stranger = SoftwareAuthenticator(ORIGIN)
    stranger.create(
        {
            "rp": {"id": RP_ID},
            "user": {"id": b64url(other.id.bytes)},
            "challenge": b64url(b"never registered"),
        }
    )
    ok, _ = await try_login(api, device)
    assert ok.status_code == 200
    cases: list[tuple[str, dict[str, Any], SoftwareAuthenticator]] = [
        ("origin_mismatch", {"origin": "https://evil.example.test"}, device),
        ("rp_id_mismatch", {"rp_id": "example.test"}, device),
        ("user_handle_mismatch", {"user_handle": other.id.bytes}, device),
        ("bad_signature", {"break_signature": True}, device),
        ("user_not_verified", {"uv": False}, device),
        ("unknown_credential", {}, stranger),
    ]
    messages = set()
    for reason, knobs, authenticator in cases:
        before = device.only.sign_count
        response, challenge_id = await try_login(api, authenticator, **knobs)
        error = assert_envelope(response, 401, "INVALID_PASSKEY")
        messages.add(error["message"])
        newest = (await audit_of(api.runtime, "passkey.login"))[-1]
        assert (newest.outcome, newest.reason) == ("failure", reason)
        row = await challenge_row(api.runtime, challenge_id)
        assert row is not None
        assert row.used_at is not None, reason
        if authenticator is device:
            device.only.sign_count = before  # the server never saw it count
    [stored] = await stored_passkeys(api.runtime)
    assert stored.sign_count == 1  # only the one good login moved it

    # Replay: the same challenge and answer, twice.
    ceremony = await login_options(api)
    answer = device.get(ceremony["options"])
    body = {"challenge_id": ceremony["challenge_id"], "credential": answer}
    assert (await api.client.post(VERIFY, json=body)).status_code == 200
    assert_envelope(await api.client.post(VERIFY, json=body), 401, "INVALID_PASSKEY")

    # A challenge answered after its 5 minutes.
    ceremony = await login_options(api)
    with time_machine.travel(utcnow() + timedelta(seconds=301)):
        late = await api.client.post(
            VERIFY,
            json={
                "challenge_id": ceremony["challenge_id"],
                "credential": device.get(ceremony["options"]),
            },
        )
    assert_envelope(late, 401, "INVALID_PASSKEY")
    device.only.sign_count -= 1

    # A counter that went backwards: a cloned authenticator. Refused and audited.
    cloned, _ = await try_login(api, device, sign_count=1)
    assert_envelope(cloned, 401, "INVALID_PASSKEY")
    [stored] = await stored_passkeys(api.runtime)
    assert stored.sign_count == 2

    # A deleted account's passkey logs nobody in.
    assert (await api.client.delete("/api/v1/users/me", headers=user.headers)).status_code == 204
    gone, _ = await try_login(api, device)
    assert_envelope(gone, 401, "INVALID_PASSKEY")

    assert len(messages) == 1  # the client never learns which check failed
    failures = [
        r.reason or ""
        for r in await audit_of(api.runtime, "passkey.login")
        if r.outcome == "failure"
    ]
    expected = [reason for reason, _, _ in cases]
    expected += ["challenge_unknown_or_used", "challenge_expired", "counter_regression"]
    # (Sorted: the late answer's row was written in the travelled-to future.)
    assert sorted(failures) == sorted([*expected, "user_deleted"])
    [regression] = await audit_of(api.runtime, "passkey.counter_regression")
    assert (regression.outcome, regression.target_id) == ("failure", str(user.id))
    assert regression.details == {
        "passkey_id": str(stored.id),
        "stored": 2,
        "presented": 1,
        "purpose": "login",
    }
    print(f"\nPK-REFUSALS: {len(failures)} bad assertions, {len(failures)} refused with 401")


async def test_registration_refuses_a_credential_that_does_not_verify(api: Api) -> None:
    user = await api.user()
    started = await registration_options(api, user, user.password)
    elsewhere = SoftwareAuthenticator("https://evil.example.test")
    body = {
        "challenge_id": started.json()["challenge_id"],
        "name": "Laptop",
        "credential": elsewhere.create(started.json()["options"]),
    }
    response = await api.client.post(MINE, json=body, headers=user.headers)
    assert_envelope(response, 400, "INVALID_PASSKEY")
    # The challenge was spent by the failed attempt: a good answer to it is too late.
    body["credential"] = SoftwareAuthenticator(ORIGIN).create(started.json()["options"])
    response = await api.client.post(MINE, json=body, headers=user.headers)
    assert_envelope(response, 400, "INVALID_PASSKEY")
    assert await stored_passkeys(api.runtime) == []


async def test_expired_challenges_are_deleted_by_the_cleanup(api: Api) -> None:
    old = await login_options(api)
    with time_machine.travel(utcnow() + timedelta(seconds=301)):
        fresh = await login_options(api)
        await tasks.cleanup(api.runtime)
    assert await challenge_row(api.runtime, old["challenge_id"]) is None
    assert await challenge_row(api.runtime, fresh["challenge_id"]) is not None


class TestRateLimits:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {
            **SETTINGS,
            "rate_limit_enabled": True,
            "rate_limit_login": "3/hour",
            "rate_limit_anonymous": "1000/hour",
        }

    async def test_passwordless_logins_share_the_login_budget(self, api: Api) -> None:
        user = await api.create_user()
        await api.login(user)  # one of the three
        device = SoftwareAuthenticator(ORIGIN)
        await register(api, user, device, "Laptop", password=user.password)
        first, _ = await try_login(api, device)
        assert first.status_code == 200
        bogus, _ = await try_login(api, device, break_signature=True)
        assert_envelope(bogus, 401, "INVALID_PASSKEY")
        over, _ = await try_login(api, device)
        assert_envelope(over, 429, "RATE_LIMITED")
