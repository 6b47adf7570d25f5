"""Setting up an authenticator app, logging in with it, and what a code is good for:
once, in its time step or one either side."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import httpx
import pyotp
from sqlalchemy import text

from gatehouse.runtime import Runtime
from tests.factories import Api, assert_envelope
from tests.mfa.support import (
    MFA,
    REFRESH,
    TOKEN,
    TOTP,
    VERIFY,
    audit_of,
    claims,
    count_sessions,
    enrol,
    mails_of,
    mfa_login,
    password_step,
    step_start,
)
from tests.privacy.support import outbox_types


async def test_enrol_confirm_and_remove(api: Api, runtime: Runtime) -> None:
    with step_start():
        user = await api.user("user", email="jane@example.com")
        wrong = await api.client.post(
            TOTP, json={"current_password": "Not-The-Password-1"}, headers=user.headers
        )
        assert_envelope(wrong, 403, "INVALID_CURRENT_PASSWORD")

        first = await api.client.post(
            TOTP, json={"current_password": user.password}, headers=user.headers
        )
        assert first.status_code == 201, first.text
        started = await api.client.post(
            TOTP, json={"current_password": user.password}, headers=user.headers
        )
        body = started.json()
        secret = body["secret"]
        assert secret != first.json()["secret"]  # a pending secret is replaced
        assert body["otpauth_uri"].startswith("otpauth://totp/Gatehouse:jane%40example.com?")
        assert "issuer=Gatehouse" in body["otpauth_uri"]
        assert body["qr_svg"].startswith("<svg")
        assert "<?xml" not in body["qr_svg"]
        # A document of its own, as an <img> shows it: the SVG namespace on the root.
        root = ElementTree.fromstring(body["qr_svg"])  # noqa: S314 (our own output)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        pending = (await api.client.get(MFA, headers=user.headers)).json()
        assert pending["enabled"] is False
        assert pending["totp"]["enabled"] is False

        # The first secret's code does not confirm the second.
        stale = pyotp.TOTP(first.json()["secret"]).now()
        refused = await api.client.post(
            f"{TOTP}/confirm", json={"code": stale}, headers=user.headers
        )
        assert_envelope(refused, 400, "INVALID_MFA_CODE")

        confirmed = await api.client.post(
            f"{TOTP}/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=user.headers
        )
        assert confirmed.status_code == 200, confirmed.text
        codes = confirmed.json()["recovery_codes"]
        assert len(codes) == 10
        assert len(set(codes)) == 10
        assert all(len(code) == 11 and code[5] == "-" for code in codes)

        state = (await api.client.get(MFA, headers=user.headers)).json()
        assert state["enabled"] is True
        assert state["required"] is False
        assert state["totp"]["enabled"] is True
        assert state["totp"]["confirmed_at"]
        assert (state["passkeys"], state["recovery_codes_left"]) == ([], 10)
        again = await api.client.post(
            TOTP, json={"current_password": user.password}, headers=user.headers
        )
        assert_envelope(again, 409, "MFA_ALREADY_ENABLED")

        # Confirming counted as a second-factor check: removing needs no step-up now.
        removed = await api.client.delete(TOTP, headers=user.headers)
        assert removed.status_code == 204, removed.text
        state = (await api.client.get(MFA, headers=user.headers)).json()
        assert (state["enabled"], state["recovery_codes_left"]) == (False, 0)
        nothing = await api.client.post(
            f"{TOTP}/confirm", json={"code": "123456"}, headers=user.headers
        )
        assert_envelope(nothing, 409, "NO_PENDING_TOTP")

    # The secret is stored encrypted, never as given.
    assert [r.outcome for r in await audit_of(runtime, "mfa.totp_enrol", user.id)] == [
        "failure",
        "success",
        "success",
    ]
    assert [r.outcome for r in await audit_of(runtime, "mfa.totp_confirm", user.id)] == [
        "failure",
        "success",
    ]
    assert len(await audit_of(runtime, "mfa.totp_remove", user.id)) == 1
    assert await outbox_types(runtime, user.id) == [
        "user.created",
        "user.mfa_enabled",
        "user.mfa_disabled",
    ]
    assert await mails_of(runtime, user.id) == ["totp_enabled", "totp_disabled"]


async def test_the_secret_is_stored_encrypted(api: Api, runtime: Runtime) -> None:
    with step_start():
        enrolled = await enrol(api, await api.user("user"))
    async with runtime.db.session(write=False) as session:
        (stored,) = (await session.execute(text("SELECT secret FROM mfa_totp"))).scalars()
    assert stored.startswith("v1.")
    assert enrolled.secret not in stored


async def test_a_login_with_mfa_takes_a_code_and_its_tokens_say_so(
    api: Api, runtime: Runtime
) -> None:
    with step_start():
        enrolled = await enrol(api, await api.user("user"))
        sessions_before = await count_sessions(runtime, enrolled.account.id)
        details = await password_step(api, enrolled.account)
        assert details["methods"] == ["totp", "recovery_code"]
        assert details["expires_in"] == 300
        assert len(details["mfa_token"]) >= 40
        # The right password alone opened no session and issued nothing.
        assert await count_sessions(runtime, enrolled.account.id) == sessions_before

        wrong = await api.client.post(
            VERIFY, json={"mfa_token": details["mfa_token"], "method": "totp", "code": "000000"}
        )
        error = assert_envelope(wrong, 401, "INVALID_MFA_CODE")
        assert error["details"] == {"attempts_left": 4}
        assert wrong.headers["www-authenticate"].startswith("Bearer")
        done = await api.client.post(
            VERIFY,
            json={"mfa_token": details["mfa_token"], "method": "totp", "code": enrolled.code(1)},
        )
        assert done.status_code == 200, done.text
        assert done.headers["cache-control"] == "no-store"
        pair = done.json()
        assert claims(pair["access_token"])["amr"] == ["pwd", "otp", "mfa"]
        me = await api.client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
        )
        assert me.status_code == 200

        refreshed = await api.client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text
        assert claims(refreshed.json()["access_token"])["amr"] == ["pwd", "otp", "mfa"]

    verified = await audit_of(runtime, "mfa.verify", enrolled.account.id)
    assert [(r.outcome, r.reason, r.details) for r in verified] == [
        ("failure", "wrong_code", {"method": "totp"}),
        ("success", None, {"method": "totp"}),
    ]
    logins = await audit_of(runtime, "auth.login", enrolled.account.id)
    assert [(r.outcome, r.reason) for r in logins][-2:] == [
        ("failure", "mfa_required"),
        ("success", None),
    ]
    assert logins[-1].details["amr"] == ["pwd", "otp", "mfa"]


def _masked_cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie line by cookie name, its value masked: the attributes."""
    lines = response.headers.get_list("set-cookie")
    return {line.split("=", 1)[0]: re.sub(r"=[^;]*", "=<value>", line, count=1) for line in lines}


