"""AUD-05: no audit row holds a secret.

Every audited route runs (all the coverage flows, in one database), then every column of
every audit row, details and personal data included, is searched for each password the
tests typed, each access and refresh token and emailed token they were given, each
webhook secret and the credentials in a webhook URL's path and query, and for the
shapes of such things: a bcrypt hash (`$2b$`), a JWT (`eyJ….eyJ…`), `whsec_`.
The application's own log lines of the run are searched too, and two paths that once
leaked: a failed SQL statement's parameters and a webhook target's query string.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gatehouse.app import create_app
from gatehouse.runtime import Runtime
from gatehouse.worker.embedded import InProcessRunner
from tests.audit.coverage_support import FLOWS, JWT, SETTINGS, Scenario, audit_rows, row_text
from tests.factories import Api
from tests.http_receiver import HttpReceiver
from tests.logs import LogCapture

# Every action the flows cause: the scan covered rows of each kind.
ACTIONS = {
    "auth.login",
    "auth.refresh",
    "auth.refresh_reuse",
    "auth.logout",
    "auth.logout_all",
    "auth.register",
    "auth.password_change",
    "auth.email_verify_request",
    "auth.email_verify",
    "auth.password_reset_request",
    "auth.password_reset",
    "user.create",
    "user.update",
    "user.role_change",
    "user.delete",
    "user.list",
    "user.read",
    "session.list",
    "session.end",
    "session.end_all",
    "authz.denied",
    "webhook.create",
    "webhook.read",
    "webhook.update",
    "webhook.test",
    "webhook.rotate_secret",
    "webhook.delete",
    "oauth.token",
    "oauth.code_reused",
    "oauth.refresh_reused",
    "oauth.revoke",
    "oauth.authorize",
    "oauth.consent",
    "oauth.consent_denied",
    "oauth.consent_revoke",
    "oauth.logout",
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return SETTINGS


async def test_no_row_holds_a_password_hash_or_token(api: Api, json_logs: LogCapture) -> None:
    scenario = Scenario(api)
    for flow in FLOWS.values():
        await flow(scenario)
    secrets = scenario.secrets
    # The scan is only as good as what it looks for: every kind was seen.
    assert sum(1 for v in secrets if JWT.match(v)) >= 10
    assert sum(1 for v in secrets if v.startswith("whsec_")) == 2
    # A client's and its rotation, and the OAuth flow's relying party's.
    assert sum(1 for v in secrets if v.startswith("ghcs_")) == 3
    assert sum(1 for v in secrets if v.startswith("ghrt_")) >= 2  # OAuth refresh tokens
    assert sum(1 for v in secrets if v.startswith("ghac_")) >= 1  # an authorization code
    assert len(secrets) > 40

    rows = await audit_rows(api.runtime)
    assert {row.action for row in rows} >= ACTIONS
    sinks = {f"audit row {row.id} ({row.action})": row_text(row) for row in rows}
    sinks["application log"] = json_logs.text()
    hits = [
        (sink, what)
        for sink, text in sinks.items()
        for what in [
            *(f"secret {value[:6]}…" for value in secrets if value in text),
            *(["a bcrypt hash"] if "$2b$" in text else []),
            *(["a JWT"] if JWT.search(text) else []),
            *(["a webhook secret"] if "whsec_" in text else []),
        ]
    ]
    print(f"\nAUD-05: {len(rows)} audit rows and the log searched for {len(secrets)} secrets")
    assert hits == []


# A bcrypt-shaped hash and an address that only the failing statement below carries.
LEAKED_HASH = "$2b$12$" + "LeakCanaryHashLeakCanaryHashLeakCanaryHashLeakCan"
LEAKED_EMAIL = "leak-canary@example.com"
QUERY_SECRET = "QueryCredential7Q"


async def test_a_failed_statement_logs_none_of_its_parameters(
    runtime: Runtime, json_logs: LogCapture
) -> None:
    """A database error reaches the log with its traceback; SQLAlchemy's message would
    quote the statement's parameters (here a password hash and an email)."""
    app = create_app(runtime=runtime)

    async def failing_insert() -> None:
        async with runtime.db.session() as session:
            # NOT NULL columns missing: an IntegrityError on both databases.
            await session.execute(
                text("INSERT INTO users (id, email, password_hash) VALUES (:id, :email, :hash)"),
                {"id": uuid.uuid4().hex, "email": LEAKED_EMAIL, "hash": LEAKED_HASH},
            )

    app.add_api_route("/api/v1/failing-insert", failing_insert, methods=["POST"])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post("/api/v1/failing-insert")
    assert response.status_code == 500
    logged = json_logs.text()
    assert "http.unhandled_error" in logged
    assert "IntegrityError" in logged
    assert LEAKED_EMAIL not in logged
    assert "LeakCanaryHash" not in logged


async def test_a_webhook_delivery_logs_no_query_string(
    api: Api, runner: InProcessRunner, json_logs: LogCapture
) -> None:
    """httpx logs each request's full URL at INFO: a target's query often holds a key."""
    with HttpReceiver() as receiver:
        admin = await api.user("admin")
        created = await api.client.post(
            "/api/v1/webhooks",
            json={"url": f"{receiver.url}?key={QUERY_SECRET}", "event_types": ["*"]},
            headers=admin.headers,
        )
        assert created.status_code == 201, created.text
        tested = await api.client.post(
            f"/api/v1/webhooks/{created.json()['id']}/test", headers=admin.headers
        )
        assert tested.status_code in {200, 201, 202}, tested.text
        await runner.drain()
        (request,) = await receiver.wait_for(1)
    assert QUERY_SECRET in request.path
    assert QUERY_SECRET not in json_logs.text()
