"""UserService called directly, in a unit of work with an actor, on both databases; what
it stored is read back afterwards in a fresh session."""

from __future__ import annotations

import uuid

import pytest

from gatehouse.errors import (
    EmailTaken,
    Forbidden,
    LastAdmin,
    UserNotFound,
    ValidationFailed,
    VersionConflict,
)
from gatehouse.runtime import Runtime
from gatehouse.users.errors import (
    ReauthenticationRequired,
    WrongPassword,
)
from gatehouse.users.models import Role, User
from gatehouse.users.schemas import MeUpdate, PasswordChange, UserCreate, UserEdit, UserRead
from tests.factories import PASSWORD
from tests.service_support import (
    CLIENT_IP,
    acting,
    audit_rows,
    log_in,
    make_user,
    outbox_rows,
    principal,
    sessions_of,
    stored_user,
    users_of,
    users_with_email,
)

NEW_PASSWORD = "Quiet-Orchid-Lantern-42"


class Boom(Exception):
    pass


# --- create ---------------------------------------------------------------------------------


async def test_create_stores_the_user_its_event_and_its_audit_row(runtime: Runtime) -> None:
    admin = principal(await make_user(runtime, Role.admin))
    data = UserCreate(
        email="New.Person@Example.com", name="New Person", password=PASSWORD, role=Role.readonly
    )
    async with acting(runtime, admin) as uow:
        created = await users_of(uow, runtime).create(data)

    user = await stored_user(runtime, created.id)
    assert user.email == "new.person@example.com"
    assert (user.name, user.role) == ("New Person", "readonly")
    assert await runtime.hasher.verify(PASSWORD, user.password_hash)
    assert user.deleted_at is None
    (event,) = await outbox_rows(runtime, "user.created", user.id)
    assert event.payload["data"]["email"] == "new.person@example.com"
    assert event.payload["data"]["role"] == "readonly"
    (audit,) = await audit_rows(runtime, "user.create", target_id=user.id)
    assert audit.outcome == "success"
    assert audit.actor_id == admin.user_id
    assert audit.actor_role == "admin"
    assert audit.details == {"role": "readonly"}
    assert audit.pii is not None
    assert audit.pii["email"] == "new.person@example.com"
    assert audit.pii["ip"] == CLIENT_IP


@pytest.mark.parametrize(
    "password",
    ["Sh0rt!", "wanda-the-walrus-Password"],
    ids=["too short", "contains the email's name"],
)
async def test_create_refuses_a_password_the_policy_refuses(
    runtime: Runtime, password: str
) -> None:
    data = UserCreate(email="wanda.walrus@example.com", name="Wanda W", password=password)
    with pytest.raises(ValidationFailed) as refused:
        async with acting(runtime) as uow:
            await users_of(uow, runtime).create(data)

    assert set(refused.value.details) == {"password"}
    assert refused.value.details["password"]
    assert await users_with_email(runtime, "wanda.walrus@example.com") == []


async def test_create_refuses_an_email_a_live_user_has(runtime: Runtime) -> None:
    first = await make_user(runtime, email="taken@example.com")
    data = UserCreate(email="TAKEN@example.com", name="Second", password=PASSWORD)
    with pytest.raises(EmailTaken) as refused:
        async with acting(runtime) as uow:
            await users_of(uow, runtime).create(data)

    assert refused.value.details == {"email": ["Email already exists"]}
    assert [u.id for u in await users_with_email(runtime, "taken@example.com")] == [first.id]
    assert len(await audit_rows(runtime, "user.create")) == 1  # the first one's


async def test_nothing_of_a_create_is_stored_when_the_unit_of_work_fails(
    runtime: Runtime,
) -> None:
    data = UserCreate(email="ghost@example.com", name="Ghost", password=PASSWORD)
    created: list[User] = []

    async def create_then_fail() -> None:
        async with acting(runtime) as uow:
            created.append(await users_of(uow, runtime).create(data))
            raise Boom

    with pytest.raises(Boom):
        await create_then_fail()

    assert len(created) == 1  # the service did its part; the unit of work failed after
    assert await users_with_email(runtime, "ghost@example.com") == []
    assert await outbox_rows(runtime, "user.created", created[0].id) == []
    assert await audit_rows(runtime, "user.create") == []


# --- get ------------------------------------------------------------------------------------


