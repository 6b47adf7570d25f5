"""GDPR-03, GDPR-04, GDPR-05: delete → grace period → erasure, with time travel.

After the purge the subject's email and names are in no text or JSON column of any
table, the audit rows about them are kept with their personal data nulled, the chain
still verifies, and a second purge changes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import time_machine
from sqlalchemy import update

from gatehouse.audit import trail
from gatehouse.audit.service import verify_chain
from gatehouse.kit.time import utcnow
from gatehouse.privacy.service import purge_erased
from gatehouse.privacy.tasks import cleanup
from gatehouse.users.models import Role
from gatehouse.webhooks.models import WebhookDelivery
from tests.factories import Api, assert_envelope
from tests.privacy.support import (
    audit,
    audit_count,
    audit_rows,
    deliveries_of,
    files_holding,
    outbox_of,
    outbox_types,
    person,
    populate,
    scan,
    string_columns_scanned,
    user_row,
    write_mail_files,
)
from tests.service_support import seal

GRACE = timedelta(days=30)  # the default erasure_grace_days


async def test_delete_then_erase_after_the_grace_period(api: Api, backend: str) -> None:
    runtime = api.runtime
    world = await populate(api)
    subject, other = world.subject, world.other
    needles = [subject.email, *world.names]
    # One delivery owed to the webhook is done (it goes), the other still pending (it
    # stays, rewritten).
    pending = await deliveries_of(runtime, subject.id)
    assert len(pending) == 1
    async with runtime.db.session() as session:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == pending[0].id)
            .values(status="succeeded")
        )
    async with runtime.db.session() as session:
        row = pending[0]
        session.add(
            WebhookDelivery(
                subscription_id=row.subscription_id,
                event_id=(await outbox_of(runtime, subject.id))[1].event_id,
                event_type="user.updated",
                payload=(await outbox_of(runtime, subject.id))[1].payload,
            )
        )

    mail_dir = await write_mail_files(runtime)
    assert files_holding(mail_dir, [subject.email])

    # DELETE /users/me: soft delete, logged out everywhere, user.deleted.
    response = await api.client.delete("/api/v1/users/me", headers=subject.account.headers)
    assert response.status_code == 204
    login = await api.client.post(
        "/api/v1/auth/token",
        json={"username": subject.email, "password": subject.account.password},
    )
    assert_envelope(login, 401, "INVALID_CREDENTIALS")
    refresh = await api.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": subject.account.refresh_token}
    )
    assert refresh.status_code in (400, 401), refresh.text
    assert await outbox_types(runtime, subject.id) == [
        "user.created",
        "user.updated",
        "user.deleted",
    ]
    deleted_at = (await user_row(runtime, subject.id)).deleted_at
    assert deleted_at is not None

    # Up to and at the end of the grace period: nothing erased.
    with time_machine.travel(deleted_at + GRACE, tick=False):
        assert await purge_erased(runtime) == 0
    assert (await user_row(runtime, subject.id)).email == subject.email
    assert await scan(runtime, [subject.email])

    about_subject = len(await audit_rows(runtime, target_id=str(subject.id)))
    rows_before = await audit_count(runtime)
    with time_machine.travel(deleted_at + GRACE + timedelta(seconds=1), tick=False):
        assert await purge_erased(runtime) == 1

    erased = await user_row(runtime, subject.id)
    assert erased.email == f"erased-{subject.id}@erased.invalid"
    assert erased.name == "Erased user"
    assert erased.last_login_at is None
    assert erased.email_verified_at is None
    assert erased.deleted_at == deleted_at
    types = await outbox_types(runtime, subject.id)
    # Dispatched rows went; the undispatched ones stay, rewritten; then user.erased.
    assert types == ["user.updated", "user.deleted", "user.erased"]
    events = await outbox_of(runtime, subject.id)
    assert events[0].payload["data"]["changes"]["name"] == "Erased user"
    assert events[-1].payload["data"] == {"user_id": str(subject.id), "version": erased.version}
    [kept] = await deliveries_of(runtime, subject.id)
    assert kept.status == "pending"
    assert kept.payload["data"]["changes"]["name"] == "Erased user"

    # Nowhere in the database, in any text or JSON column of any table.
    assert string_columns_scanned() > 40
    assert await scan(runtime, needles) == []
    assert files_holding(mail_dir, needles) == []
    # The other user's data is untouched.
    assert len(await scan(runtime, [other.email, other.name])) >= 3
    assert files_holding(mail_dir, [other.email])

    # The audit trail: every row kept plus one, pseudonymised, and it still verifies.
    assert await audit_count(runtime) == rows_before + 1
    about = await audit_rows(runtime, target_id=str(subject.id))
    assert len(about) == about_subject + 1
    assert all(row.pii is None for row in about)
    assert all(row.pii is None for row in await audit_rows(runtime, actor_id=subject.id))
    [erase] = await audit_rows(runtime, action="user.erase")
    assert (erase.actor_id, erase.actor_role, erase.target_id) == (
        None,
        "system",
        str(subject.id),
    )
    assert erase.details == {"grace_days": 30}
    [others] = await audit_rows(runtime, actor_id=other.id, action="test.self_action")
    assert (others.pii or {}).get("email") == other.email
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem

    # Login impossible, invisible, not exportable, not restorable.
    login = await api.client.post(
        "/api/v1/auth/token",
        json={"username": subject.email, "password": subject.account.password},
    )
    assert_envelope(login, 401, "INVALID_CREDENTIALS")
    admin = world.admin.account.headers
    path = f"/api/v1/users/{subject.id}"
    assert_envelope(await api.client.get(path, headers=admin), 404, "USER_NOT_FOUND")
    assert_envelope(await api.client.get(f"{path}/export", headers=admin), 404, "USER_NOT_FOUND")
    assert_envelope(await api.client.post(f"{path}/restore", headers=admin), 409, "USER_ERASED")

    # Idempotent: a second purge erases nothing and emits nothing.
    rows_after = await audit_count(runtime)
    with time_machine.travel(deleted_at + GRACE * 3, tick=False):
        assert await purge_erased(runtime) == 0
    assert await outbox_types(runtime, subject.id) == types
    assert await audit_count(runtime) == rows_after
    assert (await verify_chain(runtime.db, runtime.audit_key)).ok


async def test_restore_inside_the_window(api: Api, backend: str) -> None:
    runtime = api.runtime
    subject = await person(api)
    admin = await person(api, Role.admin)
    path = f"/api/v1/users/{subject.id}"
    assert (await api.client.delete(path, headers=admin.account.headers)).status_code == 204
    deleted = await user_row(runtime, subject.id)
    assert deleted.deleted_at is not None

    # The last moment of the grace period: still restorable.
    with time_machine.travel(deleted.deleted_at + GRACE, tick=False):
        await api.login(admin.account)  # a month on: the old access token has expired
        response = await api.client.post(f"{path}/restore", headers=admin.account.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(subject.id)
    assert body["email"] == subject.email
    assert body["deleted_at"] is None
    restored = await user_row(runtime, subject.id)
    assert restored.deleted_at is None
    assert restored.version == deleted.version + 1
    assert response.headers["etag"] == f'"{restored.version}"'
    events = await outbox_of(runtime, subject.id)
    assert [e.event_type for e in events][-2:] == ["user.deleted", "user.restored"]
    assert events[-1].payload["data"] == {"user_id": str(subject.id), "version": restored.version}
    [row] = await audit_rows(runtime, action="user.restore")
    assert (row.actor_id, row.target_id, row.outcome) == (admin.id, str(subject.id), "success")
    # The account works again (a new login: the old sessions stay ended).
    await api.login(subject.account)
    assert (await api.client.get("/api/v1/users/me", headers=subject.account.headers)).is_success
    # A restored account is not erased by a later purge.
    with time_machine.travel(deleted.deleted_at + GRACE * 2, tick=False):
        assert await purge_erased(runtime) == 0
    await api.login(admin.account)  # back to the present: a token from the future is refused
    again = await api.client.post(f"{path}/restore", headers=admin.account.headers)
    assert_envelope(again, 409, "USER_NOT_DELETED")


async def test_restore_refused_after_the_window_or_when_the_email_was_taken(
    api: Api, backend: str
) -> None:
    runtime = api.runtime
    admin = await person(api, Role.admin)
    late = await person(api)
    taken = await person(api)
    for someone in (late, taken):
        response = await api.client.delete(
            f"/api/v1/users/{someone.id}", headers=admin.account.headers
        )
        assert response.status_code == 204
    # Someone signs up with the freed address meanwhile.
    await api.create_user(email=taken.email)
    deleted_at = (await user_row(runtime, late.id)).deleted_at
    assert deleted_at is not None

    with time_machine.travel(deleted_at + GRACE + timedelta(seconds=1), tick=False):
        await api.login(admin.account)
        closed = await api.client.post(
            f"/api/v1/users/{late.id}/restore", headers=admin.account.headers
        )
    assert_envelope(closed, 409, "RESTORE_WINDOW_CLOSED")
    await api.login(admin.account)
    clash = await api.client.post(
        f"/api/v1/users/{taken.id}/restore", headers=admin.account.headers
    )
    # The one answer to a taken email, whichever write meets it.
    error = assert_envelope(clash, 400, "VALIDATION_ERROR")
    assert error["details"] == {"email": ["Email already exists"]}
    user = await person(api)
    denied = await api.client.post(
        f"/api/v1/users/{taken.id}/restore", headers=user.account.headers
    )
    assert_envelope(denied, 403, "FORBIDDEN")
    missing = await api.client.post(
        f"/api/v1/users/{uuid.uuid4()}/restore",
        headers=admin.account.headers,
    )
    assert_envelope(missing, 404, "USER_NOT_FOUND")
    assert (await user_row(runtime, taken.id)).deleted_at is not None
    refusals = await audit_rows(runtime, action="user.restore", actor_id=admin.id)
    assert [(r.outcome, r.reason, r.details) for r in refusals] == [
        ("failure", "RESTORE_WINDOW_CLOSED", {}),
        ("failure", "VALIDATION_ERROR", {"fields": ["email"]}),
        ("failure", "USER_NOT_FOUND", {}),
    ]


async def test_two_purges_at_once_erase_each_user_once(api: Api, backend: str) -> None:
    runtime = api.runtime
    admin = await person(api, Role.admin)
    people = [await person(api, login=False) for _ in range(4)]
    for someone in people:
        response = await api.client.delete(
            f"/api/v1/users/{someone.id}", headers=admin.account.headers
        )
        assert response.status_code == 204
    later = (await user_row(runtime, people[-1].id)).deleted_at
    assert later is not None

    with time_machine.travel(later + GRACE + timedelta(seconds=1), tick=False):
        # Out of time before the first: nothing started, all left for the next run.
        assert await purge_erased(runtime, budget_seconds=-1) == 0
        counts = await asyncio.gather(purge_erased(runtime), purge_erased(runtime))

    assert sum(counts) == len(people)
    for someone in people:
        assert (await outbox_types(runtime, someone.id)).count("user.erased") == 1
    assert len(await audit_rows(runtime, action="user.erase")) == len(people)
    assert (await verify_chain(runtime.db, runtime.audit_key)).ok


async def test_the_scheduled_cleanup_erases_and_applies_the_audit_retention(
    api: Api, backend: str
) -> None:
    runtime = api.runtime
    # All of it 400 days ago, the cleanup now: PostgreSQL's trigger judges a row's age
    # by the database's clock, which time travel does not move.
    with time_machine.travel(utcnow() - timedelta(days=400), tick=False):
        admin = await person(api, Role.admin)
        subject = await person(api)
        response = await api.client.delete(
            f"/api/v1/users/{subject.id}", headers=admin.account.headers
        )
        assert response.status_code == 204
        await audit(runtime, trail.Entry(action="test.old", target_id=str(subject.id)))
        # As the sweep did then, seconds later: only sealed rows can expire.
        await seal(runtime)
    deleted_at = (await user_row(runtime, subject.id)).deleted_at
    assert deleted_at is not None
    before = await audit_count(runtime)

    # A year and more later: the account is erased, the year-old audit rows expire.
    await cleanup(runtime)

    assert (await user_row(runtime, subject.id)).email.endswith("@erased.invalid")
    remaining = [r.action for r in await audit_rows(runtime)]
    assert remaining == ["user.erase", "audit.retention_purge"]
    [purge] = await audit_rows(runtime, action="audit.retention_purge")
    assert purge.details["removed"] == before
    assert (await verify_chain(runtime.db, runtime.audit_key)).ok