async def test_the_second_step_in_cookie_mode_answers_as_the_password_login_does(
    api: Api,
) -> None:
    cookie_mode = {"X-Token-Transport": "cookie"}
    with step_start():
        plain = await api.create_user("user")
        password_only = await api.client.post(
            TOKEN, json={"username": plain.email, "password": plain.password}, headers=cookie_mode
        )
        assert password_only.status_code == 200, password_only.text
        enrolled = await enrol(api, await api.user("user"))
        step = await api.client.post(
            TOKEN,
            json={"username": enrolled.account.email, "password": enrolled.account.password},
            headers=cookie_mode,
        )
        details = assert_envelope(step, 401, "MFA_REQUIRED")["details"]
        assert "set-cookie" not in step.headers  # nothing until the second factor
        done = await api.client.post(
            VERIFY,
            json={"mfa_token": details["mfa_token"], "method": "totp", "code": enrolled.code(1)},
            headers=cookie_mode,
        )
    assert done.status_code == 200, done.text
    assert done.headers["cache-control"] == "no-store"
    body = done.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "csrf_token"}
    assert set(body) == set(password_only.json())
    assert (body["token_type"], body["expires_in"]) == ("bearer", 900)
    assert claims(body["access_token"])["amr"] == ["pwd", "otp", "mfa"]
    # The same cookies, with the same attributes, as the password login's.
    assert _masked_cookies(done) == _masked_cookies(password_only)
    assert set(_masked_cookies(done)) == {"gatehouse_refresh", "gatehouse_csrf"}
    assert "HttpOnly" in _masked_cookies(done)["gatehouse_refresh"]
    refresh = done.cookies["gatehouse_refresh"]
    assert refresh not in done.text
    assert done.cookies["gatehouse_csrf"] == body["csrf_token"]

    # The browser's next refresh: the cookie and the CSRF header; the session keeps its amr.
    api.client.cookies.clear()
    refreshed = await api.client.post(
        REFRESH,
        headers={
            "Cookie": f"gatehouse_refresh={refresh}; gatehouse_csrf={body['csrf_token']}",
            "X-CSRF-Token": body["csrf_token"],
            **cookie_mode,
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert claims(refreshed.json()["access_token"])["amr"] == ["pwd", "otp", "mfa"]


async def test_a_password_login_says_pwd_and_refresh_keeps_it(api: Api) -> None:
    user = await api.user("user")
    assert claims(user.access_token)["amr"] == ["pwd"]
    refreshed = await api.client.post(REFRESH, json={"refresh_token": user.refresh_token})
    assert claims(refreshed.json()["access_token"])["amr"] == ["pwd"]


async def test_the_oauth2_form_answers_mfa_required_too(api: Api) -> None:
    with step_start():
        enrolled = await enrol(api, await api.user("user"))
        form = await api.client.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "password",
                "username": enrolled.account.email,
                "password": enrolled.account.password,
            },
        )
    error = assert_envelope(form, 401, "MFA_REQUIRED")
    assert set(error["details"]) == {"mfa_token", "methods", "expires_in"}


