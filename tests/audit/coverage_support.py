"""Helpers of the audit coverage suites (AUD-01, 02, 03, 05, 09, 11).

Each flow drives some audited routes over HTTP as a client with its own user agent, and
says which audit rows each response must have written: the rows are found by the
response's `X-Request-ID`, so a flow checks "exactly these rows, none missing, none
extra" request by request. The flows also collect every secret they see (passwords,
tokens, webhook secrets) for the no-secrets scan.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pyotp
from sqlalchemy import select

from gatehouse.audit.models import AuditEvent
from gatehouse.emails.templates import Kind
from gatehouse.kit.time import utcnow
from gatehouse.recovery.repository import ActionTokenRepository
from gatehouse.runtime import Runtime
from gatehouse.users.models import Role, User
from tests.factories import PASSWORD, Account, Api
from tests.mfa.support import step_start
from tests.oidc import token_support as oidc
from tests.service_support import seal

AGENT = "AuditProbe/2.5 (coverage)"
# The test client's address (conftest: ASGITransport(client=("127.0.0.1", 50000))).
CLIENT_IP = "127.0.0.1"
WRONG_PASSWORD = "Wrong-Horse-Battery-9"
NEW_PASSWORD = "Fresh-Lantern-Orbit-42"
RESET_PASSWORD = "Quiet-Harbor-Pelican-77"
# Receivers whose path or query carries their own credential (as Slack's hooks do).
HOOK_CREDENTIALS = ("PathCredential7Q", "QueryCredential3Z", "PathCredential8R")
HOOK_URL = "https://hooks.example.com/services/T0/B0/PathCredential7Q?key=QueryCredential3Z"
HOOK_URL_2 = "https://hooks.example.com/other/PathCredential8R"
LOCKOUT_THRESHOLD = 5
GENEROUS = "100000/hour"

# Rate limits and lockout on, in memory: every limit far away except the lockout, whose
# lock outlasts any test run (the lockout tests then need no clock).
SETTINGS: dict[str, Any] = {
    "rate_limit_enabled": True,
    "rate_limit_anonymous": GENEROUS,
    "rate_limit_authenticated": GENEROUS,
    "rate_limit_login": GENEROUS,
    "rate_limit_register": GENEROUS,
    "rate_limit_refresh": GENEROUS,
    "rate_limit_password_reset": GENEROUS,
    "login_lockout_threshold": LOCKOUT_THRESHOLD,
    "login_lockout_base_seconds": 3600,
    "login_lockout_max_seconds": 3600,
    # Targets are only vetted, never called: no DNS lookup in the tests.
    "webhook_allow_private_targets": True,
}

TOKEN = "/api/v1/auth/token"
JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+")


async def audit_rows(runtime: Runtime) -> list[AuditEvent]:
    """Every audit row, in chain order (sealed first, as the worker's sweep does)."""
    await seal(runtime)
    async with runtime.db.session(write=False) as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all())


async def rows_of(runtime: Runtime, response: httpx.Response) -> list[AuditEvent]:
    """The audit rows the request behind `response` wrote."""
    request_id = response.headers["x-request-id"]
    async with runtime.db.session(write=False) as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.request_id == request_id).order_by(AuditEvent.id)
        )
        return list(rows.all())


def row_text(row: AuditEvent) -> str:
    """Every column of a row as one string, for scans."""
    return repr({column.key: getattr(row, column.key) for column in AuditEvent.__table__.c})


@dataclass
class Row:
    """What one audit row must hold. `actor`: the account acting, None for nobody."""

    action: str
    outcome: str = "success"
    reason: str | None = None
    actor: Account | None = None
    target_type: str | None = None
    target_id: uuid.UUID | str | None = None
    # Must be contained in the row's details / pii (the client's ip and agent are
    # checked for every row).
    details: dict[str, Any] = field(default_factory=dict)
    pii: dict[str, Any] = field(default_factory=dict)
    # Keys that must not be in details.
    no_details: tuple[str, ...] = ()


def on_user(
    action: str, target: Account | uuid.UUID, outcome: str = "success", **kwargs: Any
) -> Row:
    target_id = target.id if isinstance(target, Account) else target
    return Row(action, outcome, target_type="user", target_id=target_id, **kwargs)


def LOCK_ROW(target: Account) -> Row:  # noqa: N802 (reads as the row it builds)
    """The row of the failure that reaches the threshold: the (account, IP) pair locks."""
    return on_user("auth.lock", target, reason="too_many_failures", details={"scope": "account_ip"})