async def test_a_plain_user_reading_another_finds_nothing_and_is_audited(
    runtime: Runtime,
) -> None:
    reader = principal(await make_user(runtime))
    other = await make_user(runtime)
    with pytest.raises(UserNotFound):
        async with acting(runtime, reader, write=False) as uow:
            await users_of(uow, runtime).get(reader, other.id)

    # Written although the unit of work rolled back.
    (denied,) = await audit_rows(runtime, "authz.denied", target_id=other.id)
    assert denied.outcome == "denied"
    assert denied.reason == "not_permitted"
    assert denied.actor_id == reader.user_id
    assert await audit_rows(runtime, "user.read") == []


@pytest.mark.parametrize("role", [Role.admin, Role.readonly])
async def test_an_admin_or_readonly_read_of_another_user_is_audited(
    runtime: Runtime, role: Role
) -> None:
    reader = principal(await make_user(runtime, role))
    other = await make_user(runtime, name="Read Me")
    async with acting(runtime, reader, write=False) as uow:
        found = UserRead.model_validate_json(
            (await users_of(uow, runtime).get(reader, other.id)).read
        )

    assert (found.id, found.email, found.name) == (other.id, other.email, "Read Me")
    (read,) = await audit_rows(runtime, "user.read", target_id=other.id)
    assert read.actor_id == reader.user_id
    assert read.actor_role == role.value


async def test_reading_yourself_is_not_audited(runtime: Runtime) -> None:
    me = principal(await make_user(runtime))
    async with acting(runtime, me, write=False) as uow:
        found = UserRead.model_validate_json(
            (await users_of(uow, runtime).get(me, me.user_id)).read
        )

    assert found.id == me.user_id
    assert await audit_rows(runtime, "user.read") == []


async def test_an_admin_reading_a_deleted_user_finds_nothing(runtime: Runtime) -> None:
    admin = principal(await make_user(runtime, Role.admin))
    gone = await make_user(runtime)
    async with acting(runtime, admin) as uow:
        await users_of(uow, runtime).delete(admin, gone.id, None)
    with pytest.raises(UserNotFound):
        async with acting(runtime, admin, write=False) as uow:
            await users_of(uow, runtime).get(admin, gone.id)


# --- update (admin) -------------------------------------------------------------------------


async def test_a_role_change_ends_the_users_tokens_and_is_audited(runtime: Runtime) -> None:
    admin = principal(await make_user(runtime, Role.admin))
    user = await make_user(runtime)
    async with acting(runtime, admin) as uow:
        await users_of(uow, runtime).update(
            admin, user.id, UserEdit(role=Role.readonly), user.version
        )

    after = await stored_user(runtime, user.id)
    assert after.role == "readonly"
    assert after.auth_version == user.auth_version + 1
    assert after.version == user.version + 1
    (audit,) = await audit_rows(runtime, "user.role_change", target_id=user.id)
    assert audit.details == {"fields": ["role"], "role": {"from": "user", "to": "readonly"}}
    (event,) = await outbox_rows(runtime, "user.updated", user.id)
    assert event.payload["data"]["changes"]["role"] == "readonly"


async def test_a_name_change_keeps_the_users_tokens(runtime: Runtime) -> None:
    admin = principal(await make_user(runtime, Role.admin))
    user = await make_user(runtime)
    async with acting(runtime, admin) as uow:
        await users_of(uow, runtime).update(admin, user.id, UserEdit(name="Renamed"), None)

    after = await stored_user(runtime, user.id)
    assert after.name == "Renamed"
    assert after.auth_version == user.auth_version
    (audit,) = await audit_rows(runtime, "user.update", target_id=user.id)
    assert audit.details == {"fields": ["name"]}


async def test_an_admin_cannot_change_their_own_role(runtime: Runtime) -> None:
    admin_user = await make_user(runtime, Role.admin)
    await make_user(runtime, Role.admin)  # not the last admin: the refusal is about "own"
    admin = principal(admin_user)
    with pytest.raises(Forbidden):
        async with acting(runtime, admin) as uow:
            await users_of(uow, runtime).update(
                admin, admin.user_id, UserEdit(role=Role.user), None
            )

    after = await stored_user(runtime, admin.user_id)
    assert (after.role, after.auth_version) == ("admin", admin_user.auth_version)


async def test_the_last_admin_cannot_be_demoted(runtime: Runtime) -> None:
    first = await make_user(runtime, Role.admin)
    second = principal(await make_user(runtime, Role.admin))
    # `first` deletes `second`; a request of `second`'s authenticated before that then
    # tries to demote `first`, now the last admin.
    async with acting(runtime, principal(first)) as uow:
        await users_of(uow, runtime).delete(principal(first), second.user_id, None)
    with pytest.raises(LastAdmin):
        async with acting(runtime, second) as uow:
            await users_of(uow, runtime).update(second, first.id, UserEdit(role=Role.user), None)

    assert (await stored_user(runtime, first.id)).role == "admin"
    assert await audit_rows(runtime, "user.role_change") == []


