"""The principal and user-read cache: hits and misses, and invalidation after commit.

Every behaviour runs with Redis and on the embedded default (memory on SQLite; no cache
at all on PostgreSQL without Redis, where processes could not tell each other).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from gatehouse.app import create_app
from gatehouse.auth.principal import Principal
from gatehouse.auth.repository import SessionRepository
from gatehouse.runtime import Runtime
from gatehouse.users import service as users_service
from gatehouse.users.models import Role, User
from gatehouse.users.repository import UserRepository
from gatehouse.users.schemas import UserRead
from gatehouse.users.service import UserService
from tests.factories import Account, Api

ME = "/api/v1/users/me"


@pytest.fixture(params=["redis", "embedded"])
def cache_mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_overrides(cache_mode: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    if cache_mode == "embedded":
        return {}
    return {
        "redis_url": request.getfixturevalue("redis_url"),
        "redis_prefix": request.getfixturevalue("redis_prefix"),
        # A read slower than the timeout bypasses the cache (as it should in service),
        # which a loaded test machine turned into a missing hit once: these tests count
        # hits, so the shared Redis gets time to answer.
        "redis_timeout_seconds": 5.0,
    }


def cached(api: Api) -> bool:
    """Whether this configuration caches at all."""
    return api.runtime.redis is not None or api.runtime.settings.is_sqlite


class StatementCounter:
    def __init__(self, runtime: Runtime) -> None:
        # Both where SQLite has a writer's and a readers' engine.
        self.engines = {runtime.db.engine.sync_engine, runtime.db.read_engine.sync_engine}
        self.count = 0

    def _on_execute(self, *_: Any) -> None:
        self.count += 1

    def __enter__(self) -> StatementCounter:
        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._on_execute)
        return self

    def __exit__(self, *_: object) -> None:
        for engine in self.engines:
            event.remove(engine, "before_cursor_execute", self._on_execute)


async def test_repeated_reads_are_served_from_the_cache_and_counted(api: Api) -> None:
    me = await api.user("user")
    stats = api.runtime.cache.stats
    bodies = []
    for _ in range(5):
        response = await api.client.get(ME, headers=me.headers)
        assert response.status_code == 200
        bodies.append((response.json(), response.headers["etag"]))
    # A cached answer is the same answer, ETag included.
    assert all(body == bodies[0] for body in bodies)
    if cached(api):
        assert (stats["principal_misses"], stats["principal_hits"]) == (1, 4)
        assert (stats["user_misses"], stats["user_hits"]) == (1, 4)
    else:
        assert not api.runtime.cache.enabled
        assert sum(stats.values()) == 0
    with StatementCounter(api.runtime) as statements:
        assert (await api.client.get(ME, headers=me.headers)).status_code == 200
    # Cached: neither the principal nor the user read touches the database.
    assert statements.count == (0 if cached(api) else 2)


async def test_a_cached_read_of_your_own_profile_is_one_round_trip_to_redis(
    api: Api, cache_mode: str
) -> None:
    if cache_mode != "redis":
        pytest.skip("counts round trips to Redis")
    me = await api.user("user")
    assert (await api.client.get(ME, headers=me.headers)).status_code == 200
    assert api.runtime.redis is not None
    calls = api.runtime.redis.stats
    stats = api.runtime.cache.stats
    before, hits = calls["calls"], (stats["principal_hits"], stats["user_hits"])
    response = await api.client.get(ME, headers=me.headers)
    assert response.status_code == 200
    assert response.json()["email"] == me.email
    # The principal and the profile both came from the cache, read in one round trip.
    assert (stats["principal_hits"], stats["user_hits"]) == (hits[0] + 1, hits[1] + 1)
    assert calls["calls"] - before == 1


async def test_a_token_of_an_unknown_session_is_refused_and_never_cached(api: Api) -> None:
    me = await api.user("user")
    forged = api.runtime.tokens.issue_access_token(
        user_id=me.id, session_id=uuid.uuid4(), role="admin", auth_version=1
    )
    for _ in range(3):
        response = await api.client.get(ME, headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401
    assert api.runtime.cache.stats["principal_hits"] == 0


# --- every write that changes what is cached is seen on the very next request ----------


async def _role_change(api: Api, admin: Account, victim: Account) -> None:
    response = await api.client.patch(
        f"/api/v1/users/{victim.id}", json={"role": "readonly"}, headers=admin.headers
    )
    assert response.status_code == 200


async def _delete(api: Api, admin: Account, victim: Account) -> None:
    response = await api.client.delete(f"/api/v1/users/{victim.id}", headers=admin.headers)
    assert response.status_code == 204


async def _logout(api: Api, admin: Account, victim: Account) -> None:
    response = await api.client.post("/api/v1/auth/logout", headers=victim.headers)
    assert response.status_code in (200, 204)


async def _logout_everywhere(api: Api, admin: Account, victim: Account) -> None:
    other = await api.login(Account(victim.id, victim.email, victim.password, victim.role))
    response = await api.client.post(
        "/api/v1/auth/logout", json={"all": True}, headers=other.headers
    )
    assert response.status_code in (200, 204)


async def _admin_ends_sessions(api: Api, admin: Account, victim: Account) -> None:
    response = await api.client.delete(f"/api/v1/users/{victim.id}/sessions", headers=admin.headers)
    assert response.status_code == 204


async def _admin_ends_one_session(api: Api, admin: Account, victim: Account) -> None:
    sessions = await api.client.get(f"/api/v1/users/{victim.id}/sessions", headers=admin.headers)
    (only,) = sessions.json()["data"] if "data" in sessions.json() else sessions.json()
    response = await api.client.delete(
        f"/api/v1/users/{victim.id}/sessions/{only['id']}", headers=admin.headers
    )
    assert response.status_code == 204


async def _password_changed_elsewhere(api: Api, admin: Account, victim: Account) -> None:
    other = await api.login(Account(victim.id, victim.email, victim.password, victim.role))
    response = await api.client.post(
        "/api/v1/users/me/password",
        json={"current_password": victim.password, "new_password": "Another-Lamp-Post-77"},
        headers=other.headers,
    )
    assert response.status_code == 204


async def _refresh_token_reused(api: Api, admin: Account, victim: Account) -> None:
    grant = {"grant_type": "refresh_token", "refresh_token": victim.refresh_token}
    assert (await api.client.post("/api/v1/auth/token", json=grant)).status_code == 200
    assert (await api.client.post("/api/v1/auth/token", json=grant)).status_code == 400


ENDINGS: dict[str, Callable[[Api, Account, Account], Awaitable[None]]] = {
    "role change": _role_change,
    "soft delete": _delete,
    "logout": _logout,
    "logout everywhere": _logout_everywhere,
    "admin ends all sessions": _admin_ends_sessions,
    "admin ends the session": _admin_ends_one_session,
    "password changed in another session": _password_changed_elsewhere,
    "refresh token reused": _refresh_token_reused,
}


@pytest.mark.parametrize("ending", list(ENDINGS))
async def test_a_token_ended_by_a_write_is_refused_on_the_next_request(
    api: Api, ending: str
) -> None:
    admin = await api.user("admin")
    victim = await api.user("user")
    for _ in range(2):  # warm: the second is a cache hit
        assert (await api.client.get(ME, headers=victim.headers)).status_code == 200
    hits = api.runtime.cache.stats["principal_hits"]
    assert hits >= (1 if cached(api) else 0)
    await ENDINGS[ending](api, admin, victim)
    response = await api.client.get(ME, headers=victim.headers)
    assert response.status_code == 401, ending


async def test_a_profile_edit_is_seen_on_the_next_read(api: Api) -> None:
    admin = await api.user("admin")
    victim = await api.user("user")
    before = await api.client.get(f"/api/v1/users/{victim.id}", headers=admin.headers)
    await api.client.get(f"/api/v1/users/{victim.id}", headers=admin.headers)
    edited = await api.client.patch(ME, json={"name": "New Name"}, headers=victim.headers)
    assert edited.status_code == 200
    after = await api.client.get(f"/api/v1/users/{victim.id}", headers=admin.headers)
    assert after.json()["name"] == "New Name"
    assert after.headers["etag"] == edited.headers["etag"] != before.headers["etag"]
    renamed = await api.client.put(
        f"/api/v1/users/{victim.id}", json={"name": "Admin Set", "role": "user"},
        headers=admin.headers,
    )  # fmt: skip
    assert renamed.status_code == 200
    mine = await api.client.get(ME, headers=victim.headers)
    assert mine.json()["name"] == "Admin Set"


# --- after commit only ----------------------------------------------------------------


async def _write_then_fail(runtime: Runtime, user_id: uuid.UUID) -> None:
    async with runtime.unit_of_work() as uow:
        session = uow.session
        user = await session.get(User, user_id)
        assert user is not None
        user.name = "Never Stored"
        user.auth_version += 1
        await session.flush()
        await SessionRepository(session).revoke_all(user_id, user.updated_at, "test")
        raise RuntimeError("the request failed after its writes")


async def test_a_rolled_back_change_invalidates_nothing_and_leaves_nothing_stale(
    api: Api,
) -> None:
    me = await api.user("user")
    first = await api.client.get(ME, headers=me.headers)
    stats = api.runtime.cache.stats
    invalidations = stats["invalidations"]
    with pytest.raises(RuntimeError):
        await _write_then_fail(api.runtime, me.id)
    assert stats["invalidations"] == invalidations
    again = await api.client.get(ME, headers=me.headers)
    assert again.status_code == 200
    assert again.json() == first.json()
    if cached(api):
        assert stats["user_hits"] >= 1  # the entry survived, and it is still the truth
    # The same change committed is seen at once.
    async with api.runtime.unit_of_work() as uow:
        session = uow.session
        user = await session.get(User, me.id)
        assert user is not None
        user.name = "Stored"
        await session.flush()
    assert (await api.client.get(ME, headers=me.headers)).json()["name"] == "Stored"
    assert stats["invalidations"] == invalidations + (1 if cached(api) else 0)


async def test_a_reader_that_read_the_old_row_cannot_cache_it_after_the_commit(
    api: Api,
) -> None:
    """The race invalidate-after-commit alone leaves open: read old, commit, refill old."""
    me = await api.user("user")
    cache = api.runtime.cache
    if not cache.enabled:
        pytest.skip("no cache on PostgreSQL without Redis")
    claims = api.runtime.tokens.decode_access_token(me.access_token)

    async def slow_reader() -> tuple[str, int] | None:
        async with api.runtime.db.session(write=False) as session:
            row = await SessionRepository(session).principal_row(me.id, claims.session_id)
        # Meanwhile another request commits a role change (and invalidates after it).
        async with api.runtime.unit_of_work() as uow:
            user = await uow.session.get(User, me.id)
            assert user is not None
            user.role, user.auth_version = "readonly", user.auth_version + 1
        return row

    stale = await cache.principal(me.id, claims.session_id, slow_reader)
    assert stale == ("user", 1)  # what that reader saw; it must not stay behind
    assert cache.stats["fills_skipped"] == 1
    assert (await api.client.get(ME, headers=me.headers)).status_code == 401


# --- what is cached is the read model itself ---------------------------------------------


class WiderRead(UserRead):
    """UserRead as it would be with two more columns shown: the cache must need no edit."""

    email_verified_at: datetime | None
    last_login_at: datetime | None


async def fresh_row(api: Api, user_id: uuid.UUID) -> User:
    async with api.runtime.db.session(write=False) as session:
        user = await UserRepository(session).get(user_id)
    assert user is not None
    return user


async def test_the_cached_user_is_the_read_model_of_a_fresh_database_read(api: Api) -> None:
    cache = api.runtime.cache
    if cache.backend is None:
        pytest.skip("no cache on PostgreSQL without Redis")
    admin = await api.user("admin")
    me = await api.user("user")
    path = f"/api/v1/users/{me.id}"
    answers = [await api.client.get(path, headers=admin.headers) for _ in range(2)]
    assert cache.stats["user_hits"] == 1
    (read, version), _ = await cache.backend.read(cache.user_key(me.id), ["read", "ver"])
    user = await fresh_row(api, me.id)
    assert (read, version) == (UserRead.model_validate(user).model_dump_json(), str(user.version))
    served = json.loads(read or "")
    assert set(served) == set(UserRead.model_fields)
    assert answers[1].json() == answers[0].json() == served
    assert answers[1].headers["etag"] == answers[0].headers["etag"] == f'"{user.version}"'


async def test_a_field_added_to_the_read_model_is_cached_with_no_other_edit(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = api.runtime.cache
    if not cache.enabled:
        pytest.skip("no cache on PostgreSQL without Redis")
    me = await api.user("user")
    monkeypatch.setattr(users_service, "UserRead", WiderRead)
    principal = Principal(me.id, Role.user, uuid.uuid4(), 1)
    reads = []
    for _ in range(2):  # a miss that fills, then a hit
        async with api.runtime.unit_of_work(write=False) as uow:
            service = UserService(uow, api.runtime.settings.auth, api.runtime.hasher)
            reads.append(await service.get(principal, me.id))
    assert (cache.stats["user_misses"], cache.stats["user_hits"]) == (1, 1)
    user = await fresh_row(api, me.id)
    assert user.last_login_at is not None  # logged in: a value that must survive the cache
    assert reads[1].read == reads[0].read == WiderRead.model_validate(user).model_dump_json()
    assert reads[1].version == user.version


# --- two app instances (two runtimes) sharing the database and the Redis prefix --------


@pytest.fixture
async def second_app(api: Api) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    if api.runtime.redis is None:
        pytest.skip("several processes share a cache only through Redis")
    runtime = Runtime.create(api.runtime.settings)
    transport = httpx.ASGITransport(app=create_app(runtime=runtime), client=("127.0.0.1", 1))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c, runtime
    finally:
        await runtime.close()


@pytest.mark.parametrize(
    "ending", ["role change", "soft delete", "logout", "admin ends the session"]
)
async def test_a_write_through_one_app_is_seen_by_the_other_on_its_next_request(
    api: Api, second_app: tuple[httpx.AsyncClient, Runtime], ending: str
) -> None:
    other, other_runtime = second_app
    admin = await api.user("admin")
    victim = await api.user("user")
    for _ in range(3):
        assert (await other.get(ME, headers=victim.headers)).status_code == 200
    assert other_runtime.cache.stats["principal_hits"] == 2
    await ENDINGS[ending](api, admin, victim)
    assert (await other.get(ME, headers=victim.headers)).status_code == 401


async def test_a_role_change_through_one_app_changes_access_in_the_other(
    api: Api, second_app: tuple[httpx.AsyncClient, Runtime]
) -> None:
    other, _ = second_app
    admin = await api.user("admin")
    staff = await api.user("readonly")
    for _ in range(2):
        assert (await other.get("/api/v1/users", headers=staff.headers)).status_code == 200
    response = await api.client.patch(
        f"/api/v1/users/{staff.id}", json={"role": "user"}, headers=admin.headers
    )
    assert response.status_code == 200
    # Old token: ended (auth_version). New login: the new role, with no cached leftovers.
    assert (await other.get("/api/v1/users", headers=staff.headers)).status_code == 401
    await api.login(staff)
    assert (await other.get("/api/v1/users", headers=staff.headers)).status_code == 403
    assert (await other.get(ME, headers=staff.headers)).json()["role"] == "user"
