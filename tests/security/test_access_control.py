"""AC-01, AC-02 (IDOR), AC-04 (readonly writes), AC-05 (mass assignment),
AC-06 (what responses show) and AC-11 (soft delete)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from gatehouse.users.models import User
from tests.factories import Account, Api, assert_envelope
from tests.security.access_support import (
    NEW_PASSWORD,
    OTHER,
    WRITE_METHODS,
    World,
    build_app,
    documented_operations,
    fill_path,
    new_email,
    session_id,
    snapshot,
    user_row,
    valid_body,
)

USER_FIELDS = {"id", "email", "name", "role", "created_at", "updated_at"}
LIST_FIELDS = USER_FIELDS | {"last_login_at", "deleted_at"}
SESSION_FIELDS = {"id", "created_at", "last_used_at", "expires_at", "user_agent", "ip", "current"}


async def seed_victims(api: Api) -> list[Account]:
    """Other people of every role, each logged in (so each has a session)."""
    victims = []
    for i, role in enumerate(("admin", "readonly", "user", "user")):
        victims.append(await api.user(role, name=f"Victim Secretname{i}"))
    return victims


async def test_a_user_reading_other_users_gets_404_and_none_of_their_data(api: Api) -> None:
    attacker = await api.user("user")
    victims = await seed_victims(api)
    nobody = uuid.uuid4()
    unknown = assert_envelope(
        await api.client.get(f"/api/v1/users/{nobody}", headers=attacker.headers),
        404,
        "USER_NOT_FOUND",
    )
    for victim in victims:
        response = await api.client.get(f"/api/v1/users/{victim.id}", headers=attacker.headers)
        error = assert_envelope(response, 404, "USER_NOT_FOUND")
        assert victim.email not in response.text
        assert "Secretname" not in response.text
        # Same answer as for an id nobody has: existence is not revealed.
        assert error["message"].replace(str(victim.id), "?") == unknown["message"].replace(
            str(nobody), "?"
        )
        sessions = await api.client.get(
            f"/api/v1/users/{victim.id}/sessions", headers=attacker.headers
        )
        assert_envelope(sessions, 403, "FORBIDDEN")
        assert victim.email not in sessions.text
    print(f"\nAC-01: {2 * len(victims)} reads of other users, 0 answered with data")


async def test_a_user_cannot_change_or_delete_other_users_or_their_sessions(api: Api) -> None:
    attacker = await api.user("user")
    victims = await seed_victims(api)
    before = await snapshot(api)
    attempts = 0
    for victim in victims:
        sid = session_id(victim)
        requests = [
            ("PUT", f"/api/v1/users/{victim.id}", {"name": "Hacked", "role": "user"}),
            ("PUT", f"/api/v1/users/{victim.id}", {"name": "Hacked", "role": "admin"}),
            ("PATCH", f"/api/v1/users/{victim.id}", {"name": "Hacked"}),
            ("PATCH", f"/api/v1/users/{victim.id}", {"role": "readonly"}),
            ("DELETE", f"/api/v1/users/{victim.id}", None),
            ("DELETE", f"/api/v1/users/{victim.id}/sessions", None),
            ("DELETE", f"/api/v1/users/{victim.id}/sessions/{sid}", None),
        ]
        for method, url, body in requests:
            response = await api.client.request(method, url, json=body, headers=attacker.headers)
            assert_envelope(response, 403, "FORBIDDEN")
            attempts += 1
        # The caller's own-session route with someone else's session id: not theirs.
        response = await api.client.delete(
            f"/api/v1/users/me/sessions/{sid}", headers=attacker.headers
        )
        assert_envelope(response, 404, "SESSION_NOT_FOUND")
        attempts += 1
    assert await snapshot(api) == before
    for victim in victims:
        me = await api.client.get("/api/v1/users/me", headers=victim.headers)
        assert me.status_code == 200
    print(f"\nAC-02: {attempts} writes on other users, 0 changed a row")


async def test_readonly_gets_403_on_every_write_to_other_resources(api: Api) -> None:
    app = build_app(api)
    # What readonly may do to itself (docs/api.md, roles); every other write must be refused.
    own_business = {
        ("POST", "/api/v1/auth/mfa/verify"),
        ("POST", "/api/v1/auth/mfa/step-up"),
        ("POST", "/api/v1/users/me/mfa/totp"),
        ("POST", "/api/v1/users/me/mfa/totp/confirm"),
        ("DELETE", "/api/v1/users/me/mfa/totp"),
        ("POST", "/api/v1/users/me/mfa/recovery-codes"),
        ("POST", "/api/v1/auth/token"),
        ("POST", "/api/v1/auth/refresh"),
        ("POST", "/api/v1/auth/register"),
        ("POST", "/api/v1/auth/logout"),
        ("POST", "/api/v1/auth/verify-email/request"),
        ("POST", "/api/v1/auth/verify-email"),
        ("POST", "/api/v1/auth/password-reset/request"),
        ("POST", "/api/v1/auth/password-reset"),
        ("POST", "/api/v1/auth/email-change/undo"),
        ("POST", "/api/v1/users/me/password"),
        ("DELETE", "/api/v1/users/me"),
        ("DELETE", "/api/v1/users/me/sessions"),
        ("DELETE", "/api/v1/users/me/sessions/{session_id}"),
        # Their own second factors: a readonly account is worth protecting too.
        ("POST", "/api/v1/auth/passkey/options"),
        ("POST", "/api/v1/auth/passkey/verify"),
        ("POST", "/api/v1/users/me/passkeys/registration-options"),
        ("POST", "/api/v1/users/me/passkeys"),
        ("PATCH", "/api/v1/users/me/passkeys/{passkey_id}"),
        ("DELETE", "/api/v1/users/me/passkeys/{passkey_id}"),
        ("POST", "/api/v1/users/me/passkeys/authentication-options"),
        # Logging in to other applications with their own account, and what they allowed.
        ("POST", "/api/v1/oauth2/session"),
        ("POST", "/api/v1/oauth2/consent"),
        ("POST", "/api/v1/oauth2/consent/deny"),
        ("DELETE", "/api/v1/users/me/connected-apps/{client_id}"),
    }
    writes = sorted(
        op for op in documented_operations(app) if op[0] in WRITE_METHODS and op not in own_business
    )
    await api.create_user("admin")
    readonly = await api.user("readonly")
    world = World(actor=readonly, other=await api.user("user"))
    before = await snapshot(api)
    sent = 0
    for method, path in writes:
        for variant in ("own", OTHER) if "{user_id}" in path else (OTHER,):
            response = await api.client.request(
                method,
                fill_path(path, world, variant),
                json=valid_body(method, path, world, variant),
                headers=readonly.headers,
            )
            assert_envelope(response, 403, "FORBIDDEN")
            sent += 1
    assert await snapshot(api) == before
    assert len(writes) >= 8  # POST /users, PUT/PATCH me, and the admin writes
    print(f"\nAC-04: {len(writes)} operations, {sent} requests refused to readonly, 0 changes")


MASS_FIELDS = {
    "role": "admin",
    "id": str(uuid.uuid4()),
    "is_active": False,
    "deleted_at": "2020-01-01T00:00:00Z",
    "password_hash": "$2b$04$abcdefghijklmnopqrstuuK5xgq8cP4hJ3d6nI6S0pQ5zvJY9m6Aa",
    "created_at": "2000-01-01T00:00:00Z",
    "failed_logins": 0,
}


async def test_mass_assignment_of_protected_fields_is_refused_and_never_stored(api: Api) -> None:
    admin = await api.user("admin")
    user = await api.user("user")
    victim = await api.user("user")
    before = await snapshot(api)
    attempts = 0

    async def refused(
        method: str, url: str, body: dict[str, object], account: Account | None
    ) -> None:
        nonlocal attempts
        headers = account.headers if account else {}
        response = await api.client.request(method, url, json=body, headers=headers)
        error = assert_envelope(response, 400, "VALIDATION_ERROR")
        assert [k for k, v in error["details"].items() if v == ["Unknown field"]] != [], error
        attempts += 1

    for field, value in MASS_FIELDS.items():
        new_user = {"email": new_email(), "name": "Mass Person", "password": NEW_PASSWORD}
        await refused("POST", "/api/v1/auth/register", {**new_user, field: value}, None)
        for method in ("PUT", "PATCH"):
            await refused(method, "/api/v1/users/me", {"name": "Mass", field: value}, user)
        if field == "role":
            continue  # an admin may set a role on create and edit; nothing else of these
        await refused("POST", "/api/v1/users", {**new_user, field: value}, admin)
        for method in ("PUT", "PATCH"):
            body = {"name": "Mass", "role": "user", field: value}
            await refused(method, f"/api/v1/users/{victim.id}", body, admin)
    assert await snapshot(api) == before
    assert attempts == 3 * len(MASS_FIELDS) + 3 * (len(MASS_FIELDS) - 1)
    print(f"\nAC-05: {len(MASS_FIELDS)} fields, {attempts} attempts on 6 endpoints, 0 persisted")


async def test_responses_show_only_the_documented_fields(api: Api) -> None:
    admin = await api.user("admin")
    readonly = await api.user("readonly")
    user = await api.user("user")
    me = await api.client.get("/api/v1/users/me", headers=user.headers)
    assert set(me.json()) == USER_FIELDS
    one = await api.client.get(f"/api/v1/users/{user.id}", headers=readonly.headers)
    assert set(one.json()) == USER_FIELDS
    for viewer in (admin, readonly):
        listing = (await api.client.get("/api/v1/users", headers=viewer.headers)).json()
        assert listing["data"]
        assert all(set(item) == LIST_FIELDS for item in listing["data"])
        sessions = await api.client.get(f"/api/v1/users/{user.id}/sessions", headers=viewer.headers)
        assert all(set(item) == SESSION_FIELDS for item in sessions.json())
    token = await api.client.post(
        "/api/v1/auth/token", json={"username": user.email, "password": user.password}
    )
    assert set(token.json()) == {"access_token", "refresh_token", "token_type", "expires_in"}
    registered = await api.client.post(
        "/api/v1/auth/register",
        json={"email": new_email(), "name": "Reg Person", "password": NEW_PASSWORD},
    )
    # Sign-up shows no account: the same two fields whether or not the address had one.
    assert set(registered.json()) == {"status", "message"}


async def test_a_soft_deleted_user_is_gone_for_everyone_but_an_admin_who_asks(api: Api) -> None:
    admin = await api.user("admin")
    readonly = await api.user("readonly")
    gone = await api.user("user", name="Gone Person")
    deleted = await api.client.delete(f"/api/v1/users/{gone.id}", headers=admin.headers)
    assert deleted.status_code == 204

    # The deleted user: token, login and refresh all stop working.
    assert_envelope(await api.client.get("/api/v1/users/me", headers=gone.headers), 401)
    login = await api.client.post(
        "/api/v1/auth/token", json={"username": gone.email, "password": gone.password}
    )
    assert_envelope(login, 401, "INVALID_CREDENTIALS")
    refresh = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": gone.refresh_token}
    )
    assert_envelope(refresh, 400, "INVALID_GRANT")

    # Non-admin readers: not found, not listed, not searchable, not restorable by a flag.
    assert_envelope(
        await api.client.get(f"/api/v1/users/{gone.id}", headers=readonly.headers),
        404,
        "USER_NOT_FOUND",
    )
    assert_envelope(
        await api.client.get(f"/api/v1/users/{gone.id}/sessions", headers=readonly.headers),
        404,
        "USER_NOT_FOUND",
    )
    for params in ({}, {"search": gone.email}, {"search": "Gone Person"}):
        listing = await api.client.get("/api/v1/users", params=params, headers=readonly.headers)
        assert str(gone.id) not in listing.text
    assert_envelope(
        await api.client.get(
            "/api/v1/users", params={"include_deleted": "true"}, headers=readonly.headers
        ),
        403,
        "FORBIDDEN",
    )

    # Admin: gone from reads and writes, visible only with include_deleted=true.
    for method, body in (("GET", None), ("PATCH", {"name": "Back"}), ("DELETE", None)):
        response = await api.client.request(
            method, f"/api/v1/users/{gone.id}", json=body, headers=admin.headers
        )
        assert_envelope(response, 404, "USER_NOT_FOUND")
    plain = await api.client.get(
        "/api/v1/users", params={"search": gone.email}, headers=admin.headers
    )
    assert plain.json()["meta"]["total_count"] == 0
    shown = await api.client.get(
        "/api/v1/users",
        params={"search": gone.email, "include_deleted": "true"},
        headers=admin.headers,
    )
    [row] = shown.json()["data"]
    assert row["id"] == str(gone.id)
    assert row["deleted_at"] is not None

    # The address is free again, for a new account with a new id.
    again = await api.client.post(
        "/api/v1/auth/register",
        json={"email": gone.email, "name": "New Owner", "password": NEW_PASSWORD},
    )
    assert again.status_code == 202, again.text
    async with api.runtime.db.session(write=False) as session:
        owners = (
            await session.scalars(
                select(User.id).where(User.email == gone.email, User.deleted_at.is_(None))
            )
        ).all()
    assert len(owners) == 1
    assert owners[0] != gone.id
    assert (await user_row(api, gone.id))["deleted_at"] is not None