async def test_an_admin_may_be_demoted_while_another_remains(runtime: Runtime) -> None:
    first = await make_user(runtime, Role.admin)
    second = principal(await make_user(runtime, Role.admin))
    async with acting(runtime, second) as uow:
        await users_of(uow, runtime).update(second, first.id, UserEdit(role=Role.user), None)

    assert (await stored_user(runtime, first.id)).role == "user"


async def test_an_update_of_a_stale_version_is_a_conflict(runtime: Runtime) -> None:
    admin = principal(await make_user(runtime, Role.admin))
    user = await make_user(runtime, name="Original")
    async with acting(runtime, admin) as uow:
        await users_of(uow, runtime).update(
            admin, user.id, UserEdit(name="First Edit"), user.version
        )
    with pytest.raises(VersionConflict):
        async with acting(runtime, admin) as uow:
            await users_of(uow, runtime).update(
                admin, user.id, UserEdit(name="Second Edit"), user.version
            )

    after = await stored_user(runtime, user.id)
    assert (after.name, after.version) == ("First Edit", user.version + 1)


async def test_an_update_to_a_taken_email_is_refused(runtime: Runtime) -> None:
    admin = principal(await make_user(runtime, Role.admin))
    await make_user(runtime, email="first@example.com")
    second = await make_user(runtime, email="second@example.com")
    with pytest.raises(EmailTaken):
        async with acting(runtime, admin) as uow:
            await users_of(uow, runtime).update(
                admin, second.id, UserEdit(email="first@example.com"), None
            )

    assert (await stored_user(runtime, second.id)).email == "second@example.com"


# --- update_me ------------------------------------------------------------------------------


async def test_changing_your_email_needs_your_current_password(runtime: Runtime) -> None:
    user = await make_user(runtime, email="before@example.com")
    me = principal(user)
    with pytest.raises(ReauthenticationRequired):
        async with acting(runtime, me) as uow:
            await users_of(uow, runtime).update_me(me, MeUpdate(email="after@example.com"), None)

    assert (await stored_user(runtime, user.id)).email == "before@example.com"


async def test_a_wrong_current_password_is_refused_and_audited(runtime: Runtime) -> None:
    user = await make_user(runtime, email="before@example.com")
    me = principal(user)
    data = MeUpdate(email="after@example.com", current_password="not-my-Password-1")
    with pytest.raises(WrongPassword):
        async with acting(runtime, me) as uow:
            await users_of(uow, runtime).update_me(me, data, None)

    assert (await stored_user(runtime, user.id)).email == "before@example.com"
    # Kept although the unit of work rolled back.
    (audit,) = await audit_rows(runtime, "user.update", target_id=user.id)
    assert (audit.outcome, audit.reason) == ("failure", "wrong_password")
    assert audit.actor_id == user.id
    assert audit.pii is not None
    assert audit.pii["ip"] == CLIENT_IP


async def test_your_email_changes_with_your_current_password(runtime: Runtime) -> None:
    user = await make_user(runtime, email="before@example.com")
    me = principal(user)
    data = MeUpdate(email="after@example.com", name="New Name", current_password=PASSWORD)
    async with acting(runtime, me) as uow:
        await users_of(uow, runtime).update_me(me, data, user.version)

    after = await stored_user(runtime, user.id)
    assert (after.email, after.name) == ("after@example.com", "New Name")
    assert after.email_verified_at is None
    (audit,) = await audit_rows(runtime, "user.update", target_id=user.id)
    assert audit.outcome == "success"
    assert audit.details == {"fields": ["email", "name"]}
    (event,) = await outbox_rows(runtime, "user.updated", user.id)
    assert event.payload["data"]["changes"]["email"] == "after@example.com"


async def test_a_readonly_user_cannot_change_their_profile(runtime: Runtime) -> None:
    user = await make_user(runtime, Role.readonly, name="Fixed")
    me = principal(user)
    with pytest.raises(Forbidden):
        async with acting(runtime, me) as uow:
            await users_of(uow, runtime).update_me(me, MeUpdate(name="Changed"), None)

    assert (await stored_user(runtime, user.id)).name == "Fixed"


# --- change_password ------------------------------------------------------------------------


