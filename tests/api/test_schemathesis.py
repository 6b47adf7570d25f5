"""DP-08 (and DP-01/03/04 over the whole run): Schemathesis against our own OpenAPI.

Every documented operation is generated from the served schema and called as admin,
user and readonly, on SQLite and on PostgreSQL, with every built-in check (status code,
content type, headers and response schema conformance, negative data rejection,
positive data acceptance, ignored auth, server errors) plus our own HTTP contract.

The app runs in Schemathesis' own event loop thread (its ASGI transport), so the
runtime here is the app's own (built by its lifespan in that loop), never the
`runtime` fixture's, whose connections belong to pytest's loop.

The schema is built at import from the app's own document (a test below checks it is
the one served): Schemathesis' fixture-loaded schema (`schemathesis.pytest.from_fixture`)
does not run under pytest 9.2. The stateful phase does not run: the document declares
no links, and the pytest integration runs examples, coverage and fuzzing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import schemathesis
from schemathesis.python import asgi
from sqlalchemy.ext.asyncio import create_async_engine

from gatehouse.app import create_app
from gatehouse.audit.cursor import INVALID as CURSOR_INVALID
from gatehouse.clients.rules import CROSS_FIELD_RULES
from gatehouse.config import Environment, ServerSettings, Settings
from gatehouse.kit.jobs import LeftForSweep
from gatehouse.runtime import Runtime
from gatehouse.users.models import Role
from gatehouse.users.schemas import UserCreate
from gatehouse.users.service import UserService
from tests.conftest import empty_tables, make_settings
from tests.factories import PASSWORD, Api

T = TypeVar("T")
SEED = 20261125
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
# How many responses our own contract check saw (proof that it ran, and a figure).
SEEN: Counter[str] = Counter()


def in_thread(work: Coroutine[Any, Any, T]) -> T:
    """Run set-up and clean-up in a loop of their own, away from pytest's and the app's."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


