"""What an error report may say: Sentry's `before_send` and `before_breadcrumb`.

A report keeps the request id (a tag) and the user's id, and loses everything that
could identify a person or open an account: emails, names, addresses, passwords,
tokens, secrets, cookies, Authorization headers, request bodies and query strings,
frame locals. Two passes over the whole event, recursively:

- by key: a field whose name says secret (password, token, secret, cookie,
  authorization...), personal (email, name, client_ip...) or query string keeps its
  key, and its value becomes "[Filtered]";
- by value: any text (an exception's message, a log line, a breadcrumb) has its email
  addresses, JWTs, bearer credentials, password hashes, webhook secrets, URL query
  strings, `password=...`-like pairs and the input a validation error quotes replaced.

Log lines are structlog's: a report made from one shows the line's event name as its
message and its fields (filtered by key) as `extra.log`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from gatehouse.kit.context import request_id_var

FILTERED = "[Filtered]"
REQUEST_ID_TAG = "request_id"

# A key holding one of these words holds a secret.
_SECRET_WORDS = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "csrf",
    "api_key",
    "apikey",
    "private_key",
    "signature",
    "credential",
    "dsn",
)
# Keys naming something about a person.
_PERSONAL_KEYS = frozenset(
    {
        "email",
        "name",
        "full_name",
        "display_name",
        "first_name",
        "last_name",
        "username",
        "ip",
        "ip_address",
        "client_ip",
        "remote_addr",
        "user_agent",
        "x_forwarded_for",
        "x_real_ip",
        "forwarded",
    }
)
# A query string kept apart from its URL (an HTTP client's breadcrumb, a span's data).
_QUERY_KEYS = frozenset({"query", "query_string", "http_query", "http_fragment", "url_query"})
# Parts of an event the SDK writes about itself (its name, the interpreter's, modules).
_SDK_PARTS = frozenset({"sdk", "modules", "debug_meta", "platform", "timestamp", "event_id"})
# Of a request, only these: no body, cookies, query string or environment.
_REQUEST_KEEP = ("method", "url", "headers")
# Frames' locals (off in the SDK's options; never sent even if turned on).
_FRAME_LOCALS = "vars"
# Fields of a structlog line that are already elsewhere in the report.
_LOG_LINE_OWN = frozenset({"event", "timestamp", "level", "logger", "exception", "exc_info"})

_WORDS = "|".join(_SECRET_WORDS)
_PERSONAL_TEXT = "|".join(sorted(_PERSONAL_KEYS - {"ip", "forwarded"}))
_TEXT_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # A URL's query string (a verification link's token, a webhook's credential).
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s?#\"'<>]*)\?[^\s\"'<>#]*", re.I), rf"\1?{FILTERED}"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), FILTERED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), FILTERED),
    (re.compile(r"\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+", re.I), rf"\1 {FILTERED}"),
    (re.compile(r"\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}"), FILTERED),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"), FILTERED),
    # password=..., "token": "...", 'secret': '...' (a form, JSON, a dict's repr).
    (
        re.compile(
            rf"""(["']?[\w-]*(?:{_WORDS})[\w-]*["']?\s*[:=]\s*)(["'])(?:(?!\2).)*\2""", re.I
        ),
        rf"\1\2{FILTERED}\2",
    ),
    (re.compile(rf"""\b([\w-]*(?:{_WORDS})[\w-]*=)[^&\s"',;]+""", re.I), rf"\1{FILTERED}"),
    # 'name': 'Jane Doe' in a dict's repr or JSON quoted into a message.
    (
        re.compile(
            rf"""(["']?\b(?:{_PERSONAL_TEXT})\b["']?\s*[:=]\s*)(["'])(?:(?!\2).)*\2""", re.I
        ),
        rf"\1\2{FILTERED}\2",
    ),
    # Pydantic's validation errors quote what was sent, whichever field it was.
    (
        re.compile(r"""(input_value=)(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^,\]\s]+)"""),
        rf"\1{FILTERED}",
    ),
]


def _normal(key: str) -> str:
    return key.lower().replace("-", "_").replace(".", "_")


def _sensitive(key: object, *, personal: bool) -> bool:
    if not isinstance(key, str):
        return False
    name = _normal(key)
    if name in _QUERY_KEYS or any(word in name for word in _SECRET_WORDS):
        return True
    return personal and (name in _PERSONAL_KEYS or name.endswith("_email"))


def scrub_text(text: str) -> str:
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def scrub_value(value: Any, *, personal: bool = True) -> Any:
    """A copy of `value` with sensitive keys' values and sensitive text filtered."""
    if isinstance(value, Mapping):
        return {
            key: FILTERED
            if _sensitive(key, personal=personal)
            else scrub_value(item, personal=personal)
            for key, item in value.items()
            if key != _FRAME_LOCALS
        }
    if isinstance(value, list | tuple):
        return [scrub_value(item, personal=personal) for item in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def _scrub_request(request: Any) -> dict[str, Any]:
    if not isinstance(request, Mapping):
        return {}
    kept: dict[str, Any] = {}
    for key in _REQUEST_KEEP:
        if key not in request:
            continue
        value = request[key]
        if key == "url" and isinstance(value, str):
            value = value.split("?", 1)[0].split("#", 1)[0]
        kept[key] = scrub_value(value)
    return kept


def _user(user: Any) -> dict[str, Any] | None:
    user_id = user.get("id") if isinstance(user, Mapping) else None
    return {"id": str(user_id)} if user_id is not None else None


def scrub_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as it may leave the process."""
    scrubbed: dict[str, Any] = {}
    for key, value in event.items():
        if key in _SDK_PARTS:
            scrubbed[key] = value
        elif key == "user":
            user = _user(value)
            if user is not None:
                scrubbed[key] = user
        elif key == "request":
            scrubbed[key] = _scrub_request(value)
        elif key == "contexts":
            # The runtime's and the OS's "name" are not a person's.
            scrubbed[key] = scrub_value(value, personal=False)
        else:
            scrubbed[key] = scrub_value(value)
    return scrubbed


def _log_line(hint: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The structlog event dict behind a stdlib log record, if that is what it was."""
    record = (hint or {}).get("log_record")
    if isinstance(record, logging.LogRecord) and isinstance(record.msg, dict):
        return record.msg
    return None


def before_send(event: Any, hint: Any) -> Any:
    """Sentry's `before_send` (and `before_send_transaction`)."""
    line = _log_line(hint)
    if line is not None:
        name = str(line.get("event", ""))
        event["logentry"] = {"message": name, "formatted": name, "params": []}
        event["extra"] = {"log": {k: v for k, v in line.items() if k not in _LOG_LINE_OWN}}
    tags = event.setdefault("tags", {})
    if isinstance(tags, dict) and REQUEST_ID_TAG not in tags:
        request_id = (line or {}).get("request_id") or request_id_var.get()
        if request_id:
            tags[REQUEST_ID_TAG] = str(request_id)
    # The command line can carry a password; its integration is off, this is a backstop.
    extra = event.get("extra")
    if isinstance(extra, dict):
        extra.pop("sys.argv", None)
    return scrub_event(event)


def before_breadcrumb(crumb: Any, hint: Any) -> Any:
    """Sentry's `before_breadcrumb`: a log line's breadcrumb in its own words.

    Not scrubbed here: a breadcrumb leaves the process only inside an event, which
    `before_send` scrubs whole, and every info line (each request's) makes one.
    """
    line = _log_line(hint)
    if line is not None:
        crumb["message"] = str(line.get("event", ""))
        crumb["data"] = {k: v for k, v in line.items() if k not in _LOG_LINE_OWN}
    return crumb
