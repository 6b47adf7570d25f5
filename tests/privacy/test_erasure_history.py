"""Erasure covers every address the user ever had, wherever the trail recorded it.

A user with a history: signed up with one address, later changed it; strangers typed
the old address at login and password reset, someone tried to sign up again with their
address and name, an admin searched for them by full address (in the users list and in
the audit trail). After the purge none of their addresses nor their name is in any text
or JSON column of any table, and the chain still verifies.
"""

from __future__ import annotations

from datetime import timedelta

import time_machine

from gatehouse.audit.chain import term_digest
from gatehouse.audit.service import verify_chain
from gatehouse.privacy.service import purge_erased
from gatehouse.users.models import Role
from tests.factories import PASSWORD, Api
from tests.privacy.support import audit_rows, person, scan, unique, user_row

GRACE = timedelta(days=30)
STRANGER = {"User-Agent": "Stranger/6.6"}


async def test_erasure_finds_every_address_the_user_ever_had(api: Api, backend: str) -> None:
    runtime, client = api.runtime, api.client
    subject = await person(api)
    other = await person(api)
    admin = await person(api, Role.admin)
    old_email, name = subject.email, subject.name
    new_email = f"{unique('moved')}@example.org"
    staff = admin.account.headers

    async def stranger_attempts(address: str) -> None:
        """What anonymous clients type with an address: a login, a reset, a mail."""
        login = await client.post(
            "/api/v1/auth/token", json={"username": address, "password": "wrong"}, headers=STRANGER
        )
        assert login.status_code == 401, login.text
        for path in ("/api/v1/auth/password-reset/request", "/api/v1/auth/verify-email/request"):
            response = await client.post(path, json={"email": address}, headers=STRANGER)
            assert response.status_code == 202, response.text

    # While the old address is the account's: the attempts are linked to the account.
    await stranger_attempts(old_email)
    # Someone tries to sign up with the subject's address and name: refused (answered like
    # a new address, so the address's owner is not revealed), recorded.
    again = await client.post(
        "/api/v1/auth/register",
        json={"email": old_email, "name": name, "password": PASSWORD},
        headers=STRANGER,
    )
    assert again.status_code == 202, again.text
    # The address changes (an admin does it).
    changed = await client.patch(
        f"/api/v1/users/{subject.id}", json={"email": new_email}, headers=staff
    )
    assert changed.status_code == 200, changed.text
    # The old address is nobody's now: the attempts are linked to no account.
    await stranger_attempts(old_email)
    # An admin looks for the subject by full address, in the users list and the trail.
    for term in (old_email, new_email, name):
        found = await client.get("/api/v1/users", params={"search": term}, headers=staff)
        assert found.status_code == 200, found.text
    read = await client.get("/api/v1/audit-events", params={"target_id": old_email}, headers=staff)
    assert read.status_code == 200, read.text

    # A search is kept as a keyed digest of the normalised term, never the term.
    searches = [
        row.details["filters"]["search"] for row in await audit_rows(runtime, action="user.list")
    ]
    assert searches[0] == term_digest(runtime.audit_key, f" {old_email.upper()} ")
    assert [sorted(s) for s in searches] == [["digest", "length"]] * 3

    needles = [old_email, new_email, name]
    assert len(await scan(runtime, needles)) > 5

    deleted = await client.delete(f"/api/v1/users/{subject.id}", headers=staff)
    assert deleted.status_code == 204, deleted.text
    deleted_at = (await user_row(runtime, subject.id)).deleted_at
    assert deleted_at is not None
    with time_machine.travel(deleted_at + GRACE + timedelta(seconds=1), tick=False):
        assert await purge_erased(runtime) == 1

    left = await scan(runtime, needles)
    print(f"\nFIGURE {backend}: {len(left)} of the user's values left after erasure: {left}")
    assert left == []
    verdict = await verify_chain(runtime.db, runtime.audit_key)
    assert verdict.ok, verdict.problem
    # The other user's data and the admin's rows are untouched.
    assert await scan(runtime, [other.email, other.name])
    assert any(row.pii for row in await audit_rows(runtime, actor_id=admin.id))