@dataclass
class Target:
    app: Any
    role: str
    client: asgi.ASGIClient
    admin_headers: dict[str, str]
    headers: dict[str, str]

    def login(self, email: str) -> dict[str, str]:
        response = self.client.post(
            "/api/v1/auth/token", json={"username": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def throwaway(self) -> dict[str, str]:
        """A fresh account of this role, for operations that end the caller's session."""
        email = f"throwaway-{uuid.uuid4().hex[:10]}@example.com"
        response = self.client.post(
            "/api/v1/users",
            json={"email": email, "name": "Throwaway", "password": PASSWORD, "role": self.role},
            headers=self.admin_headers,
        )
        assert response.status_code == 201, response.text
        return self.login(email)


async def _create_accounts(settings: Settings, accounts: list[tuple[str, Role]]) -> None:
    runtime = Runtime.create(settings)
    runtime.use_jobs(LeftForSweep())  # rows only: the accounts' events wait for no one
    try:
        async with runtime.unit_of_work() as uow:
            service = UserService(uow, settings.auth, runtime.hasher)
            for email, role in accounts:
                await service.create(
                    UserCreate(email=email, name="Fuzz Person", password=PASSWORD, role=role)
                )
    finally:
        await runtime.close()


async def _empty_tables(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        await empty_tables(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_database(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture(scope="module")
def target(
    request: pytest.FixtureRequest,
    fuzz_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    signing_key_pem: str,
) -> Iterator[Target]:
    role = str(request.param)
    settings = make_settings(fuzz_database, tmp_path_factory.mktemp("fuzz"), signing_key_pem)
    in_thread(
        _create_accounts(
            settings,
            [("setup-admin@example.com", Role.admin), (f"fuzz-{role}@example.com", Role(role))],
        )
    )
    app = create_app(settings=settings)
    checked = SEEN["responses"]
    try:
        # schemathesis types an ASGI app with dicts where the ASGI spec has mappings.
        client = asgi.get_client(app).__enter__()  # type: ignore[arg-type]
        t = Target(app=app, role=role, client=client, admin_headers={}, headers={})
        t.admin_headers = t.login("setup-admin@example.com")
        t.headers = t.login(f"fuzz-{role}@example.com")
        yield t
    finally:
        asgi.shutdown_lifespans()
        in_thread(_empty_tables(fuzz_database))
    assert SEEN["responses"] > checked, "the HTTP contract check never ran"


def http_contract(ctx: Any, response: Any, case: Any) -> None:
    """DP-01, DP-03, DP-04 on every response of the run."""
    headers = {name.lower(): values for name, values in response.headers.items()}
    path = case.path
    SEEN["responses"] += 1
    assert headers.get("x-content-type-options") == ["nosniff"], "no nosniff"
    assert "server" not in headers, "a Server header leaks the stack"
    assert headers.get("x-request-id"), "no X-Request-ID"
    if path.startswith("/api/"):
        assert "no-store" in headers.get("cache-control", [""])[0], "/api/ response is cacheable"
        SEEN["no-store"] += 1
    if response.status_code < 300 or (path == "/health/ready" and response.status_code == 503):
        return
    assert headers.get("content-type") == ["application/json"], headers.get("content-type")
    body = json.loads(response.content)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details", "timestamp", "request_id"}, error
    assert error["request_id"] == headers["x-request-id"][0]
    assert RFC3339_UTC.match(error["timestamp"]), error["timestamp"]
    assert re.fullmatch(r"[A-Z_]+", error["code"]), error["code"]
    SEEN["envelopes"] += 1


# Schemathesis' default also allows 3xx, 429 and any 5xx for valid data; we never
# redirect, have no rate limiter yet, and a 5xx is never acceptable. A 400 to valid data
# passes the built-in check and is then held to `semantic_refusal` (below).
ACCEPTED = ["2xx", "401", "403", "404", "409"]

USERS_WRITES = {
    "POST /api/v1/users",
    "POST /api/v1/auth/register",
    "PUT /api/v1/users/{user_id}",
    "PATCH /api/v1/users/{user_id}",
    "PUT /api/v1/users/me",
    "PATCH /api/v1/users/me",
}
NEW_PASSWORD_WRITES = {
    "POST /api/v1/users": "password",
    "POST /api/v1/auth/register": "password",
    "POST /api/v1/users/me/password": "new_password",
    "POST /api/v1/auth/password-reset": "new_password",
}
# What the document cannot know: the state of the data (a taken address, a spent
# token), the world (what a webhook's host resolves to), and the password rules that
# depend on the account (its name and email) or on a word list. The 72-byte limit is in
# the password's description: JSON Schema counts characters, not bytes.
ADDRESS_READS = {
    "POST /api/v1/auth/verify-email/request",
    "POST /api/v1/auth/password-reset/request",
}
RESERVED = (
    "value is not a valid email address: The part after the @-sign is a special-use "
    "or reserved name that cannot be used with email."
)
REFRESH_GRANT_JSON_ONLY = (
    "The refresh_token grant is JSON mode only; "
    "refresh from the cookie at POST /api/v1/auth/refresh"
)
REFRESH_MISSING = "Field required (or the gatehouse_refresh cookie in cookie mode)"
PASSWORD_JUDGEMENTS = (
    "Password is too common; choose one that is harder to guess",
    "Password must not contain your email address or name",
    "Password must be at most 72 bytes (UTF-8)",
)


MFA_PROOFS = {"POST /api/v1/auth/mfa/verify", "POST /api/v1/auth/mfa/step-up"}


def semantic_refusal(label: str, error: dict[str, Any]) -> bool:
    """A 400 to valid-by-schema data that is about state, never about the shape."""
    code: str = error["code"]
    details: dict[str, list[str]] = error["details"]
    if code == "INVALID_GRANT":  # an unknown or spent refresh token (RFC 6749 §5.2)
        return label in {"POST /api/v1/auth/token", "POST /api/v1/auth/refresh"}
    if code == "INVALID_TOKEN":  # an unknown or spent emailed token
        return label in {
            "POST /api/v1/auth/verify-email",
            "POST /api/v1/auth/password-reset",
            "POST /api/v1/auth/email-change/undo",
        }
    if code == "OAUTH_REQUEST_INVALID":  # an authorize request for no registered client
        return label in {
            "GET /api/v1/oauth2/consent",
            "POST /api/v1/oauth2/consent",
            "POST /api/v1/oauth2/consent/deny",
        }
    if code == "INVALID_MFA_CODE":  # a code that is not the new secret's
        return label == "POST /api/v1/users/me/mfa/totp/confirm"
    if code == "INVALID_PASSKEY":  # a credential only an authenticator can make
        return label == "POST /api/v1/users/me/passkeys"
    if code != "VALIDATION_ERROR":
        return False
    if label in MFA_PROOFS and list(details) == ["method"]:
        # A method this account has not set up (or no passkey verifier): its state.
        return all(
            m.endswith("is not set up for this account") or m == "no passkey verifier"
            for m in details["method"]
        )
    if label in USERS_WRITES | ADDRESS_READS and list(details) == ["email"]:
        # A taken address; or a reserved domain (IANA's special-use names), a list no
        # format can carry.
        return details["email"] == ["Email already exists"] or details["email"] == [RESERVED]
    if label == "POST /api/v1/auth/token" and len(details) == 1:
        # Across body and header (the refresh grant in cookie mode); a form field sent
        # twice: neither can JSON Schema say.
        ((_field, messages),) = details.items()
        return messages == [REFRESH_GRANT_JSON_ONLY] or messages == ["Given more than once"]
    if label == "POST /api/v1/auth/refresh" and list(details) == ["refresh_token"]:
        # Optional in the body because cookie mode sends it as a cookie, which this
        # client has not got: the state of the client, not the shape of the body.
        return details["refresh_token"] == [REFRESH_MISSING]
    if label == "GET /api/v1/audit-events" and list(details) == ["cursor"]:
        return details["cursor"] == [CURSOR_INVALID]  # well formed, but not ours
    if label in {"POST /api/v1/webhooks", "PATCH /api/v1/webhooks/{webhook_id}"}:
        # Where the host resolves; and whether a host that passes the pattern is a valid
        # (IDNA) name, which no pattern can say.
        return list(details) == ["url"] and all(
            "private targets are not allowed" in m
            or m.startswith("cannot resolve the host")
            or m == "must be an absolute http:// or https:// URL"
            for m in details["url"]
        )
    if label in {"POST /api/v1/clients", "PATCH /api/v1/clients/{id}"}:
        # Rules across a client's fields (grants, type, scopes, redirect URIs); and a
        # URL the pattern lets through that is none (a port past 65535, a host that is
        # no name), which no pattern can say.
        return all(
            m in CROSS_FIELD_RULES or m == "is not a valid URL"
            for messages in details.values()
            for m in messages
        )
    field = NEW_PASSWORD_WRITES.get(label)
    if field is not None and list(details) == [field]:
        return all(message in PASSWORD_JUDGEMENTS for message in details[field])
    return False


def valid_data_refused_only_for_state(ctx: Any, response: Any, case: Any) -> None:
    """Positive data acceptance, with 400 allowed only for `semantic_refusal`."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return
    error = json.loads(response.content)["error"]
    label = f"{case.method.upper()} {case.path}"
    SEEN["valid data refused for state"] += 1
    assert semantic_refusal(label, error), f"valid data refused: {label} {error}"


def _config(max_examples: int, coverage: bool) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": max_examples, "mode": "all", "database": "none"},
            "phases": {"coverage": {"enabled": coverage}},
            "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]}},
        }
    )


# The document the app serves at /openapi.json (the first test below checks it is).
OPENAPI = create_app(Settings(server=ServerSettings(env=Environment.test))).openapi()
# Admin reaches every operation's logic: examples, the boundary/negative coverage phase
# and fuzzing. The other roles mostly meet 403 early, so fuzzing alone is enough there.
admin_schema = schemathesis.openapi.from_dict(OPENAPI, config=_config(10, coverage=True))
others_schema = schemathesis.openapi.from_dict(OPENAPI, config=_config(5, coverage=False))

# These end the caller's own session; each call gets a fresh account so the rest of the
# run keeps a live token.
SELF_ENDING = {("POST", "/api/v1/auth/logout"), ("DELETE", "/api/v1/users/me")}


def call_and_validate(case: Any, target: Target) -> None:
    if (case.method.upper(), case.path) in SELF_ENDING:
        headers = target.throwaway()
    else:
        headers = target.headers
    case.call_and_validate(
        headers=headers,
        app=target.app,
        additional_checks=[http_contract, valid_data_refused_only_for_state],
    )


async def test_the_fuzzed_document_is_the_one_served(api: Api) -> None:
    for path in ("/openapi.json", "/api/v1/openapi.json"):
        response = await api.client.get(path)
        assert response.status_code == 200
        assert response.json() == OPENAPI


@pytest.mark.parametrize("target", ["admin"], indirect=True)
@admin_schema.parametrize()
def test_admin_calls_match_the_openapi(case: Any, target: Target) -> None:
    call_and_validate(case, target)


# On SQLite only: these roles meet the authorization layer (a 403, their own records),
# which does not depend on the database; the admin's run above covers both databases.
@pytest.mark.parametrize("fuzz_database", ["sqlite"], indirect=True)
@pytest.mark.parametrize("target", ["user", "readonly"], indirect=True)
@others_schema.parametrize()
def test_user_and_readonly_calls_match_the_openapi(case: Any, target: Target) -> None:
    call_and_validate(case, target)
