"""Step-up: with MFA on, changing factors, email or password needs a second-factor
check in this session within the last five minutes; without MFA it never does."""

from __future__ import annotations

from gatehouse.runtime import Runtime
from tests.factories import Account, Api, assert_envelope
from tests.mfa.support import (
    MFA,
    STEP_UP,
    TOTP,
    audit_of,
    enrol,
    later,
    mails_of,
    mails_to,
    mfa_login,
    step_start,
)

PASSWORD_CHANGE = "/api/v1/users/me/password"
RECOVERY_CODES = "/api/v1/users/me/mfa/recovery-codes"
NEW_PASSWORD = "Glacier-Mango-7731"


async def test_a_stale_session_must_step_up_then_may_change(api: Api, runtime: Runtime) -> None:
    with step_start() as clock:
        enrolled = await enrol(api, await api.user("user"))
        account = enrolled.account
        later(clock, 301)
        stale = await api.client.delete(TOTP, headers=account.headers)
        error = assert_envelope(stale, 403, "STEP_UP_REQUIRED")
        assert error["details"] == {
            "methods": ["totp", "recovery_code"],
            "step_up_url": "/api/v1/auth/mfa/step-up",
        }
        codes = await api.client.post(RECOVERY_CODES, headers=account.headers)
        assert_envelope(codes, 403, "STEP_UP_REQUIRED")
        password = await api.client.post(
            PASSWORD_CHANGE,
            json={"current_password": account.password, "new_password": NEW_PASSWORD},
            headers=account.headers,
        )
        assert_envelope(password, 403, "STEP_UP_REQUIRED")
        email = await api.client.patch(
            "/api/v1/users/me",
            json={"email": "moved@example.com", "current_password": account.password},
            headers=account.headers,
        )
        assert_envelope(email, 403, "STEP_UP_REQUIRED")
        # A name change is not guarded.
        named = await api.client.patch(
            "/api/v1/users/me", json={"name": "New Name"}, headers=account.headers
        )
        assert named.status_code == 200, named.text

        wrong = await api.client.post(
            STEP_UP, json={"method": "totp", "code": "000000"}, headers=account.headers
        )
        assert_envelope(wrong, 401, "INVALID_MFA_CODE")
        stepped = await api.client.post(
            STEP_UP, json={"method": "totp", "code": enrolled.code()}, headers=account.headers
        )
        assert stepped.status_code == 200, stepped.text
        assert "step_up_expires_at" in stepped.json()
        regenerated = await api.client.post(RECOVERY_CODES, headers=account.headers)
        assert regenerated.status_code == 200, regenerated.text
        fresh = regenerated.json()["recovery_codes"]
        assert len(fresh) == 10
        assert not set(fresh) & set(enrolled.recovery_codes)
        changed = await api.client.post(
            PASSWORD_CHANGE,
            json={"current_password": account.password, "new_password": NEW_PASSWORD},
            headers=account.headers,
        )
        assert changed.status_code == 204, changed.text

        later(clock, 301)  # the step-up has run out again
        again = await api.client.delete(TOTP, headers=account.headers)
        assert_envelope(again, 403, "STEP_UP_REQUIRED")
    rows = await audit_of(runtime, "mfa.step_up", account.id)
    assert [(r.outcome, r.details) for r in rows] == [
        ("failure", {"method": "totp"}),
        ("success", {"method": "totp"}),
    ]
    # Regenerating the codes was mailed; no mail holds the secret or a code.
    mails = await mails_to(runtime, account.id)
    assert [(m.kind, m.to_address) for m in mails] == [
        ("totp_enabled", account.email),
        ("recovery_codes_regenerated", account.email),
    ]
    stored = "\n".join(f"{m.subject}\n{m.body}" for m in mails)
    for secret in (enrolled.secret, *enrolled.recovery_codes, *fresh):
        assert secret not in stored


async def test_a_step_up_counts_for_its_own_session_only(api: Api) -> None:
    codes = RECOVERY_CODES
    with step_start() as clock:
        enrolled = await enrol(api, await api.user("user"))
        later(clock, 301)
        stale = Account(**vars(enrolled.account))  # the enrolling session, now stale
        clock.shift(30)
        fresh = await mfa_login(api, enrolled)  # a login with a code is a step-up
        assert (await api.client.post(codes, headers=fresh.headers)).status_code == 200
        refused = await api.client.post(codes, headers=stale.headers)
        assert_envelope(refused, 403, "STEP_UP_REQUIRED")
        clock.shift(30)
        stepped = await api.client.post(
            STEP_UP, json={"method": "totp", "code": enrolled.code()}, headers=stale.headers
        )
        assert stepped.status_code == 200, stepped.text
        assert (await api.client.post(codes, headers=stale.headers)).status_code == 200


