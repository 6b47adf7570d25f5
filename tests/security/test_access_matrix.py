"""AC-03 (and AC-06 over the same run): the role x operation x {own, other} matrix.

The operations come from the app itself (its OpenAPI document plus every route it
serves), so a new route without an entry in POLICY fails here before it ships.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import text

from tests.factories import Api
from tests.security.access_support import (
    OTHER,
    OWN,
    Operation,
    World,
    build_app,
    documented_operations,
    fill_path,
    make_world,
    served_operations,
    valid_body,
)

ROLES = ("anonymous", "readonly", "user", "admin")
# The OpenID provider's protocol endpoints answer OAuth errors, not the envelope.
OAUTH_PREFIX = "/oauth2/"


@dataclass(frozen=True)
class Split:
    """Different answers for the caller's own resource and someone else's."""

    own: int
    other: int


Expected = int | Split


def allow(
    anonymous: Expected, readonly: Expected, user: Expected, admin: Expected
) -> dict[str, Expected]:
    return {"anonymous": anonymous, "readonly": readonly, "user": user, "admin": admin}


PUBLIC_200 = allow(200, 200, 200, 200)

# The roles table of docs/api.md, one row per operation.
POLICY: dict[Operation, dict[str, Expected]] = {
    ("GET", "/health"): PUBLIC_200,
    ("GET", "/health/ready"): PUBLIC_200,
    # No role involved: the scraper's address decides (loopback here, docs/metrics.md).
    ("GET", "/metrics"): PUBLIC_200,
    ("GET", "/.well-known/jwks.json"): PUBLIC_200,
    ("GET", "/openapi.json"): PUBLIC_200,  # docs are on outside production (AC-14)
    ("GET", "/api/v1/openapi.json"): PUBLIC_200,
    ("GET", "/docs"): PUBLIC_200,
    ("GET", "/redoc"): PUBLIC_200,
    ("POST", "/api/v1/auth/token"): PUBLIC_200,
    ("POST", "/api/v1/auth/refresh"): PUBLIC_200,
    ("POST", "/api/v1/auth/register"): allow(202, 202, 202, 202),
    ("POST", "/api/v1/auth/logout"): allow(401, 204, 204, 204),
    # Public: the same answer for everyone (a token nobody was sent is 400 INVALID_TOKEN).
    ("POST", "/api/v1/auth/verify-email/request"): allow(202, 202, 202, 202),
    ("POST", "/api/v1/auth/verify-email"): allow(400, 400, 400, 400),
    ("POST", "/api/v1/auth/password-reset/request"): allow(202, 202, 202, 202),
    ("POST", "/api/v1/auth/password-reset"): allow(400, 400, 400, 400),
    ("POST", "/api/v1/auth/email-change/undo"): allow(400, 400, 400, 400),
    ("GET", "/api/v1/users/me"): allow(401, 200, 200, 200),
    ("PUT", "/api/v1/users/me"): allow(401, 403, 200, 200),
    ("PATCH", "/api/v1/users/me"): allow(401, 403, 200, 200),
    ("DELETE", "/api/v1/users/me"): allow(401, 204, 204, 204),
    ("POST", "/api/v1/users/me/password"): allow(401, 204, 204, 204),
    ("GET", "/api/v1/users/me/sessions"): allow(401, 200, 200, 200),
    ("DELETE", "/api/v1/users/me/sessions"): allow(401, 204, 204, 204),
    ("DELETE", "/api/v1/users/me/sessions/{session_id}"): allow(
        401, Split(204, 404), Split(204, 404), Split(204, 404)
    ),
    ("GET", "/api/v1/users"): allow(401, 200, 403, 200),
    ("POST", "/api/v1/users"): allow(401, 403, 403, 201),
    ("GET", "/api/v1/users/{user_id}"): allow(401, 200, Split(200, 404), 200),
    ("PUT", "/api/v1/users/{user_id}"): allow(401, 403, 403, 200),
    ("PATCH", "/api/v1/users/{user_id}"): allow(401, 403, 403, 200),
    # An admin may delete themself while another admin remains (one always does here).
    ("DELETE", "/api/v1/users/{user_id}"): allow(401, 403, 403, 204),
    ("GET", "/api/v1/users/{user_id}/sessions"): allow(401, 200, 403, 200),
    ("DELETE", "/api/v1/users/{user_id}/sessions"): allow(401, 403, 403, 204),
    ("DELETE", "/api/v1/users/{user_id}/sessions/{session_id}"): allow(401, 403, 403, 204),
    ("GET", "/api/v1/webhooks"): allow(401, 200, 403, 200),
    ("POST", "/api/v1/webhooks"): allow(401, 403, 403, 201),
    ("GET", "/api/v1/webhooks/{webhook_id}"): allow(401, 200, 403, 200),
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): allow(401, 403, 403, 200),
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): allow(401, 403, 403, 204),
    ("POST", "/api/v1/webhooks/{webhook_id}/rotate-secret"): allow(401, 403, 403, 200),
    ("POST", "/api/v1/webhooks/{webhook_id}/test"): allow(401, 403, 403, 202),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): allow(401, 200, 403, 200),
    ("GET", "/api/v1/clients"): allow(401, 200, 403, 200),
    ("POST", "/api/v1/clients"): allow(401, 403, 403, 201),
    ("GET", "/api/v1/clients/{id}"): allow(401, 200, 403, 200),
    ("PATCH", "/api/v1/clients/{id}"): allow(401, 403, 403, 200),
    ("DELETE", "/api/v1/clients/{id}"): allow(401, 403, 403, 204),
    ("POST", "/api/v1/clients/{id}/disable"): allow(401, 403, 403, 200),
    ("POST", "/api/v1/clients/{id}/enable"): allow(401, 403, 403, 200),
    ("POST", "/api/v1/clients/{id}/rotate-secret"): allow(401, 403, 403, 200),
    ("GET", "/api/v1/users/me/export"): allow(401, 200, 200, 200),
    ("GET", "/api/v1/users/{user_id}/export"): allow(401, Split(200, 403), Split(200, 404), 200),
    # The matrix's target is a live user: restoring it is a conflict, not a success.
    ("POST", "/api/v1/users/{user_id}/restore"): allow(401, 403, 403, 409),
    ("GET", "/api/v1/audit-events"): allow(401, 403, 403, 200),
    ("GET", "/api/v1/audit-events/export"): allow(401, 403, 403, 200),
    ("GET", "/api/v1/overview"): allow(401, 403, 403, 200),
    # An mfa_token nobody was given: 401 MFA_TOKEN_INVALID, the same for everyone.
    ("POST", "/api/v1/auth/mfa/verify"): allow(401, 401, 401, 401),
    # Nobody here has a second factor: the method is not set up (400).
    ("POST", "/api/v1/auth/mfa/step-up"): allow(401, 400, 400, 400),
    ("GET", "/api/v1/users/me/mfa"): allow(401, 200, 200, 200),
    ("POST", "/api/v1/users/me/mfa/totp"): allow(401, 201, 201, 201),
    # In a fresh world (the enrolment above was a write): nothing pending.
    ("POST", "/api/v1/users/me/mfa/totp/confirm"): allow(401, 409, 409, 409),
    # Without MFA no step-up is needed, and there is nothing to remove.
    ("DELETE", "/api/v1/users/me/mfa/totp"): allow(401, 204, 204, 204),
    ("POST", "/api/v1/users/me/mfa/recovery-codes"): allow(401, 409, 409, 409),
    ("GET", "/api/v1/users/{user_id}/mfa"): allow(401, 200, 403, 200),
    ("DELETE", "/api/v1/users/{user_id}/mfa"): allow(401, 403, 403, 204),
    # Passkeys: every role manages its own; the matrix's callers have no MFA, so a
    # registration starts with the password. A made-up credential never verifies.
    ("POST", "/api/v1/auth/passkey/options"): PUBLIC_200,
    ("POST", "/api/v1/auth/passkey/verify"): allow(401, 401, 401, 401),
    ("POST", "/api/v1/users/me/passkeys/registration-options"): allow(401, 200, 200, 200),
    ("POST", "/api/v1/users/me/passkeys"): allow(401, 400, 400, 400),
    ("GET", "/api/v1/users/me/passkeys"): allow(401, 200, 200, 200),
    # Nobody's passkey: the caller has none, and another's id is as unknown.
    ("PATCH", "/api/v1/users/me/passkeys/{passkey_id}"): allow(401, 404, 404, 404),
    ("DELETE", "/api/v1/users/me/passkeys/{passkey_id}"): allow(401, 404, 404, 404),
    ("POST", "/api/v1/users/me/passkeys/authentication-options"): allow(401, 200, 200, 200),
    # The OpenID provider's back channel: no role plays a part (a client authenticates,
    # or an OAuth access token is the bearer). The matrix's JSON is no OAuth form (400
    # invalid_request), and a first-party token is no OAuth access token (401); the
    # protocol itself is tested in tests/oidc.
    ("GET", "/.well-known/openid-configuration"): PUBLIC_200,
    ("POST", "/oauth2/token"): allow(400, 400, 400, 400),
    ("GET", "/oauth2/userinfo"): allow(401, 401, 401, 401),
    ("POST", "/oauth2/userinfo"): allow(401, 401, 401, 401),
    ("POST", "/oauth2/revoke"): allow(400, 400, 400, 400),
    ("POST", "/oauth2/introspect"): allow(400, 400, 400, 400),
    # The OpenID provider's browser endpoints answer browsers, not roles: without a
    # client_id, the authorize error page (HTML, never a redirect); without the provider
    # cookie, nothing to end ("signed out").
    ("GET", "/oauth2/authorize"): allow(400, 400, 400, 400),
    ("GET", "/oauth2/end_session"): PUBLIC_200,
    ("POST", "/oauth2/end_session"): PUBLIC_200,
    # The client app's routes around them: any role, for the caller's own browser and
    # consents. The consent screen's read without a query is an invalid request.
    ("POST", "/api/v1/oauth2/session"): allow(401, 204, 204, 204),
    ("GET", "/api/v1/oauth2/consent"): allow(401, 400, 400, 400),
    ("POST", "/api/v1/oauth2/consent"): allow(401, 200, 200, 200),
    ("POST", "/api/v1/oauth2/consent/deny"): allow(401, 200, 200, 200),
    ("GET", "/api/v1/users/me/connected-apps"): allow(401, 200, 200, 200),
    # Nobody in a fresh world is connected to the client: nothing to remove.
    ("DELETE", "/api/v1/users/me/connected-apps/{client_id}"): allow(401, 404, 404, 404),
}

# An admin without a second factor when admins must have one: only these answer.
POLICY_OPEN = {
    ("GET", "/api/v1/users/me"): 200,
    ("GET", "/api/v1/users/me/mfa"): 200,
    ("POST", "/api/v1/auth/logout"): 204,
}
POLICY_CLOSED = (
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/users/me/sessions"),
    ("GET", "/api/v1/webhooks"),
    ("PATCH", "/api/v1/users/me"),
)

# What no response may carry, whoever asks (AC-06).
FORBIDDEN_KEYS = (
    '"password_hash"',
    '"auth_version"',
    '"token_hash"',
    '"failed_logins"',
    '"secret_hash"',
)


def cells() -> list[tuple[Operation, str, str]]:
    """Every (operation, role, variant) the matrix checks; anonymous has no "own"."""
    out: list[tuple[Operation, str, str]] = []
    for operation in POLICY:
        has_target = "{" in operation[1]
        for role in ROLES:
            variants = [OWN, OTHER] if has_target and role != "anonymous" else [OTHER]
            out.extend((operation, role, variant) for variant in variants)
    return out


def expected_status(operation: Operation, role: str, variant: str) -> int:
    rule = POLICY[operation][role]
    if isinstance(rule, Split):
        return rule.own if variant == OWN else rule.other
    return rule


async def test_every_served_route_has_a_policy_entry(api: Api) -> None:
    app = build_app(api)
    documented = documented_operations(app)
    served = served_operations(app)
    assert documented <= served
    missing = sorted(served - POLICY.keys())
    stale = sorted(POLICY.keys() - served)
    assert missing == [], f"routes without an entry in POLICY: {missing}"
    assert stale == [], f"POLICY entries for routes the app does not serve: {stale}"


# Who may call what is decided before any query: one database is enough for every cell
# (the routes' own tests run on both).
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_role_matrix_matches_the_policy_in_every_cell(api: Api) -> None:
    # A spare admin, so an admin deleting themself is never the last admin.
    await api.create_user("admin")
    matrix = cells()
    mismatches: list[str] = []
    bodies: list[str] = []
    worlds: dict[tuple[str, bool], World] = {}
    for (method, path), role, variant in matrix:
        # A world is reused until a request changes something (a 2xx write).
        key = (role, "{session_id}" in path and variant == OWN)
        if key not in worlds:
            worlds[key] = await make_world(
                api, None if role == "anonymous" else role, second_session=key[1]
            )
        world = worlds[key]
        headers = world.actor.headers if world.actor else {}
        # Each cell alone: no cookie of an earlier cell (the provider's, say) goes along.
        api.client.cookies.clear()
        response = await api.client.request(
            method,
            fill_path(path, world, variant),
            json=valid_body(method, path, world, variant),
            headers=headers,
        )
        want = expected_status((method, path), role, variant)
        where = f"{role:9} {variant:5} {method:6} {path}"
        if response.status_code != want:
            mismatches.append(f"{where}: {response.status_code}, policy {want}")
        html = response.headers.get("content-type", "").startswith("text/html")
        if response.status_code >= 400 and path.startswith(OAUTH_PREFIX):
            # RFC 6749 §5.2 / RFC 6750 §3, never the envelope (relying parties read these);
            # the browser endpoints answer a person with a page instead.
            if not html and set(response.json()) != {"error", "error_description"}:
                mismatches.append(f"{where}: not an OAuth error: {response.text}")
        elif response.status_code >= 400:
            error = response.json().get("error", {})
            if error.get("request_id") != response.headers.get("x-request-id"):
                mismatches.append(f"{where}: error without the envelope: {response.text}")
        challenge = response.headers.get("www-authenticate", "")
        if response.status_code == 401 and not challenge.startswith("Bearer"):
            mismatches.append(f"{where}: 401 without WWW-Authenticate: Bearer")
        bodies.append(response.text)
        if method != "GET" and response.is_success:
            worlds.clear()

    print(f"\nAC-03: {len(matrix)} cells, {len(mismatches)} mismatches")
    assert mismatches == []
    assert len(matrix) >= 4 * len(POLICY)

    # AC-06: nothing of the run carries a hash or an internal flag.
    async with api.runtime.db.session(write=False) as s:
        secrets = [row[0] for row in await s.execute(text("SELECT password_hash FROM users"))]
        secrets += [
            row[0] for row in await s.execute(text("SELECT token_hash FROM refresh_tokens"))
        ]
        secrets += [
            row[0]
            for row in await s.execute(
                text("SELECT secret_hash FROM oauth_clients WHERE secret_hash IS NOT NULL")
            )
        ]
    leaks = [
        f"response {i}: {marker}"
        for i, body in enumerate(bodies)
        for marker in (*FORBIDDEN_KEYS, "$2b$", *secrets)
        if marker in body
    ]
    print(f"AC-06: {len(bodies)} responses x {len(FORBIDDEN_KEYS) + 1 + len(secrets)} markers")
    assert leaks == []


@pytest.mark.parametrize("settings_overrides", [{"mfa_required_roles": "admin"}])
async def test_an_admin_without_mfa_where_admins_need_it_reaches_only_the_open_routes(
    api: Api,
) -> None:
    """GATEHOUSE_MFA_REQUIRED_ROLES=admin: the admin logs in, but every route except
    their profile, their MFA settings, step-up and logout is 403 MFA_ENROLLMENT_REQUIRED;
    a plain user is not concerned."""
    admin = await api.user("admin")
    user = await api.user("user")
    for method, path in POLICY_CLOSED:
        body = {"name": "New Name"} if method == "PATCH" else None
        refused = await api.client.request(method, path, json=body, headers=admin.headers)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["error"]["code"] == "MFA_ENROLLMENT_REQUIRED"
    assert (await api.client.get("/api/v1/users", headers=user.headers)).status_code == 403
    mine = await api.client.get("/api/v1/users/me/sessions", headers=user.headers)
    assert mine.status_code == 200
    for (method, path), status in POLICY_OPEN.items():
        answer = await api.client.request(method, path, headers=admin.headers)
        assert answer.status_code == status, (path, answer.text)
