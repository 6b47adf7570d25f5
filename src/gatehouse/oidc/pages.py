"""The few pages the provider renders itself: an authorize request it cannot send
back, "signed out", and the logout confirmation.

Plain HTML: no script and no style (the `/oauth2` paths get the API's CSP,
`default-src 'none'`), every value escaped. Never cached, never framed (the CSP's
`frame-ancestors 'none'` and `X-Frame-Options: DENY` come with the path).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from fastapi.responses import HTMLResponse

from gatehouse.oidc import protocol

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _page(title: str, body: str, status: int) -> HTMLResponse:
    html = (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title)} — Gatehouse</title>\n</head>\n"
        f"<body>\n<main>\n<h1>{escape(title)}</h1>\n{body}</main>\n</body>\n</html>\n"
    )
    return HTMLResponse(html, status_code=status, headers=_NO_STORE)


def error_page(message: str, status: int = 400) -> HTMLResponse:
    """An authorize request (or a logout form) Gatehouse will not act on; the page says
    why and sends nobody anywhere."""
    body = (
        f"<p>{escape(message)}</p>\n"
        "<p>Go back to the application and try again; if this keeps happening, tell "
        "its administrator.</p>\n"
    )
    return _page("This request cannot be completed", body, status)


def signed_out_page() -> HTMLResponse:
    body = "<p>You have signed out of Gatehouse. You can close this window.</p>\n"
    return _page("Signed out", body, 200)


def confirm_logout_page(fields: Mapping[str, str]) -> HTMLResponse:
    """Ask before ending the session; the form posts back with its CSRF value."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">\n'
        for name, value in fields.items()
    )
    body = (
        "<p>An application asks to sign you out of Gatehouse.</p>\n"
        f'<form method="post" action="{escape(protocol.END_SESSION_PATH)}">\n'
        f"{hidden}"
        '<button type="submit">Sign out</button>\n'
        "</form>\n"
    )
    return _page("Sign out?", body, 200)
