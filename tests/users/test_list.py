"""The admin list at scale, on both databases: the live-user counts follow every write
that makes a user live or not, the recount repairs a drift, and the deferred-join pages
are exactly what the plain OFFSET query returned for every sort and filter."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.kit.time import utcnow
from gatehouse.privacy.service import purge_erased, purge_inactive
from gatehouse.runtime import Runtime
from gatehouse.users import counts
from gatehouse.users import tasks as user_tasks
from gatehouse.users.models import Role, User, UserCount
from gatehouse.users.repository import UserRepository, list_filters
from gatehouse.users.schemas import ListParams, Order, SortField
from gatehouse.users.seed import seed
from tests.factories import PASSWORD, Api
from tests.privacy.support import person, set_times
from tests.service_support import make_user

GRACE = timedelta(days=30)  # the default erasure_grace_days


async def stored_counts(runtime: Runtime) -> dict[str, int]:
    async with runtime.db.session(write=False) as session:
        rows = await session.execute(select(UserCount.role, UserCount.live))
        return {role: live for role, live in rows.all() if live}


async def live_users(runtime: Runtime) -> dict[str, int]:
    async with runtime.db.session(write=False) as session:
        rows = await session.execute(
            select(User.role, func.count()).where(User.deleted_at.is_(None)).group_by(User.role)
        )
        return {str(role): int(n) for role, n in rows.all()}


async def assert_counted(runtime: Runtime) -> dict[str, int]:
    actual = await live_users(runtime)
    assert await stored_counts(runtime) == actual
    return actual


# --- the counts follow the writes ------------------------------------------------------


async def test_every_way_in_and_out_is_counted(api: Api) -> None:
    runtime = api.runtime
    admin = await person(api, Role.admin)  # the service's create (as the CLI does)
    signed_up = [await person(api) for _ in range(3)]  # sign-ups over HTTP
    await person(api, Role.readonly)
    assert await assert_counted(runtime) == {"admin": 1, "user": 3, "readonly": 1}

    created = await api.client.post(
        "/api/v1/users",
        json={"email": "made@example.com", "name": "Made Here", "password": PASSWORD},
        headers=admin.account.headers,
    )
    assert created.status_code == 201, created.text
    made = uuid.UUID(created.json()["id"])
    assert await assert_counted(runtime) == {"admin": 1, "user": 4, "readonly": 1}

    # A role change moves a live user from one count to another.
    path = f"/api/v1/users/{made}"
    promoted = await api.client.patch(path, json={"role": "admin"}, headers=admin.account.headers)
    assert promoted.status_code == 200, promoted.text
    assert await assert_counted(runtime) == {"admin": 2, "user": 3, "readonly": 1}

    # Soft deletes: by an admin, and of oneself.
    deleted = await api.client.delete(
        f"/api/v1/users/{signed_up[0].id}", headers=admin.account.headers
    )
    assert deleted.status_code == 204
    gone = await api.client.delete("/api/v1/users/me", headers=signed_up[1].account.headers)
    assert gone.status_code == 204
    assert await assert_counted(runtime) == {"admin": 2, "user": 1, "readonly": 1}

    # A restore brings one back; restoring again is refused and counts nothing.
    restore = f"/api/v1/users/{signed_up[0].id}/restore"
    assert (await api.client.post(restore, headers=admin.account.headers)).status_code == 200
    assert (await api.client.post(restore, headers=admin.account.headers)).status_code != 200
    assert await assert_counted(runtime) == {"admin": 2, "user": 2, "readonly": 1}

    # The erasure after the grace period leaves the deleted user out of the counts.
    with time_machine.travel(utcnow() + GRACE + timedelta(minutes=1), tick=False):
        assert await purge_erased(runtime) == 1
    assert await assert_counted(runtime) == {"admin": 2, "user": 2, "readonly": 1}

    # The inactive-user purge: deleted and erased at once.
    long_ago = utcnow() - timedelta(days=4000)
    await set_times(runtime, signed_up[2].id, created_at=long_ago, last_login_at=long_ago)
    purged = await purge_inactive(runtime, 3650)
    assert purged.erased == 1
    assert await assert_counted(runtime) == {"admin": 2, "user": 1, "readonly": 1}

    # The seed: sample users through the ORM, bulk users through a Core insert.
    await seed(runtime, count=7)
    assert await assert_counted(runtime) == {"admin": 3, "user": 10, "readonly": 2}


async def test_orm_writes_outside_the_services_are_counted(runtime: Runtime) -> None:
    async with runtime.db.session() as session:
        session.add_all(
            [User(email=f"orm-{n}@example.com", name="Orm", password_hash="-") for n in range(3)]
        )
        session.add(
            User(
                email="born-deleted@example.com", name="Orm", password_hash="-", deleted_at=utcnow()
            )
        )
    assert await assert_counted(runtime) == {"user": 3}

    async with runtime.db.session() as session:
        users = list(await session.scalars(select(User).order_by(User.email)))
        users[0].deleted_at = None  # born deleted: live now
        users[1].role = Role.readonly.value
        users[2].deleted_at = utcnow()
        users[2].role = Role.admin.value  # deleted and promoted: counted nowhere
        users[3].name = "Renamed"  # no change of count
    assert await assert_counted(runtime) == {"user": 2, "readonly": 1}

    async with runtime.db.session() as session:
        user = await session.scalar(select(User).where(User.role == Role.readonly.value))
        assert user is not None
        await session.delete(user)
    assert await assert_counted(runtime) == {"user": 2}


async def test_a_rolled_back_write_counts_nothing(runtime: Runtime) -> None:
    await make_user(runtime)

    async def flushed_then_failed() -> None:
        async with runtime.db.session() as session:
            session.add(User(email="never@example.com", name="Never", password_hash="-"))
            await session.flush()
            raise RuntimeError("after the flush")

    with pytest.raises(RuntimeError):
        await flushed_then_failed()
    assert await assert_counted(runtime) == {"user": 1}


async def test_concurrent_creates_are_all_counted(runtime: Runtime) -> None:
    await asyncio.gather(*(make_user(runtime) for _ in range(12)))
    await asyncio.gather(
        *(make_user(runtime, role) for role in (Role.admin, Role.readonly) * 3),
        *(make_user(runtime) for _ in range(6)),
    )
    assert await assert_counted(runtime) == {"user": 18, "admin": 3, "readonly": 3}


# --- the recount -------------------------------------------------------------------------


async def test_the_recount_repairs_a_drift(runtime: Runtime) -> None:
    for role in (Role.admin, Role.user, Role.user, Role.readonly):
        await make_user(runtime, role)
    async with runtime.db.session() as session:
        # What a manual fix might do: counts the writes never saw.
        await session.execute(text("UPDATE user_counts SET live = 40 WHERE role = 'user'"))
        await session.execute(text("DELETE FROM user_counts WHERE role = 'admin'"))
        await session.execute(
            text(
                "INSERT INTO users (id, email, name, role, password_hash, created_at,"
                " updated_at, version, auth_version)"
                " VALUES (:id, 'manual@example.com', 'Manual', 'readonly', '-',"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1, 1)"
            ),
            {"id": uuid.uuid4().hex if runtime.settings.is_sqlite else uuid.uuid4()},
        )
    assert await stored_counts(runtime) == {"user": 40, "readonly": 1}

    drift = await user_tasks.recount(runtime)

    assert drift == {"admin": (0, 1), "readonly": (1, 2), "user": (40, 2)}
    assert await assert_counted(runtime) == {"admin": 1, "user": 2, "readonly": 2}
    assert await user_tasks.recount(runtime) == {}
    async with runtime.db.session(write=False) as session:
        assert await counts.live(session) == 5
        assert await counts.live(session, Role.readonly.value) == 2


async def test_a_count_below_zero_reads_as_zero(runtime: Runtime) -> None:
    async with runtime.db.session() as session:
        await counts.adjust(session, {Role.admin.value: -2})
    async with runtime.db.session(write=False) as session:
        assert await counts.live(session, Role.admin.value) == 0


# --- the pages are the old query's -------------------------------------------------------


async def old_page(session: AsyncSession, params: ListParams) -> tuple[list[uuid.UUID], int]:
    """The list as it was read before the counts and the deferred join (COUNT(*) and
    OFFSET over the whole table, on the same filters): the reference every page is
    compared with."""
    filters = list_filters(params)
    total = await session.scalar(select(func.count()).select_from(User).where(*filters))
    column = getattr(User, params.sort_by.value)
    direction = column.asc() if params.order is Order.asc else column.desc()
    tiebreak = User.id.asc() if params.order is Order.asc else User.id.desc()
    rows = await session.scalars(
        select(User.id)
        .where(*filters)
        .order_by(direction, tiebreak)
        .limit(params.page_size)
        .offset((params.page - 1) * params.page_size)
    )
    return list(rows.all()), int(total or 0)


async def _population(runtime: Runtime) -> None:
    """40 users with ties in every sort column (same instants, names, roles), some
    deleted, names with `%` and `_`, one erased-looking row."""
    now = utcnow().replace(microsecond=0)
    roles = [Role.user, Role.user, Role.admin, Role.readonly, Role.user]
    names = ["Ann Lee", "ann lee", "Bob_Smith", "Cara 100%", "Dan Annex", "Émile Zola"]
    async with runtime.db.session() as session:
        for n in range(40):
            session.add(
                User(
                    email=f"p{n % 7}-{n}@example.com",
                    name=names[n % len(names)],
                    role=roles[n % len(roles)].value,
                    password_hash="-",
                    created_at=now - timedelta(minutes=n % 5),
                    updated_at=now - timedelta(minutes=n % 3),
                    deleted_at=now if n % 6 == 0 else None,
                )
            )


FILTERS: list[dict[str, object]] = [
    {},
    {"role": Role.user},
    {"role": Role.admin},
    {"search": "ann"},
    {"search": "_"},
    {"search": "%"},
    {"search": "P3-"},
    {"search": "nobody"},
    {"include_deleted": True},
    {"include_deleted": True, "role": Role.readonly, "search": "a"},
]


async def test_every_sort_and_filter_pages_as_before(runtime: Runtime) -> None:
    await _population(runtime)
    size = 6
    async with runtime.db.session(write=False) as session:
        repo = UserRepository(session)
        for sort, order, filters in itertools.product(SortField, Order, FILTERS):
            base = ListParams.model_validate(
                {"sort_by": sort, "order": order, "page_size": size, **filters}
            )
            _, total = await old_page(session, base)
            last = max(1, -(-total // size))
            for page in sorted({1, (last + 1) // 2, last, last + 1}):
                params = base.model_copy(update={"page": page})
                rows, new_total = await repo.page(params)
                expected, old_total = await old_page(session, params)
                case = f"{sort}/{order}/{filters}/page {page}"
                assert [row.id for row in rows] == expected, case
                assert new_total == old_total, case


async def test_the_list_answers_the_same_meta(api: Api) -> None:
    await _population(api.runtime)
    admin = await api.user(Role.admin)
    for query in [{}, {"role": "admin"}, {"search": "ann"}, {"role": "user", "search": "ann"}]:
        async with api.runtime.db.session(write=False) as session:
            _, total = await old_page(session, ListParams.model_validate(query))
        response = await api.client.get(
            "/api/v1/users", params={"page": 2, "page_size": 4, **query}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        meta = response.json()["meta"]
        assert meta == {
            "page": 2,
            "page_size": 4,
            "total_count": total,
            "total_pages": -(-total // 4),
        }, query
