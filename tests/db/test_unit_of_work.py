"""One unit of work per request: committed once, before the answer; on any failure
(a failing commit, a domain error, a crash) nothing of the request is stored."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.auth.models import Session
from gatehouse.auth.repository import SessionRepository
from gatehouse.config import Environment
from gatehouse.errors import Conflict
from gatehouse.events.models import OutboxEvent
from gatehouse.kit.jobs import NoJobQueueError
from gatehouse.runtime import Runtime
from gatehouse.users.models import User
from gatehouse.users.schemas import UserCreate
from gatehouse.users.service import UserService
from tests.factories import PASSWORD, Api, assert_envelope
from tests.logs import capture_json_logs

USERS = "/api/v1/users"


@dataclass
class Commits:
    calls: int = 0
    fail_with: BaseException | None = None


@contextmanager
def commits(
    monkeypatch: pytest.MonkeyPatch, fail_with: BaseException | None = None
) -> Iterator[Commits]:
    """Count AsyncSession commits; with `fail_with`, the first one raises it instead."""
    real = AsyncSession.commit
    seen = Commits(fail_with=fail_with)

    async def commit(self: AsyncSession) -> None:
        seen.calls += 1
        if seen.fail_with is not None:
            exc, seen.fail_with = seen.fail_with, None
            raise exc
        await real(self)

    with monkeypatch.context() as patch:
        patch.setattr(AsyncSession, "commit", commit)
        yield seen


def db_down() -> OperationalError:
    return OperationalError("COMMIT", {}, Exception("server closed the connection"))


async def count(api: Api, model: Any, *where: Any) -> int:
    async with api.runtime.db.session(write=False) as session:
        counted = await session.scalar(select(func.count()).select_from(model).where(*where))
        return int(counted or 0)


def new_user() -> dict[str, str]:
    return {"email": f"new-{uuid.uuid4().hex[:8]}@example.com", "name": "New", "password": PASSWORD}


# --- a failing commit -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [(db_down(), 503, "SERVICE_UNAVAILABLE"), (RuntimeError("disk full"), 500, "INTERNAL_ERROR")],
    ids=["database gone", "anything else"],
)
async def test_a_failing_commit_answers_5xx_and_stores_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch, failure: BaseException, status: int, code: str
) -> None:
    admin = await api.user("admin")
    body = new_user()
    with commits(monkeypatch, fail_with=failure) as seen:
        response = await api.client.post(USERS, json=body, headers=admin.headers)
    assert seen.calls == 1
    error = assert_envelope(response, status, code)
    assert "disk full" not in response.text
    assert "server closed" not in response.text
    assert error["request_id"]
    assert await count(api, User, User.email == body["email"]) == 0
    # Nothing half-stored: the same request succeeds afterwards.
    again = await api.client.post(USERS, json=body, headers=admin.headers)
    assert again.status_code == 201, again.text


async def test_a_login_whose_commit_fails_issues_no_session(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await api.create_user("user")
    with commits(monkeypatch, fail_with=db_down()):
        response = await api.client.post(
            "/api/v1/auth/token", json={"username": account.email, "password": account.password}
        )
    assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
    assert "access_token" not in response.text
    assert await count(api, Session, Session.user_id == account.id) == 0


async def test_a_refresh_whose_commit_fails_keeps_the_old_token_usable(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await api.user("user")
    with commits(monkeypatch, fail_with=db_down()):
        failed = await api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
        )
    assert_envelope(failed, 503, "SERVICE_UNAVAILABLE")
    # The rotation was never stored, so the client's retry with the same token works.
    retried = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert retried.status_code == 200, retried.text


# --- a failure after a write -----------------------------------------------------------------


async def test_a_domain_error_after_a_write_undoes_the_whole_request(api: Api) -> None:
    admin = await api.user("admin")
    taken = await api.create_user("user")
    target = await api.create_user("user", name="Before Name")
    response = await api.client.patch(
        f"{USERS}/{target.id}",
        json={"name": "After Name", "email": taken.email},
        headers=admin.headers,
    )
    assert assert_envelope(response, 400, "VALIDATION_ERROR")["details"] == {
        "email": ["Email already exists"]
    }
    now = await api.client.get(f"{USERS}/{target.id}", headers=admin.headers)
    assert now.json()["name"] == "Before Name"
    assert now.json()["email"] == target.email
    assert now.headers["etag"] == '"1"'


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [(Conflict("injected"), 409, "CONFLICT"), (ZeroDivisionError(), 500, "INTERNAL_ERROR")],
    ids=["domain error", "crash"],
)
async def test_a_fault_after_the_first_write_leaves_nothing_half_done(
    api: Api, monkeypatch: pytest.MonkeyPatch, fault: Exception, status: int, code: str
) -> None:
    """Soft delete writes `deleted_at`, then ends the sessions; the second step fails."""
    admin = await api.user("admin")
    victim = await api.user("user")

    async def broken(*_: Any, **__: Any) -> int:
        raise fault

    with monkeypatch.context() as patch:
        patch.setattr(SessionRepository, "revoke_all", broken)
        with commits(monkeypatch) as seen:
            response = await api.client.delete(f"{USERS}/{victim.id}", headers=admin.headers)
    assert_envelope(response, status, code)
    assert seen.calls == 0
    assert await count(api, User, User.id == victim.id, User.deleted_at.is_(None)) == 1
    # The victim's own token still works: the auth_version bump was undone too.
    me = await api.client.get(f"{USERS}/me", headers=victim.headers)
    assert me.status_code == 200, me.text


# --- once per request -------------------------------------------------------------------------


async def test_each_successful_request_commits_exactly_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await api.user("admin")
    user = await api.user("user")
    created = await api.client.post(USERS, json=new_user(), headers=admin.headers)
    new_id = created.json()["id"]
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"{USERS}/me", {"headers": user.headers}),
        ("GET", USERS, {"headers": admin.headers}),
        ("POST", USERS, {"json": new_user(), "headers": admin.headers}),
        ("PATCH", f"{USERS}/{new_id}", {"json": {"name": "Renamed"}, "headers": admin.headers}),
        ("PATCH", f"{USERS}/me", {"json": {"name": "Me Renamed"}, "headers": user.headers}),
        ("POST", "/api/v1/auth/token", {"json": {"username": user.email, "password": PASSWORD}}),
        ("POST", "/api/v1/auth/refresh", {"json": {"refresh_token": user.refresh_token}}),
        ("DELETE", f"{USERS}/{new_id}", {"headers": admin.headers}),
    ]
    for method, path, kwargs in requests:
        with commits(monkeypatch) as seen:
            response = await api.client.request(method, path, **kwargs)
        assert response.status_code < 300, (method, path, response.text)
        # An admin's read is audited; a SQLite read transaction cannot turn writer
        # safely, so there its audit row gets a unit of work of its own.
        expected = 2 if (method, path) == ("GET", USERS) and api.runtime.db.is_sqlite else 1
        assert seen.calls == expected, (method, path, seen.calls)


async def test_a_refused_request_commits_nothing_but_its_audit_row(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await api.user("admin")
    user = await api.user("user")
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", USERS, {"json": new_user(), "headers": user.headers}),  # 403
        ("POST", USERS, {"json": {"email": "x"}, "headers": admin.headers}),  # 400
        ("DELETE", f"{USERS}/{uuid.uuid4()}", {"headers": admin.headers}),  # 404
        (
            "PATCH",
            f"{USERS}/{user.id}",
            {"json": {"name": "X"}, "headers": {**admin.headers, "If-Match": '"9"'}},
        ),  # 409
        ("GET", f"{USERS}/me", {}),  # 401
    ]
    for method, path, kwargs in requests:
        users_before = await count(api, User)
        with commits(monkeypatch) as seen:
            response = await api.client.request(method, path, **kwargs)
        assert response.status_code >= 400, (method, path)
        # A refusal (403) is audited in a transaction of its own; nothing else commits.
        assert seen.calls == (1 if response.status_code == 403 else 0), (method, path)
        assert await count(api, User) == users_before


# --- jobs asked for with no queue ------------------------------------------------------------


async def test_a_job_asked_for_without_a_queue_fails_in_tests_and_stores_nothing(
    api: Api,
) -> None:
    """A process given no job queue must not lose the kick silently: in tests it fails."""
    runtime = Runtime.create(api.runtime.settings)
    try:
        assert runtime.jobs is None
        data = UserCreate(email="nobody-queued@example.com", name="No Queue", password=PASSWORD)
        with pytest.raises(NoJobQueueError, match=r"events\.relay"):
            async with runtime.unit_of_work() as uow:
                await UserService(uow, runtime.settings.auth, runtime.hasher).create(data)
        assert await count(api, User, User.email == "nobody-queued@example.com") == 0
    finally:
        await runtime.close()


async def test_outside_tests_a_job_without_a_queue_is_logged_and_left_for_the_sweep(
    api: Api,
) -> None:
    settings = api.runtime.settings
    development = settings.model_copy(
        update={"server": settings.server.model_copy(update={"env": Environment.development})}
    )
    runtime = Runtime.create(development)
    data = UserCreate(email="left-for-sweep@example.com", name="Left Over", password=PASSWORD)
    try:
        with capture_json_logs("WARNING") as logs:
            async with runtime.unit_of_work() as uow:
                await UserService(uow, runtime.settings.auth, runtime.hasher).create(data)
        warned = [r for r in logs.records() if r["event"] == "jobs.no_queue"]
        assert [r["job"] for r in warned] == ["events.relay", "events.dispatch"]
        assert await count(api, User, User.email == "left-for-sweep@example.com") == 1
        # The rows are the truth: the event waits for the next sweep, nothing is lost.
        assert await count(api, OutboxEvent, OutboxEvent.event_type == "user.created") >= 1
    finally:
        await runtime.close()