async def test_a_method_not_set_up_is_refused(api: Api) -> None:
    with step_start():
        plain = await api.user("user")
        none = await api.client.post(
            STEP_UP, json={"method": "totp", "code": "123456"}, headers=plain.headers
        )
        assert_envelope(none, 400, "VALIDATION_ERROR")
        # Without MFA nothing asks for a step-up: the password alone still works.
        changed = await api.client.post(
            PASSWORD_CHANGE,
            json={"current_password": plain.password, "new_password": NEW_PASSWORD},
            headers=plain.headers,
        )
        assert changed.status_code == 204, changed.text

        enrolled = await enrol(api, await api.user("user"))
        webauthn = await api.client.post(
            STEP_UP,
            json={
                "method": "webauthn",
                "challenge_id": "00000000-0000-4000-8000-000000000000",
                "credential": {"id": "x"},
            },
            headers=enrolled.account.headers,
        )
        error = assert_envelope(webauthn, 400, "VALIDATION_ERROR")
        assert error["details"] == {"method": ["'webauthn' is not set up for this account"]}
        shapeless = await api.client.post(
            STEP_UP, json={"method": "totp"}, headers=enrolled.account.headers
        )
        assert_envelope(shapeless, 400, "VALIDATION_ERROR")


async def test_a_recovery_code_steps_up_once(api: Api, runtime: Runtime) -> None:
    with step_start() as clock:
        enrolled = await enrol(api, await api.user("user"))
        account = enrolled.account
        later(clock, 301)
        code = enrolled.recovery_codes[0]
        stepped = await api.client.post(
            STEP_UP, json={"method": "recovery_code", "code": code}, headers=account.headers
        )
        assert stepped.status_code == 200, stepped.text
        changed = await api.client.post(
            PASSWORD_CHANGE,
            json={"current_password": account.password, "new_password": NEW_PASSWORD},
            headers=account.headers,
        )
        assert changed.status_code == 204, changed.text
        state = (await api.client.get(MFA, headers=account.headers)).json()
        assert state["recovery_codes_left"] == 9

        later(clock, 301)
        # Spent: the same code steps up nothing again, and the session stays stale.
        again = await api.client.post(
            STEP_UP, json={"method": "recovery_code", "code": code}, headers=account.headers
        )
        assert_envelope(again, 401, "INVALID_MFA_CODE")
        refused = await api.client.post(RECOVERY_CODES, headers=account.headers)
        assert_envelope(refused, 403, "STEP_UP_REQUIRED")
    rows = await audit_of(runtime, "mfa.step_up", account.id)
    assert [(r.outcome, r.details) for r in rows] == [
        ("success", {"method": "recovery_code"}),
        ("failure", {"method": "recovery_code"}),
    ]
    (used,) = await audit_of(runtime, "mfa.recovery_code_used", account.id)
    assert used.details == {"left": 9}
    assert (await mails_of(runtime, account.id)).count("recovery_code_used") == 1


async def test_an_admin_moving_their_own_email_must_step_up(api: Api) -> None:
    with step_start() as clock:
        admin = await api.user("admin", email="admin-before@example.com")
        someone = await api.user("user")
        enrolled = await enrol(api, admin)
        later(clock, 301)
        mine = f"/api/v1/users/{admin.id}"
        moved = {"email": "admin-after@example.com", "current_password": admin.password}
        stale = await api.client.patch(mine, json=moved, headers=admin.headers)
        error = assert_envelope(stale, 403, "STEP_UP_REQUIRED")
        assert error["details"]["methods"] == ["totp", "recovery_code"]
        unchanged = await api.client.get(mine, headers=admin.headers)
        assert unchanged.json()["email"] == "admin-before@example.com"
        # Their name, or another user's email, is not guarded.
        named = await api.client.patch(mine, json={"name": "Head Admin"}, headers=admin.headers)
        assert named.status_code == 200, named.text
        theirs = await api.client.patch(
            f"/api/v1/users/{someone.id}",
            json={"email": "someone-else@example.com"},
            headers=admin.headers,
        )
        assert theirs.status_code == 200, theirs.text

        stepped = await api.client.post(
            STEP_UP, json={"method": "totp", "code": enrolled.code()}, headers=admin.headers
        )
        assert stepped.status_code == 200, stepped.text
        done = await api.client.patch(mine, json=moved, headers=admin.headers)
        assert done.status_code == 200, done.text
        assert done.json()["email"] == "admin-after@example.com"
