"""The scrubber on events shaped as Sentry's SDK builds them: what an operator needs
(the error, where, which request, which user id) stays; nothing else about a person,
and no credential, does."""

from __future__ import annotations

import json
import logging
from typing import Any

from gatehouse.observability.scrub import FILTERED, before_breadcrumb, before_send

JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI1ZjBjIn0.c2lnbmF0dXJlLWJ5dGVz"
SECRETS = [
    "jane@example.com",
    "Jane Doe",
    "hunter2-pass",
    "hunter3-new",
    "r3fr3sh-cookie",
    "csrf-9a8b",
    "verify-tok-77",
    "hook-key-12",
    "203.0.113.9",
    JWT,
    "whsec_c2VjcmV0LWtleQ==",
    "$2b$12$" + "N" * 53,
    "Mozilla/5.0 (X11; Linux)",
]


def sentry_event() -> dict[str, Any]:
    """A FastAPI request's error as the SDK hands it to before_send (send_default_pii
    off would keep some of this out; the scrubber does not count on it)."""
    return {
        "event_id": "8d3e0c5b6f9a4d6e9b1f2a3c4d5e6f70",
        "level": "error",
        "platform": "python",
        "logger": "gatehouse.http",
        "transaction": "/api/v1/auth/verify-email",
        "exception": {
            "values": [
                {
                    "type": "IntegrityError",
                    "module": "sqlalchemy.exc",
                    "value": (
                        "(sqlalchemy.dialects.postgresql.asyncpg.IntegrityError) <class "
                        "'asyncpg.exceptions.UniqueViolationError'>: duplicate key value "
                        'violates unique constraint "uq_users_email"\nDETAIL:  Key '
                        "(email)=(jane@example.com) already exists."
                    ),
                    "mechanism": {"type": "generic", "handled": True},
                    "stacktrace": {
                        "frames": [
                            {
                                "function": "create",
                                "module": "gatehouse.users.service",
                                "lineno": 88,
                                "context_line": "        await self.session.flush()",
                                "vars": {"password": "hunter2-pass", "email": "jane@example.com"},
                            }
                        ]
                    },
                }
            ]
        },
        "request": {
            "method": "POST",
            "url": "https://id.example.com/api/v1/auth/verify-email?token=verify-tok-77",
            "query_string": "token=verify-tok-77",
            "headers": {
                "Authorization": f"Bearer {JWT}",
                "Cookie": "gatehouse_refresh=r3fr3sh-cookie",
                "X-CSRF-Token": "csrf-9a8b",
                "User-Agent": "Mozilla/5.0 (X11; Linux)",
                "X-Forwarded-For": "203.0.113.9",
                "Content-Type": "application/json",
                "X-Request-ID": "req-42",
            },
            "cookies": {"gatehouse_refresh": "r3fr3sh-cookie"},
            "data": {"email": "jane@example.com", "password": "hunter2-pass"},
            "env": {"REMOTE_ADDR": "203.0.113.9"},
        },
        "user": {
            "id": "5f0c7a52-3f7e-4f8e-9c52-1a2b3c4d5e6f",
            "email": "jane@example.com",
            "username": "Jane Doe",
            "ip_address": "203.0.113.9",
        },
        "breadcrumbs": {
            "values": [
                {
                    "type": "http",
                    "category": "httpx",
                    "data": {
                        "url": "https://hooks.example.net/in?key=hook-key-12",
                        "http.query": "key=hook-key-12",
                        "method": "POST",
                        "status_code": 200,
                    },
                },
                {
                    "type": "log",
                    "category": "gatehouse.auth",
                    "message": "{'event': 'auth.login_failed', 'email': 'jane@example.com'}",
                    "data": {"refresh_token": "r3fr3sh-cookie", "new_email": "jane@example.com"},
                },
            ]
        },
        "extra": {
            "sys.argv": ["gatehouse", "create-admin", "--password", "hunter2-pass"],
            "payload": {
                "new_password": "hunter3-new",
                "name": "Jane Doe",
                "secret": "whsec_c2VjcmV0LWtleQ==",
            },
            "hash": "$2b$12$" + "N" * 53,
        },
        "contexts": {
            "runtime": {"name": "CPython", "version": "3.11.7"},
            "trace": {
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                "span_id": "00f067aa0ba902b7",
            },
        },
        "tags": {"request_id": "req-42"},
        "sdk": {"name": "sentry.python.fastapi", "version": "2.76.0"},
    }


def test_a_request_error_keeps_what_helps_and_loses_every_personal_or_secret_value() -> None:
    scrubbed = before_send(sentry_event(), {})
    text = json.dumps(scrubbed)
    for secret in SECRETS:
        assert secret not in text, secret

    # What an operator needs is still there.
    assert scrubbed["user"] == {"id": "5f0c7a52-3f7e-4f8e-9c52-1a2b3c4d5e6f"}
    assert scrubbed["tags"] == {"request_id": "req-42"}
    assert scrubbed["request"]["method"] == "POST"
    assert scrubbed["request"]["url"] == "https://id.example.com/api/v1/auth/verify-email"
    assert scrubbed["request"]["headers"]["Content-Type"] == "application/json"
    assert scrubbed["request"]["headers"]["Authorization"] == FILTERED
    assert set(scrubbed["request"]) == {"method", "url", "headers"}
    [error] = scrubbed["exception"]["values"]
    assert error["type"] == "IntegrityError"
    assert "duplicate key value violates unique constraint" in error["value"]
    [frame] = error["stacktrace"]["frames"]
    assert frame["function"] == "create"
    assert "vars" not in frame
    assert scrubbed["contexts"]["runtime"]["name"] == "CPython"
    assert scrubbed["sdk"]["name"] == "sentry.python.fastapi"
    assert "sys.argv" not in scrubbed["extra"]
    assert (
        scrubbed["breadcrumbs"]["values"][0]["data"]["url"]
        == "https://hooks.example.net/in?[Filtered]"
    )


def test_a_log_line_report_shows_its_event_name_and_filtered_fields() -> None:
    """What structlog hands the stdlib: the event dict as the record's message."""
    line = {
        "event": "email.send_failed",
        "email_id": "0b6f5ac2",
        "to": "jane@example.com",
        "email": "jane@example.com",
        "error": "SMTP 550 <jane@example.com>: mailbox unavailable",
        "request_id": "req-77",
        "level": "error",
        "timestamp": "2026-01-15T10:30:00Z",
    }
    record = logging.LogRecord("gatehouse.emails", logging.ERROR, __file__, 1, line, (), None)
    event = {"level": "error", "logentry": {"message": str(line)}, "extra": {"_logger": "x"}}

    scrubbed = before_send(event, {"log_record": record})

    assert scrubbed["logentry"]["message"] == "email.send_failed"
    assert scrubbed["tags"] == {"request_id": "req-77"}
    fields = scrubbed["extra"]["log"]
    assert fields["email_id"] == "0b6f5ac2"
    assert fields["email"] == FILTERED
    assert "jane@example.com" not in json.dumps(scrubbed)

    # A breadcrumb says the line's event and fields; it is scrubbed with its event.
    crumb = before_breadcrumb(
        {"message": str(line), "category": "gatehouse.emails"}, {"log_record": record}
    )
    assert crumb["message"] == "email.send_failed"
    assert crumb["data"]["email_id"] == "0b6f5ac2"
    sent = before_send({"level": "error", "breadcrumbs": {"values": [crumb]}}, {})
    assert "jane@example.com" not in json.dumps(sent)