async def test_a_code_is_good_once_and_within_one_step_either_side(api: Api) -> None:
    with step_start() as clock:
        enrolled = await enrol(api, await api.user("user"))
        # The confirming code's step is spent: the same code cannot log in.
        details = await password_step(api, enrolled.account)
        replay = await api.client.post(
            VERIFY,
            json={"mfa_token": details["mfa_token"], "method": "totp", "code": enrolled.code()},
        )
        assert_envelope(replay, 401, "INVALID_MFA_CODE")

        clock.shift(30)  # the next step: its code works once
        code = enrolled.code()
        await mfa_login(api, enrolled, code)
        details = await password_step(api, enrolled.account)
        again = await api.client.post(
            VERIFY, json={"mfa_token": details["mfa_token"], "method": "totp", "code": code}
        )
        assert_envelope(again, 401, "INVALID_MFA_CODE")

        results = {}
        for offset in (-2, -1, 2, 1):
            clock.shift(120)  # well after every step used so far
            details = await password_step(api, enrolled.account)
            response = await api.client.post(
                VERIFY,
                json={
                    "mfa_token": details["mfa_token"],
                    "method": "totp",
                    "code": enrolled.code(offset),
                },
            )
            results[offset] = response.status_code
    print(f"\nTOTP drift: {results}")
    assert results == {-2: 401, -1: 200, 2: 401, 1: 200}


async def test_a_code_used_for_a_later_step_refuses_earlier_ones(api: Api) -> None:
    """RFC 6238 §5.2: after the code of step s+1 (a fast clock), the code of step s is
    refused too, though within the window."""
    with step_start():
        enrolled = await enrol(api, await api.user("user"))
        ahead = enrolled.code(1)
        await mfa_login(api, enrolled, ahead)
        details = await password_step(api, enrolled.account)
        behind = await api.client.post(
            VERIFY,
            json={"mfa_token": details["mfa_token"], "method": "totp", "code": enrolled.code(0)},
        )
    assert_envelope(behind, 401, "INVALID_MFA_CODE")
