from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from pydantic.config import JsonDict

from gatehouse.kit.fields import NAME_SCHEMA, Email, Name, NewPassword, Password, Text
from gatehouse.kit.schemas import RequestBody, Schema

# Far above our 43-character refresh tokens, so that any token-shaped string (an access
# token posted by mistake, ~800 characters) is answered `INVALID_GRANT`, not a
# validation error about its length.
REFRESH_TOKEN_MAX_LENGTH = 4096


class PasswordGrant(RequestBody):
    """The source's JSON body; `username` is the email address."""

    grant_type: Literal["password"] = "password"
    username: Text = Field(max_length=320, examples=["user@example.com"])
    password: Password


class RefreshGrant(RequestBody):
    grant_type: Literal["refresh_token"]
    refresh_token: Text = Field(max_length=REFRESH_TOKEN_MAX_LENGTH)


# Which fields each grant needs, said in JSON Schema (the form is one model).
_FORM_GRANTS: JsonDict = {
    "oneOf": [
        {
            "properties": {"grant_type": {"const": "password"}},
            "required": ["grant_type", "username", "password"],
        },
        {
            "properties": {"grant_type": {"const": "refresh_token"}},
            "required": ["grant_type", "refresh_token"],
        },
    ]
}


class OAuthForm(BaseModel):
    """The OAuth2 form (RFC 6749 §4.3, §6) that OAuth2 clients send."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_FORM_GRANTS)

    grant_type: Literal["password", "refresh_token"]
    username: Text | None = Field(default=None, max_length=320)
    password: Password | None = None
    refresh_token: Text | None = Field(default=None, max_length=REFRESH_TOKEN_MAX_LENGTH)
    scope: Text | None = None
    client_id: Text | None = None


class RefreshRequest(RequestBody):
    refresh_token: Text | None = Field(
        default=None,
        max_length=REFRESH_TOKEN_MAX_LENGTH,
        description="Required in JSON mode; omit it in cookie mode (the gatehouse_refresh cookie)",
    )


class LogoutRequest(RequestBody):
    # Strict: `0`, `1` or `"true"` for a boolean is a client bug, refused like any wrong type.
    all: StrictBool = Field(
        default=False, description="End every session of yours, not just this one"
    )


class RegisterRequest(RequestBody):
    email: Email
    name: Name = Field(json_schema_extra=NAME_SCHEMA)
    password: NewPassword


class SignupAccepted(BaseModel):
    """The answer to a sign-up, the same whether or not the address had an account."""

    status: Literal["check_your_email"] = "check_your_email"
    message: str = Field(
        examples=["Thanks: we have sent an email to this address; follow it to continue."]
    )


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int = Field(description="Seconds until the access token expires")


class CookieTokenResponse(BaseModel):
    """Cookie mode: the refresh token is in the HttpOnly `gatehouse_refresh` cookie."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int = Field(description="Seconds until the access token expires")
    csrf_token: str = Field(
        description="Also in the gatehouse_csrf cookie; send it as X-CSRF-Token to refresh"
    )


class SessionRead(Schema):
    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip: str | None
    current: bool = False


class JWK(BaseModel):
    model_config = ConfigDict(extra="allow")
    kty: str
    kid: str
    use: str
    alg: str
    n: str
    e: str


class JWKS(BaseModel):
    keys: list[JWK]
