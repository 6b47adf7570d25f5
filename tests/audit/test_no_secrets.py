"""AUD-05: no audit row holds a secret.

Every audited route runs (all the coverage flows, in one database), then every column of
every audit row, details and personal data included, is searched for each password the
tests typed, each access and refresh token and emailed token they were given, each
webhook secret and the credentials in a webhook URL's path and query, and for the
shapes of such things: a bcrypt hash (`$2b$`), a JWT (`eyJ….eyJ…`), `whsec_`.
The application's own log lines of the run are searched too.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.audit.coverage_support import FLOWS, JWT, SETTINGS, Scenario, audit_rows, row_text
from tests.factories import Api
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