async def test_a_password_change_ends_your_other_sessions_and_keeps_this_one(
    runtime: Runtime,
) -> None:
    user = await make_user(runtime)
    here = await log_in(runtime, user)
    elsewhere = [await log_in(runtime, user), await log_in(runtime, user)]
    me = principal(user, here.session_id)
    change = PasswordChange(current_password=PASSWORD, new_password=NEW_PASSWORD)
    async with acting(runtime, me) as uow:
        await users_of(uow, runtime).change_password(me, change)

    sessions = await sessions_of(runtime, user.id)
    assert sessions[here.session_id].revoked_at is None
    for other in elsewhere:
        assert sessions[other.session_id].revoked_at is not None
        assert sessions[other.session_id].revoked_reason == "password_changed"
    after = await stored_user(runtime, user.id)
    assert await runtime.hasher.verify(NEW_PASSWORD, after.password_hash)
    assert not await runtime.hasher.verify(PASSWORD, after.password_hash)
    assert len(await outbox_rows(runtime, "user.password_changed", user.id)) == 1
    (audit,) = await audit_rows(runtime, "auth.password_change", target_id=user.id)
    assert audit.outcome == "success"


async def test_a_password_change_with_a_wrong_current_password_changes_nothing(
    runtime: Runtime,
) -> None:
    user = await make_user(runtime)
    here = await log_in(runtime, user)
    other = await log_in(runtime, user)
    me = principal(user, here.session_id)
    change = PasswordChange(current_password="not-my-Password-1", new_password=NEW_PASSWORD)
    with pytest.raises(WrongPassword):
        async with acting(runtime, me) as uow:
            await users_of(uow, runtime).change_password(me, change)

    after = await stored_user(runtime, user.id)
    assert await runtime.hasher.verify(PASSWORD, after.password_hash)
    assert (await sessions_of(runtime, user.id))[other.session_id].revoked_at is None
    (audit,) = await audit_rows(runtime, "auth.password_change", target_id=user.id)
    assert (audit.outcome, audit.reason) == ("failure", "wrong_password")


async def test_a_new_password_the_policy_refuses_names_the_field(runtime: Runtime) -> None:
    user = await make_user(runtime)
    me = principal(user)
    change = PasswordChange(current_password=PASSWORD, new_password="Sh0rt!")
    with pytest.raises(ValidationFailed) as refused:
        async with acting(runtime, me) as uow:
            await users_of(uow, runtime).change_password(me, change)

    assert set(refused.value.details) == {"new_password"}
    assert await runtime.hasher.verify(
        PASSWORD, (await stored_user(runtime, user.id)).password_hash
    )


# --- delete ---------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["admin", "themself"])
async def test_a_deleted_user_is_soft_deleted_logged_out_and_announced(
    runtime: Runtime, by: str
) -> None:
    user = await make_user(runtime)
    logins = [await log_in(runtime, user), await log_in(runtime, user)]
    if by == "admin":
        admin = principal(await make_user(runtime, Role.admin))
        async with acting(runtime, admin) as uow:
            await users_of(uow, runtime).delete(admin, user.id, user.version)
    else:
        me = principal(user, logins[0].session_id)
        async with acting(runtime, me) as uow:
            await users_of(uow, runtime).delete_me(me)

    after = await stored_user(runtime, user.id)
    assert after.deleted_at is not None
    assert after.auth_version == user.auth_version + 1
    sessions = await sessions_of(runtime, user.id)
    assert {s.revoked_reason for s in sessions.values()} == {"user_deleted"}
    assert len(sessions) == len(logins)
    assert len(await outbox_rows(runtime, "user.deleted", user.id)) == 1
    (audit,) = await audit_rows(runtime, "user.delete", target_id=user.id)
    assert audit.outcome == "success"


@pytest.mark.parametrize("how", ["delete", "delete_me"])
async def test_the_last_admin_cannot_be_deleted(runtime: Runtime, how: str) -> None:
    user = await make_user(runtime, Role.admin)
    admin = principal(user)

    async def delete_yourself() -> None:
        async with acting(runtime, admin) as uow:
            service = users_of(uow, runtime)
            if how == "delete":
                await service.delete(admin, admin.user_id, None)
            else:
                await service.delete_me(admin)

    with pytest.raises(LastAdmin):
        await delete_yourself()

    assert (await stored_user(runtime, user.id)).deleted_at is None
    assert await outbox_rows(runtime, "user.deleted", user.id) == []


async def test_deleting_a_user_who_does_not_exist_is_not_found(runtime: Runtime) -> None:
    admin = principal(await make_user(runtime, Role.admin))
    with pytest.raises(UserNotFound):
        async with acting(runtime, admin) as uow:
            await users_of(uow, runtime).delete(admin, uuid.uuid4(), None)
