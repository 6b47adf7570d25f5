"""AUD-01: every authentication attempt writes exactly one `auth.*` audit row.

K attempts of every kind, interleaved: logins that succeed, fail on the password, name
nobody or a deleted account, or hit a locked account; refreshes that succeed, replay a
spent token or use an ended family; logouts of one session and of all. Each response
must have exactly its one row (all fields checked), and the table must hold exactly K
`auth.*` rows: "K attempts → K rows, 0 missing, 0 extra". The failure that arms the
lock also writes the lock's own `auth.lock` row: a change of state, not an attempt,
checked on that response and counted apart.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from gatehouse.auth.principal import Principal
from gatehouse.users.models import Role
from gatehouse.users.service import UserService
from tests.audit.coverage_support import (
    LOCK_ROW,
    LOCKOUT_THRESHOLD,
    LOGOUT,
    REFRESH,
    SETTINGS,
    TOKEN,
    WRONG_PASSWORD,
    Row,
    Scenario,
    audit_rows,
    on_user,
    rows_of,
)
from tests.factories import Account, Api

K = 40
CYCLE = 10


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return SETTINGS


async def deleted_account(scenario: Scenario) -> Account:
    """An account soft-deleted by the service (no request, so no row of this test's)."""
    account = await scenario.user()
    runtime = scenario.runtime
    async with runtime.unit_of_work() as uow:
        admin = Principal(uuid.uuid4(), Role.admin, uuid.uuid4(), 1)
        await UserService(uow, runtime.settings.auth, runtime.hasher).delete(
            admin, account.id, None
        )
    return account


async def test_k_attempts_give_k_rows(api: Api) -> None:
    s = Scenario(api)
    owner, target = await s.user(), await s.user()
    gone = await deleted_account(s)
    failures = 0  # the target's counted failures; at the threshold the pair locks

    async def login(account: Account) -> Account:
        response = await s.send(
            "POST",
            TOKEN,
            on_user("auth.login", account, actor=account, pii={"identifier": account.email}),
            status=200,
            json={"username": account.email, "password": account.password},
        )
        body = response.json()
        account.access_token, account.refresh_token = body["access_token"], body["refresh_token"]
        return account

    async def wrong_password() -> None:
        nonlocal failures
        reason = "locked" if failures >= LOCKOUT_THRESHOLD else "invalid_password"
        failures += reason == "invalid_password"
        rows = [
            on_user(
                "auth.login", target, "failure", reason=reason, pii={"identifier": target.email}
            )
        ]
        if reason == "invalid_password" and failures == LOCKOUT_THRESHOLD:
            rows.append(LOCK_ROW(target))
        await s.send(
            "POST",
            TOKEN,
            *rows,
            status=401,
            json={"username": target.email, "password": WRONG_PASSWORD},
        )

    async def unknown(cycle: int) -> None:
        email = gone.email if cycle % 2 else f"nobody-{uuid.uuid4().hex[:8]}@example.com"
        await s.send(
            "POST",
            TOKEN,
            Row("auth.login", "failure", "unknown_user", pii={"identifier": email}),
            status=401,
            json={"username": email, "password": gone.password},
        )

    async def refresh(token: str, *rows: Row, status: int) -> str:
        response = await s.send(
            "POST", REFRESH, *rows, status=status, json={"refresh_token": token}
        )
        return str(response.json().get("refresh_token", ""))

    for cycle in range(K // CYCLE):
        first = (await login(owner)).refresh_token
        await wrong_password()
        await refresh(first, on_user("auth.refresh", owner, actor=owner), status=200)
        await unknown(cycle)
        await refresh(
            first,
            on_user("auth.refresh_reuse", owner, "failure", reason="reuse_detected"),
            status=400,
        )
        await login(owner)
        everywhere = cycle % 2 == 1
        await s.send(
            "POST",
            LOGOUT,
            on_user("auth.logout_all" if everywhere else "auth.logout", owner, actor=owner),
            status=204,
            account=owner,
            json={"all": everywhere},
        )
        await wrong_password()
        await refresh(
            owner.refresh_token,
            on_user("auth.refresh", owner, "failure", reason="session_ended"),
            status=400,
        )
        await wrong_password()

    attempts = len(s.expected)
    assert attempts == K
    checked = await s.verify()  # each response: exactly its rows, every field right
    answered = {e.response.headers["x-request-id"] for e in s.expected}
    written = [r for r in await audit_rows(api.runtime) if r.action.startswith("auth.")]
    locks = [r for r in written if r.action == "auth.lock"]
    rows = [r for r in written if r.action != "auth.lock"]
    missing = len(answered - {r.request_id for r in rows})
    extra = len(rows) - (attempts - missing)
    print(f"\nAUD-01: {attempts} attempts → {len(rows)} rows, {missing} missing, {extra} extra")
    assert (checked, len(rows), missing, extra, len(locks)) == (K + 1, K, 0, 0, 1)
    reasons = {(r.action, r.outcome, r.reason) for r in rows}
    assert ("auth.login", "failure", "locked") in reasons
    assert ("auth.login", "failure", "invalid_password") in reasons


async def test_an_actor_does_not_outlive_its_request(api: Api) -> None:
    """A caller that runs requests one after another in one context (the ASGI test
    transport, an in-process client) must not see the previous request's actor on the
    next one's rows, e.g. on a failed anonymous login."""
    user = await api.user()
    assert (await api.client.get("/api/v1/users/me", headers=user.headers)).status_code == 200
    response = await api.client.post(
        TOKEN, json={"username": "nobody@example.com", "password": WRONG_PASSWORD}
    )
    [row] = await rows_of(api.runtime, response)
    assert (row.action, row.reason, row.actor_id) == ("auth.login", "unknown_user", None)
