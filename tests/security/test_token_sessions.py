"""TOK-15…TOK-20: ending sessions takes effect at once; what is stored; token headers."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import time_machine
from sqlalchemy import select

from gatehouse.auth.models import RefreshToken, Session
from gatehouse.config import AuthSettings
from gatehouse.db.base import Base
from tests.factories import Account, Api, assert_envelope

ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/refresh"
TOKEN = "/api/v1/auth/token"
LOGOUT = "/api/v1/auth/logout"
NEW_PASSWORD = "Another-Quiet-Harbour-77"


async def second_login(api: Api, account: Account) -> Account:
    return await api.login(dataclasses.replace(account))


async def refresh(api: Api, refresh_token: str) -> httpx.Response:
    return await api.client.post(REFRESH, json={"refresh_token": refresh_token})


def sid_of(account: Account) -> uuid.UUID:
    claims = jwt.decode(account.access_token, options={"verify_signature": False})
    return uuid.UUID(claims["sid"])


async def assert_signed_out(api: Api, account: Account) -> None:
    """Both halves of the pair are dead: the access token now, the refresh token too."""
    assert_envelope(await api.client.get(ME, headers=account.headers), 401, "UNAUTHORIZED")
    assert_envelope(await refresh(api, account.refresh_token), 400, "INVALID_GRANT")


async def assert_signed_in(api: Api, account: Account) -> None:
    assert (await api.client.get(ME, headers=account.headers)).status_code == 200
    response = await refresh(api, account.refresh_token)
    assert response.status_code == 200, response.text
    account.access_token = response.json()["access_token"]
    account.refresh_token = response.json()["refresh_token"]


# TOK-15


async def test_logout_ends_this_session_at_once(api: Api) -> None:
    account = await api.user()
    elsewhere = await second_login(api, account)
    response = await api.client.post(LOGOUT, headers=account.headers)
    assert response.status_code == 204, response.text
    await assert_signed_out(api, account)
    async with api.runtime.db.session(write=False) as s:
        row = await s.get(Session, sid_of(account))
    assert row is not None
    assert row.revoked_at is not None
    assert row.revoked_reason == "logout"
    await assert_signed_in(api, elsewhere)


async def test_logout_all_ends_every_session_of_the_user_only(api: Api) -> None:
    account = await api.user()
    elsewhere = await second_login(api, account)
    bystander = await api.user()
    response = await api.client.post(LOGOUT, json={"all": True}, headers=account.headers)
    assert response.status_code == 204, response.text
    await assert_signed_out(api, account)
    await assert_signed_out(api, elsewhere)
    await assert_signed_in(api, bystander)
    await assert_signed_in(api, await api.login(account))  # logging in again works


# TOK-16


async def test_password_change_keeps_this_session_and_ends_the_others(api: Api) -> None:
    account = await api.user()
    elsewhere = await second_login(api, account)
    response = await api.client.post(
        "/api/v1/users/me/password",
        json={"current_password": account.password, "new_password": NEW_PASSWORD},
        headers=account.headers,
    )
    assert response.status_code == 204, response.text
    await assert_signed_in(api, account)
    await assert_signed_out(api, elsewhere)
    old = await api.client.post(
        TOKEN, json={"username": account.email, "password": account.password}
    )
    assert_envelope(old, 401, "INVALID_CREDENTIALS")
    account.password = NEW_PASSWORD
    await api.login(account)


# TOK-17 (Gatehouse has no "disabled" state yet: soft deletion is how an account ends.)


async def test_deleted_users_tokens_stop_working_on_the_next_request(api: Api) -> None:
    admin = await api.user("admin")
    account = await api.user()
    elsewhere = await second_login(api, account)
    response = await api.client.delete(f"/api/v1/users/{account.id}", headers=admin.headers)
    assert response.status_code == 204, response.text
    await assert_signed_out(api, account)
    await assert_signed_out(api, elsewhere)
    await assert_signed_in(api, admin)


async def test_self_deleted_users_tokens_stop_working(api: Api) -> None:
    account = await api.user()
    assert (await api.client.delete(ME, headers=account.headers)).status_code == 204
    await assert_signed_out(api, account)


# TOK-18


async def test_admin_ends_all_sessions_of_a_user(api: Api) -> None:
    admin = await api.user("admin")
    account = await api.user()
    elsewhere = await second_login(api, account)
    bystander = await api.user()
    response = await api.client.delete(
        f"/api/v1/users/{account.id}/sessions", headers=admin.headers
    )
    assert response.status_code == 204, response.text
    await assert_signed_out(api, account)
    await assert_signed_out(api, elsewhere)
    await assert_signed_in(api, admin)
    await assert_signed_in(api, bystander)
    await assert_signed_in(api, await api.login(account))  # the account itself lives on


async def test_admin_ends_one_session_of_a_user(api: Api) -> None:
    admin = await api.user("admin")
    account = await api.user()
    elsewhere = await second_login(api, account)
    response = await api.client.delete(
        f"/api/v1/users/{account.id}/sessions/{sid_of(account)}", headers=admin.headers
    )
    assert response.status_code == 204, response.text
    await assert_signed_out(api, account)
    await assert_signed_in(api, elsewhere)


# TOK-19


async def dump_database(api: Api) -> str:
    """Every value in every table, as text: what a stolen backup would hold."""
    values: list[str] = []
    async with api.runtime.db.session(write=False) as s:
        for table in Base.metadata.sorted_tables:
            for row in (await s.execute(select(table))).all():
                values.extend(str(value) for value in row)
    return "\n".join(values)


async def test_refresh_tokens_are_stored_only_as_sha256_hashes(
    api: Api, backend: str, database_url: str
) -> None:
    account = await api.user()
    issued = [account.refresh_token]
    access_tokens = [account.access_token]
    for _ in range(2):
        response = await refresh(api, issued[-1])
        issued.append(response.json()["refresh_token"])
        access_tokens.append(response.json()["access_token"])
    await second_login(api, account)

    async with api.runtime.db.session(write=False) as s:
        rows = (await s.scalars(select(RefreshToken))).all()
    stored = {row.token_hash for row in rows}
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in stored), stored
    assert {hashlib.sha256(token.encode()).hexdigest() for token in issued} <= stored
    assert len(stored) == len(issued) + 1  # the second login's token, hashed too

    dump = await dump_database(api)
    assert hashlib.sha256(issued[0].encode()).hexdigest() in dump  # the dump is real
    for secret in [*issued, *access_tokens, account.password]:
        assert secret not in dump
    if backend == "sqlite":
        path = Path(database_url.split("///", 1)[1])
        raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        for token in issued:
            assert token.encode() not in raw


async def test_refresh_tokens_carry_at_least_128_random_bits(api: Api) -> None:
    account = await api.create_user()
    tokens = {(await api.login(account)).refresh_token for _ in range(20)}
    assert len(tokens) == 20
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token), token
        assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) >= 16


# TOK-20


def assert_token_response(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["cache-control"]
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int)
    assert 0 < body["expires_in"] <= 900
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == body["expires_in"]


async def test_token_responses_are_not_cached_and_short_lived(api: Api) -> None:
    account = await api.create_user()
    credentials = {"username": account.email, "password": account.password}
    login = await api.client.post(TOKEN, json=credentials)
    assert_token_response(login)
    form_login = await api.client.post(TOKEN, data={"grant_type": "password", **credentials})
    assert_token_response(form_login)
    refreshed = await refresh(api, login.json()["refresh_token"])
    assert_token_response(refreshed)
    granted = await api.client.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": form_login.json()["refresh_token"]},
    )
    assert_token_response(granted)
    assert AuthSettings.model_fields["access_token_ttl_seconds"].default <= 900


async def test_access_token_stops_working_when_it_expires(api: Api) -> None:
    leeway = api.runtime.settings.auth.jwt_leeway_seconds
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        account = await api.user()
        expires_in = api.runtime.tokens.ttl
        clock.shift(timedelta(seconds=expires_in - 1))
        assert (await api.client.get(ME, headers=account.headers)).status_code == 200
        clock.shift(timedelta(seconds=leeway + 2))  # 1 s past expiry and leeway
        response = await api.client.get(ME, headers=account.headers)
    assert_envelope(response, 401, "UNAUTHORIZED")
