"""AuthService called directly, in a unit of work with an actor, on both databases; what
it stored, or kept after a rollback, is read back afterwards in a fresh session."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from gatehouse.auth.errors import (
    InvalidCredentials,
    InvalidGrant,
    RegistrationDisabled,
    SessionNotFound,
)
from gatehouse.auth.principal import Principal
from gatehouse.auth.service import TokenPair
from gatehouse.errors import (
    NotAuthenticated,
)
from gatehouse.runtime import Runtime
from gatehouse.users.models import Role, User
from gatehouse.users.schemas import UserCreate, UserEdit
from tests.factories import PASSWORD
from tests.service_support import (
    CLIENT_IP,
    acting,
    audit_rows,
    auth_of,
    log_in,
    make_user,
    outbox_rows,
    principal,
    sessions_of,
    stored_user,
    users_of,
    users_with_email,
)


async def principal_of(runtime: Runtime, access_token: str) -> Principal:
    """The caller behind a bearer token, as a request resolves it."""
    async with acting(runtime, write=False) as uow:
        return await auth_of(uow, runtime).principal(access_token)


async def logged_in(runtime: Runtime, user: User) -> tuple[TokenPair, Principal]:
    tokens = await log_in(runtime, user)
    return tokens, await principal_of(runtime, tokens.access_token)


# --- login ----------------------------------------------------------------------------------


async def test_a_login_opens_a_session_from_the_actors_address(runtime: Runtime) -> None:
    user = await make_user(runtime, email="login@example.com")
    async with acting(runtime) as uow:
        tokens = await auth_of(uow, runtime).login("Login@Example.com", PASSWORD)

    claims = runtime.tokens.decode_access_token(tokens.access_token)
    assert (claims.user_id, claims.session_id) == (user.id, tokens.session_id)
    assert claims.auth_version == user.auth_version
    assert tokens.refresh_token
    login = (await sessions_of(runtime, user.id))[tokens.session_id]
    assert login.revoked_at is None
    assert login.ip == CLIENT_IP
    assert login.user_agent == "service-tests"
    assert (await stored_user(runtime, user.id)).last_login_at is not None
    (audit,) = await audit_rows(runtime, "auth.login", target_id=user.id)
    assert audit.outcome == "success"
    assert (audit.actor_id, audit.actor_role) == (user.id, "user")
    assert audit.details == {"session_id": str(tokens.session_id), "amr": ["pwd"]}
    assert audit.pii is not None
    assert audit.pii["ip"] == CLIENT_IP
    assert audit.pii["identifier"] == "login@example.com"


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("login@example.com", "not-the-Password-9", "invalid_password"),
        ("nobody@example.com", PASSWORD, "unknown_user"),
    ],
    ids=["wrong password", "unknown email"],
)
async def test_a_failed_login_is_the_same_refusal_and_is_audited(
    runtime: Runtime, username: str, password: str, reason: str
) -> None:
    user = await make_user(runtime, email="login@example.com")
    with pytest.raises(InvalidCredentials):
        async with acting(runtime) as uow:
            await auth_of(uow, runtime).login(username, password)

    assert await sessions_of(runtime, user.id) == {}
    assert (await stored_user(runtime, user.id)).last_login_at is None
    # Kept although the unit of work rolled back.
    (audit,) = await audit_rows(runtime, "auth.login")
    assert (audit.outcome, audit.reason) == ("failure", reason)
    assert audit.actor_id is None
    assert audit.target_id == (str(user.id) if reason == "invalid_password" else None)
    assert audit.pii is not None
    assert audit.pii["identifier"] == username
    assert audit.pii["ip"] == CLIENT_IP


async def test_a_deleted_user_cannot_log_in(runtime: Runtime) -> None:
    admin = principal(await make_user(runtime, Role.admin))
    user = await make_user(runtime)
    async with acting(runtime, admin) as uow:
        await users_of(uow, runtime).delete(admin, user.id, None)
    with pytest.raises(InvalidCredentials):
        async with acting(runtime) as uow:
            await auth_of(uow, runtime).login(user.email, PASSWORD)


# --- refresh --------------------------------------------------------------------------------


async def refresh(runtime: Runtime, refresh_token: str) -> TokenPair:
    async with acting(runtime) as uow:
        return await auth_of(uow, runtime).refresh(refresh_token)


async def test_a_refresh_rotates_the_pair_within_the_session(runtime: Runtime) -> None:
    user = await make_user(runtime)
    first = await log_in(runtime, user)
    second = await refresh(runtime, first.refresh_token)

    assert second.session_id == first.session_id
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert (await principal_of(runtime, second.access_token)).user_id == user.id
    third = await refresh(runtime, second.refresh_token)
    assert third.session_id == first.session_id
    assert (await sessions_of(runtime, user.id))[first.session_id].revoked_at is None
    assert len(await audit_rows(runtime, "auth.refresh", target_id=user.id)) == 2


async def test_a_refresh_token_presented_again_ends_the_whole_session(runtime: Runtime) -> None:
    user = await make_user(runtime)
    first = await log_in(runtime, user)
    other = await log_in(runtime, user)
    second = await refresh(runtime, first.refresh_token)

    with pytest.raises(InvalidGrant):
        await refresh(runtime, first.refresh_token)

    sessions = await sessions_of(runtime, user.id)
    assert sessions[first.session_id].revoked_at is not None
    assert sessions[first.session_id].revoked_reason == "refresh_token_reuse"
    assert sessions[other.session_id].revoked_at is None  # another login is not touched
    (reuse,) = await audit_rows(runtime, "auth.refresh_reuse", target_id=user.id)
    assert (reuse.outcome, reuse.reason) == ("failure", "reuse_detected")
    # The token the rightful client holds now is spent with its session, and so is
    # the access token of the session.
    with pytest.raises(InvalidGrant):
        await refresh(runtime, second.refresh_token)
    with pytest.raises(NotAuthenticated):
        await principal_of(runtime, second.access_token)


async def test_an_unknown_refresh_token_is_refused_and_audited(runtime: Runtime) -> None:
    with pytest.raises(InvalidGrant):
        await refresh(runtime, "not-a-token-we-issued")

    (audit,) = await audit_rows(runtime, "auth.refresh")
    assert (audit.outcome, audit.reason) == ("failure", "unknown_token")


# --- logout ---------------------------------------------------------------------------------


async def test_a_logout_ends_this_session_only(runtime: Runtime) -> None:
    user = await make_user(runtime)
    here, me = await logged_in(runtime, user)
    elsewhere, _ = await logged_in(runtime, user)
    async with acting(runtime, me) as uow:
        await auth_of(uow, runtime).logout(me, everywhere=False)

    sessions = await sessions_of(runtime, user.id)
    assert sessions[here.session_id].revoked_reason == "logout"
    assert sessions[elsewhere.session_id].revoked_at is None
    assert (await stored_user(runtime, user.id)).auth_version == user.auth_version
    with pytest.raises(NotAuthenticated):
        await principal_of(runtime, here.access_token)
    assert (await principal_of(runtime, elsewhere.access_token)).user_id == user.id
    with pytest.raises(InvalidGrant):
        await refresh(runtime, here.refresh_token)
    (audit,) = await audit_rows(runtime, "auth.logout", target_id=user.id)
    assert audit.actor_id == user.id


async def test_a_logout_everywhere_ends_every_session_and_token(runtime: Runtime) -> None:
    user = await make_user(runtime)
    here, me = await logged_in(runtime, user)
    elsewhere, _ = await logged_in(runtime, user)
    async with acting(runtime, me) as uow:
        await auth_of(uow, runtime).logout(me, everywhere=True)

    sessions = await sessions_of(runtime, user.id)
    assert {s.revoked_reason for s in sessions.values()} == {"logout_all"}
    assert (await stored_user(runtime, user.id)).auth_version == user.auth_version + 1
    for tokens in (here, elsewhere):
        with pytest.raises(NotAuthenticated):
            await principal_of(runtime, tokens.access_token)
    assert len(await audit_rows(runtime, "auth.logout_all", target_id=user.id)) == 1


# --- principal ------------------------------------------------------------------------------


async def test_the_principal_is_who_the_token_names_as_the_database_sees_them(
    runtime: Runtime,
) -> None:
    user = await make_user(runtime, Role.readonly)
    tokens = await log_in(runtime, user)
    me = await principal_of(runtime, tokens.access_token)
    assert me == Principal(
        user_id=user.id,
        role=Role.readonly,
        session_id=tokens.session_id,
        auth_version=user.auth_version,
    )


async def test_a_token_from_before_a_logout_everywhere_is_not_authenticated(
    runtime: Runtime,
) -> None:
    user = await make_user(runtime)
    old, me = await logged_in(runtime, user)
    async with acting(runtime, me) as uow:
        await auth_of(uow, runtime).logout(me, everywhere=True)
    with pytest.raises(NotAuthenticated):
        await principal_of(runtime, old.access_token)

    # A new login is authenticated, with the new auth version.
    new, again = await logged_in(runtime, user)
    assert again.auth_version == user.auth_version + 1
    assert again.session_id == new.session_id


async def test_a_token_of_a_role_changed_user_is_not_authenticated(runtime: Runtime) -> None:
    admin = principal(await make_user(runtime, Role.admin))
    user = await make_user(runtime)
    old = await log_in(runtime, user)
    async with acting(runtime, admin) as uow:
        await users_of(uow, runtime).update(admin, user.id, UserEdit(role=Role.readonly), None)
    with pytest.raises(NotAuthenticated):
        await principal_of(runtime, old.access_token)


# --- sessions -------------------------------------------------------------------------------


async def test_you_list_your_live_sessions_without_an_audit_row(runtime: Runtime) -> None:
    user = await make_user(runtime)
    first, me = await logged_in(runtime, user)
    second = await log_in(runtime, user)
    ended = await log_in(runtime, user)
    async with acting(runtime, me) as uow:
        await auth_of(uow, runtime).end_session(user.id, ended.session_id)
    async with acting(runtime, me, write=False) as uow:
        found = await auth_of(uow, runtime).list_sessions(user.id)

    assert {s.id for s in found} == {first.session_id, second.session_id}
    assert all(s.ip == CLIENT_IP for s in found)
    assert await audit_rows(runtime, "session.list") == []


async def test_an_admin_listing_anothers_sessions_is_audited(runtime: Runtime) -> None:
    admin = principal(await make_user(runtime, Role.admin))
    user = await make_user(runtime)
    tokens = await log_in(runtime, user)
    async with acting(runtime, admin, write=False) as uow:
        found = await auth_of(uow, runtime).list_sessions(user.id)

    assert [s.id for s in found] == [tokens.session_id]
    (audit,) = await audit_rows(runtime, "session.list", target_id=user.id)
    assert audit.actor_id == admin.user_id
    assert audit.details == {"returned": 1}


async def test_ending_one_of_your_sessions(runtime: Runtime) -> None:
    user = await make_user(runtime)
    here, me = await logged_in(runtime, user)
    other = await log_in(runtime, user)
    async with acting(runtime, me) as uow:
        await auth_of(uow, runtime).end_session(user.id, other.session_id)

    sessions = await sessions_of(runtime, user.id)
    assert sessions[other.session_id].revoked_reason == "ended_by_request"
    assert sessions[here.session_id].revoked_at is None
    (audit,) = await audit_rows(runtime, "session.end", target_id=user.id)
    assert audit.details == {"session_id": str(other.session_id)}


@pytest.mark.parametrize("state", ["another users", "already ended", "unknown"])
async def test_ending_a_session_that_is_not_a_live_one_of_yours_is_not_found(
    runtime: Runtime, state: str
) -> None:
    user = await make_user(runtime)
    _, me = await logged_in(runtime, user)
    someone = await make_user(runtime)
    theirs = await log_in(runtime, someone)
    target = uuid.uuid4() if state == "unknown" else theirs.session_id
    if state == "already ended":
        target = (await log_in(runtime, user)).session_id
        async with acting(runtime, me) as uow:
            await auth_of(uow, runtime).end_session(user.id, target)
    with pytest.raises(SessionNotFound):
        async with acting(runtime, me) as uow:
            await auth_of(uow, runtime).end_session(user.id, target)

    assert (await sessions_of(runtime, someone.id))[theirs.session_id].revoked_at is None
    assert len(await audit_rows(runtime, "session.end")) == (state == "already ended")


async def test_ending_all_your_other_sessions_keeps_this_one(runtime: Runtime) -> None:
    user = await make_user(runtime)
    here, me = await logged_in(runtime, user)
    others = [await log_in(runtime, user) for _ in range(2)]
    someone = await make_user(runtime)
    theirs = await log_in(runtime, someone)
    async with acting(runtime, me) as uow:
        ended = await auth_of(uow, runtime).end_sessions(user.id, keep=me.session_id)

    assert ended == 2
    sessions = await sessions_of(runtime, user.id)
    assert sessions[here.session_id].revoked_at is None
    assert all(sessions[o.session_id].revoked_reason == "ended_by_request" for o in others)
    assert (await sessions_of(runtime, someone.id))[theirs.session_id].revoked_at is None
    (audit,) = await audit_rows(runtime, "session.end_all", target_id=user.id)
    assert audit.details == {"ended": 2}


# --- register -------------------------------------------------------------------------------


async def register(runtime: Runtime, **fields: Any) -> User | None:
    data = UserCreate(**{"name": "Signed Up", "password": PASSWORD, **fields})
    async with acting(runtime) as uow:
        return await auth_of(uow, runtime).register(data)


async def test_a_sign_up_makes_a_plain_user_whatever_it_asks_for(runtime: Runtime) -> None:
    created = await register(runtime, email="signup@example.com", role=Role.admin)
    assert created is not None

    user = await stored_user(runtime, created.id)
    assert (user.email, user.role) == ("signup@example.com", "user")
    assert len(await outbox_rows(runtime, "user.created", user.id)) == 1
    (audit,) = await audit_rows(runtime, "auth.register", target_id=user.id)
    assert audit.outcome == "success"
    assert (audit.actor_id, audit.actor_role) == (user.id, "user")
    assert audit.pii is not None
    assert audit.pii["ip"] == CLIENT_IP
    # Audited once, as a sign-up, not also as an account made by someone.
    assert await audit_rows(runtime, "user.create") == []


@pytest.mark.parametrize("settings_overrides", [{"registration_enabled": False}])
async def test_a_sign_up_when_registration_is_off_is_refused_and_audited(
    runtime: Runtime,
) -> None:
    with pytest.raises(RegistrationDisabled):
        await register(runtime, email="signup@example.com")

    assert await users_with_email(runtime, "signup@example.com") == []
    (audit,) = await audit_rows(runtime, "auth.register")
    assert (audit.outcome, audit.reason) == ("failure", "registration_disabled")
    assert audit.actor_id is None
    assert audit.pii is not None
    assert audit.pii["email"] == "signup@example.com"


async def test_a_sign_up_with_a_taken_email_makes_nothing_and_is_audited(runtime: Runtime) -> None:
    existing = await make_user(runtime, email="signup@example.com")
    # No error: the API answers a taken address as a new one (its owner is mailed).
    assert await register(runtime, email="signup@example.com") is None

    assert [u.id for u in await users_with_email(runtime, "signup@example.com")] == [existing.id]
    (audit,) = await audit_rows(runtime, "auth.register")
    assert (audit.outcome, audit.reason) == ("failure", "email_taken")
    assert audit.target_id == str(existing.id)