def check_row(row: AuditEvent, expected: Row, response: httpx.Response, agent: str) -> None:
    where = f"{expected.action} for {response.request.method} {response.request.url.path}"
    assert row.action == expected.action, where
    assert (row.outcome, row.reason) == (expected.outcome, expected.reason), where
    actor = expected.actor
    assert row.actor_id == (actor.id if actor else None), where
    assert row.actor_role == (actor.role.value if actor else None), where
    assert row.target_type == expected.target_type, where
    target = str(expected.target_id) if expected.target_id is not None else None
    assert row.target_id == target, where
    assert row.request_id == response.headers["x-request-id"], where
    assert row.occurred_at.utcoffset() == timedelta(0), where
    pii = row.pii or {}
    assert pii.get("ip") == CLIENT_IP, where
    assert pii.get("user_agent") == agent, where
    for key, value in expected.pii.items():
        assert pii.get(key) == value, (where, key, pii)
    for key, value in expected.details.items():
        assert row.details.get(key) == value, (where, key, row.details)
    for key in expected.no_details:
        assert key not in row.details, (where, key, row.details)


@dataclass
class Expectation:
    response: httpx.Response
    rows: list[Row]
    agent: str


class Scenario:
    """Requests as one client, what each must have audited, and the secrets seen."""

    def __init__(self, api: Api, agent: str = AGENT) -> None:
        self.api = api
        self.runtime = api.runtime
        self.agent = agent
        self.expected: list[Expectation] = []
        self.secrets: set[str] = {PASSWORD, WRONG_PASSWORD, NEW_PASSWORD, RESET_PASSWORD}
        self.secrets |= set(HOOK_CREDENTIALS)

    async def send(
        self,
        method: str,
        url: str,
        *rows: Row,
        status: int,
        account: Account | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, expected to answer `status` and to audit exactly `rows`."""
        headers = {"User-Agent": self.agent, **kwargs.pop("headers", {})}
        if account is not None:
            headers["Authorization"] = f"Bearer {account.access_token}"
        # A task per request, as a server runs them: what a request sets in its context
        # (the actor) must not leak into the next one through the test's own context.
        response = await asyncio.create_task(
            self.api.client.request(method, url, headers=headers, **kwargs)
        )
        assert response.status_code == status, (method, url, response.text)
        self.expected.append(Expectation(response, list(rows), self.agent))
        self._collect(response)
        return response

    def _collect(self, response: httpx.Response) -> None:
        if not response.content or "json" not in response.headers.get("content-type", ""):
            return
        body = response.json()
        if isinstance(body, dict):
            for key in ("access_token", "refresh_token", "secret", "client_secret"):
                if isinstance(body.get(key), str):
                    self.secrets.add(body[key])

    def also(self, *rows: Row) -> None:
        """More rows the last request must have written (known once it answered)."""
        self.expected[-1].rows.extend(rows)

    async def user(self, role: str = "user", **kwargs: Any) -> Account:
        """An account made by the service (its user.create has no request)."""
        account = await self.api.create_user(role, **kwargs)
        self.secrets.add(account.password)
        return account

    async def login(self, account: Account) -> Account:
        response = await self.send(
            "POST",
            TOKEN,
            on_user("auth.login", account, actor=account, pii={"identifier": account.email}),
            status=200,
            json={"username": account.email, "password": account.password},
        )
        body = response.json()
        account.access_token, account.refresh_token = body["access_token"], body["refresh_token"]
        return account

    async def logged_in(self, role: str = "user", **kwargs: Any) -> Account:
        return await self.login(await self.user(role, **kwargs))

    async def email_token(self, account: Account, kind: Kind) -> str:
        """A token as the emailed link would carry it, minted by the real repository."""
        async with self.runtime.db.session() as session:
            token = await ActionTokenRepository(session).issue(
                account.id, kind.value, account.email, 3600, utcnow()
            )
        self.secrets.add(token)
        return token

    async def verify(self) -> int:
        """Check every response's rows; how many rows were checked."""
        checked = 0
        for expectation in self.expected:
            found = await rows_of(self.runtime, expectation.response)
            got = [(row.action, row.outcome) for row in found]
            want = [(row.action, row.outcome) for row in expectation.rows]
            request = expectation.response.request
            assert got == want, (request.method, request.url.path, got, want)
            for row, expected in zip(found, expectation.rows, strict=True):
                check_row(row, expected, expectation.response, expectation.agent)
            checked += len(found)
        return checked


Flow = Callable[[Scenario], Awaitable[None]]


# --- flows: each drives a group of routes and states what each request audits ---------

REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
REGISTER = "/api/v1/auth/register"
USERS = "/api/v1/users"
WEBHOOKS = "/api/v1/webhooks"
CLIENTS = "/api/v1/clients"


async def login_flow(s: Scenario) -> None:
    """Password logins: success, wrong password, unknown user, then a lockout."""
    user = await s.user()
    await s.login(user)
    # The identifier is recorded as the login normalises it.
    await s.send(
        "POST",
        TOKEN,
        on_user(
            "auth.login",
            user,
            outcome="failure",
            reason="invalid_password",
            pii={"identifier": user.email},
        ),
        status=401,
        json={"username": f"  {user.email.upper()} ", "password": WRONG_PASSWORD},
    )
    stranger = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    await s.send(
        "POST",
        TOKEN,
        Row("auth.login", "failure", "unknown_user", pii={"identifier": stranger}),
        status=401,
        json={"username": stranger, "password": PASSWORD},
    )
    # More failures lock the (account, IP) pair; then even the right password is
    # refused, and audited as such.
    for attempt in range(1, LOCKOUT_THRESHOLD):
        rows = [on_user("auth.login", user, outcome="failure", reason="invalid_password")]
        if attempt == LOCKOUT_THRESHOLD - 1:  # the threshold-th failure with the first
            rows.append(LOCK_ROW(user))
        await s.send(
            "POST",
            TOKEN,
            *rows,
            status=401,
            json={"username": user.email, "password": WRONG_PASSWORD},
        )
    await s.send(
        "POST",
        TOKEN,
        on_user("auth.login", user, outcome="failure", reason="locked"),
        status=401,
        json={"username": user.email, "password": user.password},
    )


async def refresh_flow(s: Scenario) -> None:
    """Refresh: success (both endpoints), unknown token, reuse, then the ended family."""
    user = await s.logged_in()
    first = user.refresh_token
    refreshed = on_user("auth.refresh", user, actor=user)
    response = await s.send("POST", REFRESH, refreshed, status=200, json={"refresh_token": first})
    second = response.json()["refresh_token"]
    response = await s.send(
        "POST",
        TOKEN,
        refreshed,
        status=200,
        json={"grant_type": "refresh_token", "refresh_token": second},
    )
    latest = response.json()["refresh_token"]
    await s.send(
        "POST",
        REFRESH,
        Row("auth.refresh", "failure", "unknown_token"),
        status=400,
        json={"refresh_token": "not-a-token-" + uuid.uuid4().hex},
    )
    # The first token again: a replay, and the whole family ends...
    await s.send(
        "POST",
        REFRESH,
        on_user("auth.refresh_reuse", user, outcome="failure", reason="reuse_detected"),
        status=400,
        json={"refresh_token": first},
    )
    # ...so the newest token of the family is refused too.
    await s.send(
        "POST",
        REFRESH,
        on_user("auth.refresh", user, outcome="failure", reason="session_ended"),
        status=400,
        json={"refresh_token": latest},
    )


async def logout_flow(s: Scenario) -> None:
    user = await s.logged_in()
    await s.send("POST", LOGOUT, on_user("auth.logout", user, actor=user), status=204, account=user)
    await s.login(user)
    await s.send(
        "POST",
        LOGOUT,
        on_user("auth.logout_all", user, actor=user),
        status=204,
        account=user,
        json={"all": True},
    )


async def register_flow(s: Scenario) -> None:
    email = f"signup-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "name": "Sig Nup", "password": PASSWORD}
    await s.send("POST", REGISTER, status=202, json=body)
    async with s.runtime.db.session(write=False) as session:
        user_id = await session.scalar(select(User.id).where(User.email == email))
    assert user_id is not None
    new = Account(user_id, email, PASSWORD, Role.user)
    s.also(on_user("auth.register", new, actor=new, pii={"email": email, "name": "Sig Nup"}))
    # A taken address is answered as a new one (202); the trail says which it was.
    await s.send(
        "POST",
        REGISTER,
        on_user("auth.register", new, "failure", reason="email_taken", pii={"email": email}),
        status=202,
        json=body,
    )


async def admin_flow(s: Scenario) -> None:
    """Admin and readonly work on users and sessions (AUD-02, AUD-03)."""
    admin = await s.logged_in("admin")
    readonly = await s.logged_in("readonly")
    member = await s.logged_in()
    await s.login(member)  # a second session

    email = f"made-{uuid.uuid4().hex[:8]}@example.com"
    response = await s.send(
        "POST",
        USERS,
        status=201,
        account=admin,
        json={"email": email, "name": "Made Person", "password": PASSWORD, "role": "user"},
    )
    made = uuid.UUID(response.json()["id"])
    s.also(
        on_user(
            "user.create",
            made,
            actor=admin,
            details={"role": "user"},
            pii={"email": email, "name": "Made Person"},
        )
    )
    await s.send(
        "PATCH",
        f"{USERS}/{made}",
        on_user(
            "user.update",
            made,
            actor=admin,
            details={"fields": ["name"]},
            pii={"name": "Renamed Person"},
            no_details=("role",),
        ),
        status=200,
        account=admin,
        json={"name": "Renamed Person"},
    )
    await s.send(
        "PATCH",
        f"{USERS}/{made}",
        on_user(
            "user.role_change",
            made,
            actor=admin,
            details={"fields": ["role"], "role": {"from": "user", "to": "readonly"}},
        ),
        status=200,
        account=admin,
        json={"role": "readonly"},
    )
    for reader in (admin, readonly):
        await s.send(
            "GET",
            USERS,
            Row("user.list", actor=reader, target_type="user"),
            status=200,
            account=reader,
        )
        await s.send(
            "GET",
            f"{USERS}/{member.id}",
            on_user("user.read", member, actor=reader),
            status=200,
            account=reader,
        )
    response = await s.send(
        "GET",
        f"{USERS}/{member.id}/sessions",
        on_user("session.list", member, actor=admin, details={"returned": 2}),
        status=200,
        account=admin,
    )
    ended = response.json()[0]["id"]
    await s.send(
        "DELETE",
        f"{USERS}/{member.id}/sessions/{ended}",
        on_user("session.end", member, actor=admin, details={"session_id": ended}),
        status=204,
        account=admin,
    )
    await s.send(
        "DELETE",
        f"{USERS}/{member.id}/sessions",
        on_user("session.end_all", member, actor=admin, details={"ended": 1}),
        status=204,
        account=admin,
    )
    await s.send(
        "DELETE",
        f"{USERS}/{made}",
        on_user("user.delete", made, actor=admin),
        status=204,
        account=admin,
    )


async def self_flow(s: Scenario) -> None:
    """A user on their own account: reads are not audited, every change is."""
    user = await s.logged_in()
    await s.send("GET", f"{USERS}/me", status=200, account=user)
    await s.send("GET", f"{USERS}/me/sessions", status=200, account=user)
    await s.send("GET", f"{USERS}/{user.id}", status=200, account=user)
    await s.send(
        "PATCH",
        f"{USERS}/me",
        on_user(
            "user.update", user, actor=user, details={"fields": ["name"]}, pii={"name": "Self Made"}
        ),
        status=200,
        account=user,
        json={"name": "Self Made"},
    )
    new_email = f"moved-{uuid.uuid4().hex[:8]}@example.com"
    await s.send(
        "PATCH",
        f"{USERS}/me",
        on_user(
            "user.update", user, actor=user, details={"fields": ["email"]}, pii={"email": new_email}
        ),
        status=200,
        account=user,
        json={"email": new_email, "current_password": user.password},
    )
    user.email = new_email
    await s.send(
        "POST",
        f"{USERS}/me/password",
        on_user("auth.password_change", user, actor=user),
        status=204,
        account=user,
        json={"current_password": user.password, "new_password": NEW_PASSWORD},
    )
    user.password = NEW_PASSWORD
    await s.send(
        "DELETE",
        f"{USERS}/me/sessions",
        on_user("session.end_all", user, actor=user, details={"ended": 0}),
        status=204,
        account=user,
    )
    await s.send(
        "DELETE", f"{USERS}/me", on_user("user.delete", user, actor=user), status=204, account=user
    )


async def wrong_password_flow(s: Scenario) -> None:
    """A wrong current password is a failed attempt of the user's own action: its one
    row is that action's failure, not also an `authz.denied` (nothing about a role)."""
    user = await s.logged_in()
    await s.send(
        "PATCH",
        f"{USERS}/me",
        on_user("user.update", user, "failure", reason="wrong_password", actor=user),
        status=403,
        account=user,
        json={
            "email": f"moved-{uuid.uuid4().hex[:8]}@example.com",
            "current_password": WRONG_PASSWORD,
        },
    )
    await s.send(
        "POST",
        f"{USERS}/me/password",
        on_user("auth.password_change", user, "failure", reason="wrong_password", actor=user),
        status=403,
        account=user,
        json={"current_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD},
    )


async def denial_flow(s: Scenario) -> None:
    """Refusals of authenticated callers are audited (AUD-03): 404 on someone else's
    record, 403 on a role that may not do it."""
    user = await s.logged_in()
    readonly = await s.logged_in("readonly")
    other = await s.user()
    await s.send(
        "GET",
        f"{USERS}/{other.id}",
        on_user("authz.denied", other, "denied", reason="not_permitted", actor=user),
        status=404,
        account=user,
    )
    refusals = [
        (user, "GET", USERS, "/api/v1/users", None),
        (readonly, "PATCH", f"{USERS}/{other.id}", "/api/v1/users/{user_id}", {"name": "X Y"}),
        (readonly, "PATCH", f"{USERS}/me", "/api/v1/users/me", {"name": "X Y"}),
        (readonly, "POST", WEBHOOKS, "/api/v1/webhooks", {"url": HOOK_URL, "event_types": ["*"]}),
        (user, "GET", WEBHOOKS, "/api/v1/webhooks", None),
    ]
    for actor, method, url, route, body in refusals:
        await s.send(
            method,
            url,
            Row(
                "authz.denied",
                "denied",
                "forbidden",
                actor=actor,
                details={"method": method, "route": route},
            ),
            status=403,
            account=actor,
            json=body,
        )


async def webhook_flow(s: Scenario) -> None:
    """Webhook subscriptions: every change, and reads (AUD-02, AUD-03)."""
    admin = await s.logged_in("admin")
    readonly = await s.logged_in("readonly")
    origin = "https://hooks.example.com:443"
    response = await s.send(
        "POST",
        WEBHOOKS,
        status=201,
        account=admin,
        json={"url": HOOK_URL, "event_types": ["user.created"], "description": "CRM sync"},
    )
    hook = response.json()["id"]

    def on_hook(action: str, **kwargs: Any) -> Row:
        return Row(action, actor=admin, target_type="webhook", target_id=hook, **kwargs)

    s.also(
        on_hook(
            "webhook.create",
            details={"url": origin, "event_types": ["user.created"], "enabled": True},
        )
    )
    await s.send(
        "GET",
        WEBHOOKS,
        Row("webhook.read", actor=readonly, target_type="webhook", details={"view": "list"}),
        status=200,
        account=readonly,
    )
    await s.send(
        "GET",
        f"{WEBHOOKS}/{hook}",
        on_hook("webhook.read", details={"view": "get"}),
        status=200,
        account=admin,
    )
    response = await s.send("POST", f"{WEBHOOKS}/{hook}/test", status=202, account=admin)
    s.also(on_hook("webhook.test", details={"delivery_id": response.json()["id"]}))
    await s.send(
        "GET",
        f"{WEBHOOKS}/{hook}/deliveries",
        on_hook("webhook.read", details={"view": "deliveries", "returned": 1}),
        status=200,
        account=admin,
    )
    await s.send(
        "PATCH",
        f"{WEBHOOKS}/{hook}",
        on_hook(
            "webhook.update",
            details={
                "fields": ["url", "event_types", "enabled", "description"],
                "url": {"from": origin, "to": origin},
                "event_types": {"from": ["user.created"], "to": ["*"]},
                "enabled": {"from": True, "to": False},
            },
        ),
        status=200,
        account=admin,
        json={"url": HOOK_URL_2, "event_types": ["*"], "description": "All", "enabled": False},
    )
    await s.send(
        "POST",
        f"{WEBHOOKS}/{hook}/rotate-secret",
        on_hook("webhook.rotate_secret", details={"fields": ["secret"]}),
        status=200,
        account=admin,
    )
    await s.send(
        "DELETE",
        f"{WEBHOOKS}/{hook}",
        on_hook("webhook.delete", details={"url": origin, "enabled": False}),
        status=204,
        account=admin,
    )


async def client_flow(s: Scenario) -> None:
    """OAuth clients: every change, reads, and a readonly write refused (AUD-02, AUD-03)."""
    admin = await s.logged_in("admin")
    readonly = await s.logged_in("readonly")
    body = {
        "name": "Acme CRM",
        "type": "confidential",
        "redirect_uris": ["https://crm.example.com/callback"],
        "scopes": ["openid", "email"],
        "grant_types": ["authorization_code"],
    }
    response = await s.send("POST", CLIENTS, status=201, account=admin, json=body)
    client = response.json()["id"]
    client_id = response.json()["client_id"]

    def on_client(action: str, actor: Account = admin, **kwargs: Any) -> Row:
        return Row(action, actor=actor, target_type="client", target_id=client, **kwargs)

    s.also(
        on_client(
            "client.create",
            details={
                "client_id": client_id,
                "type": "confidential",
                "name": "Acme CRM",
                "scopes": ["openid", "email"],
                "grant_types": ["authorization_code"],
                "trusted": False,
                "enabled": True,
            },
        )
    )
    await s.send(
        "GET",
        CLIENTS,
        Row("client.read", actor=readonly, target_type="client", details={"view": "list"}),
        status=200,
        account=readonly,
    )
    await s.send(
        "GET",
        f"{CLIENTS}/{client}",
        on_client("client.read", readonly, details={"view": "get"}),
        status=200,
        account=readonly,
    )
    await s.send(
        "PATCH",
        f"{CLIENTS}/{client}",
        on_client(
            "client.update",
            details={
                "fields": ["redirect_uris", "trusted"],
                "trusted": {"from": False, "to": True},
            },
            no_details=("name", "redirect_uris"),
        ),
        status=200,
        account=admin,
        json={
            "redirect_uris": ["https://crm.example.com/cb2"],
            "trusted": True,
            "name": "Acme CRM",
        },
    )
    await s.send(
        "POST",
        f"{CLIENTS}/{client}/disable",
        on_client(
            "client.disable",
            details={"fields": ["enabled"], "enabled": {"from": True, "to": False}},
        ),
        status=200,
        account=admin,
    )
    # Already disabled: nothing changes, nothing is recorded.
    await s.send("POST", f"{CLIENTS}/{client}/disable", status=200, account=admin)
    await s.send(
        "POST",
        f"{CLIENTS}/{client}/enable",
        on_client("client.enable", details={"enabled": {"from": False, "to": True}}),
        status=200,
        account=admin,
    )
    await s.send(
        "POST",
        f"{CLIENTS}/{client}/rotate-secret",
        on_client("client.rotate_secret", details={"client_id": client_id}),
        status=200,
        account=admin,
    )
    await s.send(
        "POST",
        f"{CLIENTS}/{client}/rotate-secret",
        Row(
            "authz.denied",
            "denied",
            "forbidden",
            actor=readonly,
            details={"method": "POST", "route": "/api/v1/clients/{id}/rotate-secret"},
        ),
        status=403,
        account=readonly,
    )
    await s.send(
        "DELETE",
        f"{CLIENTS}/{client}",
        on_client("client.delete", details={"client_id": client_id, "name": "Acme CRM"}),
        status=204,
        account=admin,
    )


async def recovery_flow(s: Scenario) -> None:
    """Verification and reset: requests (found or not) and confirmations."""
    user = await s.user()
    stranger = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    for action, path in (
        ("auth.email_verify_request", "/api/v1/auth/verify-email/request"),
        ("auth.password_reset_request", "/api/v1/auth/password-reset/request"),
    ):
        await s.send(
            "POST",
            path,
            on_user(action, user, details={"account_found": True}, pii={"identifier": user.email}),
            status=202,
            json={"email": user.email.upper()},
        )
        await s.send(
            "POST",
            path,
            Row(action, details={"account_found": False}, pii={"identifier": stranger}),
            status=202,
            json={"email": stranger},
        )
    token = await s.email_token(user, Kind.verify_email)
    verify = "/api/v1/auth/verify-email"
    await s.send(
        "POST",
        verify,
        on_user("auth.email_verify", user, actor=user),
        status=200,
        json={"token": token},
    )
    await s.send(
        "POST",
        verify,
        on_user(
            "auth.email_verify", user, "failure", reason="invalid_token", details={"token": "used"}
        ),
        status=400,
        json={"token": token},
    )
    await s.send(
        "POST",
        verify,
        Row("auth.email_verify", "failure", "invalid_token", details={"token": "unknown"}),
        status=400,
        json={"token": "x" * 43},
    )
    token = await s.email_token(user, Kind.password_reset)
    reset = "/api/v1/auth/password-reset"
    await s.send(
        "POST",
        reset,
        on_user("auth.password_reset", user, actor=user),
        status=204,
        json={"token": token, "new_password": RESET_PASSWORD},
    )
    await s.send(
        "POST",
        reset,
        on_user(
            "auth.password_reset",
            user,
            "failure",
            reason="invalid_token",
            details={"token": "used"},
        ),
        status=400,
        json={"token": token, "new_password": RESET_PASSWORD},
    )


async def mfa_flow(s: Scenario) -> None:
    """Second factors: enrolling (a wrong password, then right), confirming, the login's
    two steps (a wrong code, then right), a failed step-up, and an admin's reset."""
    user = await s.logged_in()
    admin = await s.logged_in("admin")
    totp = "/api/v1/users/me/mfa/totp"
    with step_start() as clock:
        await s.send(
            "POST",
            totp,
            on_user("mfa.totp_enrol", user, "failure", reason="wrong_password", actor=user),
            status=403,
            account=user,
            json={"current_password": WRONG_PASSWORD},
        )
        started = await s.send(
            "POST",
            totp,
            on_user("mfa.totp_enrol", user, actor=user),
            status=201,
            account=user,
            json={"current_password": user.password},
        )
        secret = started.json()["secret"]
        s.secrets.add(secret)
        confirmed = await s.send(
            "POST",
            f"{totp}/confirm",
            on_user("mfa.totp_confirm", user, actor=user),
            status=200,
            account=user,
            json={"code": pyotp.TOTP(secret).now()},
        )
        s.secrets.update(confirmed.json()["recovery_codes"])
        step = await s.send(
            "POST",
            TOKEN,
            on_user(
                "auth.login",
                user,
                "failure",
                reason="mfa_required",
                pii={"identifier": user.email},
            ),
            status=401,
            json={"username": user.email, "password": user.password},
        )
        mfa_token = step.json()["error"]["details"]["mfa_token"]
        s.secrets.add(mfa_token)
        await s.send(
            "POST",
            "/api/v1/auth/mfa/verify",
            on_user("mfa.verify", user, "failure", reason="wrong_code", details={"method": "totp"}),
            status=401,
            json={"mfa_token": mfa_token, "method": "totp", "code": "000000"},
        )
        clock.shift(30)
        code = pyotp.TOTP(secret).now()
        s.secrets.add(code)
        verified = await s.send(
            "POST",
            "/api/v1/auth/mfa/verify",
            on_user("mfa.verify", user, actor=user, details={"method": "totp"}),
            on_user("auth.login", user, actor=user, details={"amr": ["pwd", "otp", "mfa"]}),
            status=200,
            json={"mfa_token": mfa_token, "method": "totp", "code": code},
        )
        user.access_token = verified.json()["access_token"]
        await s.send(
            "POST",
            "/api/v1/auth/mfa/step-up",
            on_user(
                "mfa.step_up",
                user,
                "failure",
                reason="wrong_code",
                actor=user,
                details={"method": "totp"},
            ),
            status=401,
            account=user,
            json={"method": "totp", "code": "000000"},
        )
        await s.send(
            "DELETE",
            f"/api/v1/users/{user.id}/mfa",
            on_user("mfa.reset", user, actor=admin, details={"totp": 1, "recovery_codes": 10}),
            status=204,
            account=admin,
        )


async def oauth_flow(s: Scenario) -> None:
    """The OpenID provider's token side: an exchange, a replayed code, a failed client
    authentication, a refresh and its replay, a revocation."""
    user = await s.logged_in()
    rp = await oidc.make_client(s.runtime)
    assert rp.secret is not None
    s.secrets.add(rp.secret)

    def on_rp(action: str, outcome: str = "success", **kwargs: Any) -> Row:
        return Row(action, outcome, target_type="client", target_id=rp.pk, **kwargs)

    code = await oidc.issue_code(s.api, rp, user)
    s.secrets.add(code.code)
    issued = {"grant_type": "authorization_code", "client_id": rp.client_id}
    granted = {**issued, "grant_id": str(code.grant_id), "user_id": str(user.id)}
    first = await s.send(
        "POST",
        oidc.TOKEN,
        on_rp("oauth.token", details=granted),
        status=200,
        data=oidc.code_form(code),
        headers=rp.basic,
    )
    await s.send(
        "POST",
        oidc.TOKEN,
        on_rp("oauth.code_reused", "failure", reason="code_reused"),
        status=400,
        data=oidc.code_form(code),
        headers=rp.basic,
    )
    wrong = {"Authorization": "Basic " + base64.b64encode(f"{rp.client_id}:x".encode()).decode()}
    await s.send(
        "POST",
        oidc.TOKEN,
        Row("oauth.token", "failure", "invalid_client", details={"method": "client_secret_basic"}),
        status=401,
        data=oidc.code_form(code),
        headers=wrong,
    )
    assert first.json()["refresh_token"]
    fresh = await oidc.issue_code(s.api, rp, user)
    await s.send(
        "POST",
        oidc.TOKEN,
        on_rp("oauth.token", "failure", reason="redirect_uri_mismatch", details=issued),
        status=400,
        data=oidc.code_form(fresh, redirect_uri="https://elsewhere.example.com/"),
        headers=rp.basic,
    )
    body = (
        await s.send(
            "POST",
            oidc.TOKEN,
            on_rp("oauth.token", details={**issued, "grant_id": str(fresh.grant_id)}),
            status=200,
            data=oidc.code_form(fresh),
            headers=rp.basic,
        )
    ).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    rotated = (
        await s.send(
            "POST",
            oidc.TOKEN,
            on_rp("oauth.token", details={"grant_type": "refresh_token"}),
            status=200,
            data=refresh,
            headers=rp.basic,
        )
    ).json()
    await s.send(
        "POST",
        oidc.TOKEN,
        on_rp("oauth.refresh_reused", "failure", reason="refresh_reused"),
        status=400,
        data=refresh,
        headers=rp.basic,
    )
    third = await oidc.issue_code(s.api, rp, user)
    tokens = (
        await s.send(
            "POST",
            oidc.TOKEN,
            on_rp("oauth.token", details=issued),
            status=200,
            data=oidc.code_form(third),
            headers=rp.basic,
        )
    ).json()
    assert rotated["access_token"]
    await s.send(
        "POST",
        oidc.REVOKE,
        on_rp("oauth.revoke", details={"grant_id": str(third.grant_id)}),
        status=200,
        data={"token": tokens["refresh_token"]},
        headers=rp.basic,
    )
    # Revoked already: nothing more to audit.
    await s.send(
        "POST", oidc.REVOKE, status=200, data={"token": tokens["refresh_token"]}, headers=rp.basic
    )


OAUTH_CALLBACK = "https://notes.example.com/callback"
OAUTH_BYE = "https://notes.example.com/bye"


def _authorize_url(client_id: str, **changes: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": OAUTH_CALLBACK,
        "scope": "openid profile",
        "state": "st-1",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGEdVmHIvU",
        "code_challenge_method": "S256",
        **changes,
    }
    return "/oauth2/authorize?" + urlencode(params)


def _id_token(runtime: Runtime, sub: uuid.UUID, aud: str) -> str:
    key = runtime.tokens.key
    now = int(utcnow().timestamp())
    claims = {"iss": runtime.settings.server.public_url, "sub": str(sub), "aud": aud}
    return jwt.encode(
        {**claims, "iat": now, "exp": now + 300},
        key.private_key,
        algorithm="RS256",
        headers={"kid": key.kid, "typ": "JWT"},
    )


async def oauth_browser_flow(s: Scenario) -> None:
    """The OpenID provider's browser side: consent, authorize (a code and refusals),
    denial, removing an app, and logout (AUD-02, AUD-03)."""
    admin = await s.logged_in("admin")
    user = await s.logged_in()
    created = await s.api.client.post(
        CLIENTS,
        headers=admin.headers,
        json={
            "name": "Notes",
            "type": "public",
            "redirect_uris": [OAUTH_CALLBACK],
            "post_logout_redirect_uris": [OAUTH_BYE],
            "scopes": ["openid", "profile"],
            "grant_types": ["authorization_code"],
        },
    )
    assert created.status_code == 201, created.text
    client, client_id = created.json()["id"], created.json()["client_id"]

    def on_client(action: str, actor: Account | None = user, **kwargs: Any) -> Row:
        return Row(action, actor=actor, target_type="client", target_id=client, **kwargs)

    # Signing the browser in to the provider and being sent to consent audit nothing.
    await s.send("POST", "/api/v1/oauth2/session", status=204, account=user)
    s.secrets.add(s.api.client.cookies["gatehouse_op"])
    await s.send("GET", _authorize_url(client_id), status=302)
    request = _authorize_url(client_id).split("?", 1)[1]
    scopes = {"client_id": client_id, "scopes": ["openid", "profile"]}
    await s.send(
        "POST",
        "/api/v1/oauth2/consent/deny",
        on_client("oauth.consent_denied", details=scopes),
        status=200,
        account=user,
        json={"query": request},
    )
    await s.send(
        "POST",
        "/api/v1/oauth2/consent",
        on_client("oauth.consent", details=scopes),
        status=200,
        account=user,
        json={"query": request},
    )
    response = await s.send(
        "GET", _authorize_url(client_id), on_client("oauth.authorize", details=scopes), status=302
    )
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    s.secrets.add(code)
    await s.send(
        "GET",
        _authorize_url(client_id, scope="openid roles"),
        on_client("oauth.authorize", None, outcome="failure", reason="invalid_scope"),
        status=302,
    )
    await s.send(
        "GET",
        _authorize_url(client_id, redirect_uri="https://evil.example.com/cb"),
        on_client("oauth.authorize", None, outcome="failure", reason="redirect_uri_mismatch"),
        status=400,
    )
    await s.send(
        "DELETE",
        f"/api/v1/users/me/connected-apps/{client_id}",
        on_client("oauth.consent_revoke", details={"client_id": client_id, "grants_revoked": 1}),
        status=204,
        account=user,
    )
    hint = _id_token(s.runtime, user.id, client_id)
    s.secrets.add(hint)
    await s.send(
        "GET",
        "/oauth2/end_session?"
        + urlencode({"id_token_hint": hint, "post_logout_redirect_uri": OAUTH_BYE}),
        on_user("oauth.logout", user, actor=user, details={"grants_revoked": 0}),
        status=302,
    )


FLOWS: dict[str, Flow] = {
    "mfa": mfa_flow,
    "login": login_flow,
    "refresh": refresh_flow,
    "logout": logout_flow,
    "register": register_flow,
    "admin": admin_flow,
    "self": self_flow,
    "wrong_password": wrong_password_flow,
    "denial": denial_flow,
    "webhooks": webhook_flow,
    "clients": client_flow,
    "recovery": recovery_flow,
    "oauth": oauth_flow,
    "oauth_browser": oauth_browser_flow,
}
