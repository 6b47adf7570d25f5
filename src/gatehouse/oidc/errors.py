"""The refusals of the OpenID provider's protocol endpoints.

Relying parties are written against RFC 6749 §5.2: a protocol endpoint answers
`{"error": "<code>", "error_description": "..."}`, never Gatehouse's envelope, which
they would not understand. The API routes around the protocol (consent, browser
session, connected apps) keep the envelope.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from gatehouse.errors import GatehouseError


class OAuthError(Exception):
    """An RFC 6749 error answered as JSON by the token, revocation, introspection and
    userinfo endpoints (the authorize endpoint redirects it to the client instead)."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **self.headers}
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers=headers,
        )


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


def invalid_scope(description: str) -> OAuthError:
    return OAuthError("invalid_scope", description)


# --- the browser side's API routes (consent), in Gatehouse's envelope ----------------


class OAuthRequestInvalid(GatehouseError):
    """The authorize request a consent screen was opened for does not stand: the same
    checks as `/oauth2/authorize` failed. `details.error` is the OAuth error the
    authorize endpoint would have answered (`invalid_scope`, ...; `invalid_client` for
    an unknown or disabled client, `invalid_request` for a redirect URI it does not
    have), so the page can say what went wrong; nothing is sent to the client."""

    status = 400
    code = "OAUTH_REQUEST_INVALID"
    default_message = "The authorization request is not valid"

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description, details={"error": error})
