"""GDPR-01, GDPR-02: the export holds every inventoried field and nothing about anyone
else; only the user themself and admins may have it, and every export is audited."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from gatehouse.users.models import Role
from tests.factories import Api, assert_envelope
from tests.privacy.support import (
    ADMIN_AGENT,
    ADMIN_IP,
    STRANGER_IP,
    SUBJECT_IP,
    audit_rows,
    person,
    populate,
)

ME_EXPORT = "/api/v1/users/me/export"

PROFILE = {
    "id",
    "email",
    "name",
    "role",
    "created_at",
    "updated_at",
    "last_login_at",
    "email_verified_at",
    "deleted_at",
}
SESSION = {
    "id",
    "created_at",
    "last_used_at",
    "expires_at",
    "absolute_expires_at",
    "revoked_at",
    "revoked_reason",
    "ip",
    "user_agent",
}
EMAIL = {"kind", "to_address", "subject", "status", "created_at", "sent_at"}
ACTION_TOKEN = {"purpose", "email", "created_at", "expires_at", "used_at"}
AUDIT = {
    "id",
    "occurred_at",
    "action",
    "outcome",
    "reason",
    "actor",
    "actor_role",
    "target_type",
    "target_id",
    "request_id",
    "details",
    "pii",
}
EVENT = {"event_type", "event_id", "timestamp"}


def by_action(document: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [row for row in document["audit_events"] if row["action"] == action]


async def test_export_holds_every_inventoried_field_and_nothing_about_others(
    api: Api, backend: str
) -> None:
    world = await populate(api)
    subject, other, admin = world.subject, world.other, world.admin
    # A session the subject ended: ended sessions are exported too.
    response = await api.client.post("/api/v1/auth/logout", headers=subject.account.headers)
    assert response.status_code == 204
    await api.login(subject.account)

    response = await api.client.get(ME_EXPORT, headers=subject.account.headers)

    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert re.fullmatch(
        rf'attachment; filename="gatehouse-export-{subject.id}-\d{{8}}T\d{{6}}Z\.json"',
        disposition,
    ), disposition
    assert response.headers["cache-control"] == "no-store"
    document = response.json()
    assert set(document) == {
        "format",
        "exported_at",
        "user",
        "sessions",
        "emails",
        "action_tokens",
        "factors",
        "applications",
        "audit_events",
        "events",
    }
    assert document["format"] == "gatehouse.user-export/1"

    profile = document["user"]
    assert set(profile) == PROFILE
    assert profile["id"] == str(subject.id)
    assert profile["email"] == subject.email
    assert profile["name"] == subject.name
    assert profile["role"] == "user"
    assert profile["last_login_at"] is not None
    assert profile["deleted_at"] is None

    sessions = document["sessions"]
    assert len(sessions) == 3  # two logins kept, one ended
    assert all(set(s) == SESSION for s in sessions)
    ended = [s for s in sessions if s["revoked_at"] is not None]
    assert len(ended) == 1
    assert ended[0]["revoked_reason"]
    assert {s["ip"] for s in sessions} == {"127.0.0.1"}
    assert {"Browser-user/1.0", "Second-Browser/2.0"} <= {s["user_agent"] for s in sessions}

    emails = document["emails"]
    assert emails, "the welcome mail owed to the subject"
    assert all(set(e) == EMAIL for e in emails)
    assert {e["kind"] for e in emails} >= {"welcome"}
    assert {e["to_address"] for e in emails} == {subject.email}

    tokens = document["action_tokens"]
    assert [set(t) for t in tokens] == [ACTION_TOKEN]
    assert tokens[0]["email"] == subject.email

    assert document["factors"] == []  # no second factor (tests/mfa export them)
    assert document["applications"] == []  # no OpenID client (tests/oidc export them)

    events = document["events"]
    assert all(set(e) == EVENT for e in events)
    assert [e["event_type"] for e in events] == ["user.created", "user.updated"]

    audit = document["audit_events"]
    assert all(set(row) == AUDIT for row in audit)
    assert all("salt" not in (row["pii"] or {}) for row in audit)
    [own] = by_action(document, "test.self_action")
    assert own["actor"] == "self"
    assert own["pii"] == {
        "ip": SUBJECT_IP,
        "user_agent": "SubjectAgent/1.0",
        "email": subject.email,
    }
    [renamed] = by_action(document, "test.admin_rename")
    # The admin acted: their role shows, not who they are or where they were.
    assert renamed["actor"] == "other"
    assert renamed["actor_role"] == "admin"
    assert renamed["pii"] == {"name": subject.name}
    assert renamed["details"] == {"fields": ["name"]}
    [attempt] = by_action(document, "test.login_failed")
    assert attempt["actor"] == "none"
    # Whoever typed the address is not the subject: their client is not exported.
    assert attempt["pii"] == {"identifier": subject.email}
    assert not by_action(document, "test.login_unknown")  # about no account

    # Nothing about anyone else, wherever it might hide.
    text = response.text.lower()
    for leak in (
        other.email,
        other.name,
        str(other.id),
        admin.email,
        admin.name,
        str(admin.id),
        ADMIN_IP,
        ADMIN_AGENT,
        STRANGER_IP,
        "password_hash",
        "token_hash",
        '"body"',
        '"salt"',
    ):
        assert leak.lower() not in text, leak


async def test_every_export_is_audited(api: Api, backend: str) -> None:
    subject = await person(api)
    admin = await person(api, Role.admin)

    assert (await api.client.get(ME_EXPORT, headers=subject.account.headers)).status_code == 200
    response = await api.client.get(
        f"/api/v1/users/{subject.id}/export", headers=admin.account.headers
    )
    assert response.status_code == 200

    rows = await audit_rows(api.runtime, action="user.export")
    assert [(r.actor_id, r.actor_role, r.outcome) for r in rows] == [
        (subject.id, "user", "success"),
        (admin.id, "admin", "success"),
    ]
    assert {(r.target_type, r.target_id) for r in rows} == {("user", str(subject.id))}
    assert rows[1].request_id == response.headers["x-request-id"]
    assert rows[1].details["sessions"] == 1
    # An export that the next export shows.
    again = await api.client.get(ME_EXPORT, headers=subject.account.headers)
    assert [r["action"] for r in again.json()["audit_events"]].count("user.export") == 2


@pytest.mark.parametrize(
    ("caller", "status", "code"),
    [
        ("self", 200, None),
        ("admin", 200, None),
        ("readonly", 403, "FORBIDDEN"),
        ("other", 404, "USER_NOT_FOUND"),
        ("anonymous", 401, "UNAUTHORIZED"),
    ],
)
async def test_who_may_export_a_user(
    api: Api, backend: str, caller: str, status: int, code: str | None
) -> None:
    subject = await person(api)
    callers = {
        "self": subject.account.headers,
        "admin": (await person(api, Role.admin)).account.headers,
        "readonly": (await person(api, Role.readonly)).account.headers,
        "other": (await person(api)).account.headers,
        "anonymous": {},
    }

    response = await api.client.get(f"/api/v1/users/{subject.id}/export", headers=callers[caller])

    if status == 200:
        assert response.status_code == 200, response.text
        assert response.json()["user"]["email"] == subject.email
        return
    assert_envelope(response, status, code)
    assert subject.email not in response.text
    if caller != "anonymous":
        [refused] = await audit_rows(api.runtime, action="user.export")
        assert (refused.outcome, refused.target_id) == ("denied", str(subject.id))


async def test_admin_exports_a_deleted_user_until_erased(api: Api, backend: str) -> None:
    subject = await person(api)
    admin = await person(api, Role.admin)
    assert (
        await api.client.delete("/api/v1/users/me", headers=subject.account.headers)
    ).status_code == 204

    response = await api.client.get(
        f"/api/v1/users/{subject.id}/export", headers=admin.account.headers
    )

    assert response.status_code == 200, response.text
    document = response.json()
    assert document["user"]["deleted_at"] is not None
    assert document["sessions"][0]["revoked_reason"] == "user_deleted"
    assert [e["event_type"] for e in document["events"]] == ["user.created", "user.deleted"]
    # The deleted account's own token no longer works.
    assert (await api.client.get(ME_EXPORT, headers=subject.account.headers)).status_code == 401
    json.loads(response.text)  # one JSON document
