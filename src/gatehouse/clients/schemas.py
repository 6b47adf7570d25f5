"""Request and response models of /api/v1/clients, and the shape rules of each field.

The rules that tie fields together (a public client and its grants, offline_access and
refresh_token...) are the service's (`rules.py`): a PATCH is checked against the
client as it will be, not against the body alone.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.config import JsonDict

from gatehouse.kit.fields import ShortName, Text
from gatehouse.kit.schemas import PageMeta, RequestBody, Schema, not_nullable

MAX_URI_LENGTH = 2048
MAX_URIS = 20
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
# RFC 8252 §7.3: a native app listens on the loopback interface, on a port it picks at
# run time, so these hosts may use http and any port.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class ClientType(StrEnum):
    confidential = "confidential"
    public = "public"


class Scope(StrEnum):
    openid = "openid"
    profile = "profile"
    email = "email"
    offline_access = "offline_access"
    roles = "roles"


class GrantType(StrEnum):
    authorization_code = "authorization_code"
    refresh_token = "refresh_token"  # noqa: S105 (a grant's name, not a secret)
    client_credentials = "client_credentials"


def _parts(value: str) -> tuple[str, str]:
    """The scheme and host of an absolute URL without credentials; ValueError if not."""
    if _CONTROL_OR_SPACE.search(value):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port that is not a number
    except ValueError:
        raise ValueError("is not a valid URL") from None
    del port
    if not parts.scheme or not parts.netloc or not parts.hostname:
        raise ValueError("must be an absolute URL (scheme://host/...)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials")
    return parts.scheme.lower(), parts.hostname.lower()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return str(address) in LOOPBACK_HOSTS


def check_redirect_uri(value: str) -> str:
    """An exact redirect target (RFC 9700 §2.1): https, or http on loopback (RFC 8252),
    no fragment (RFC 6749 §3.1.2), no wildcard; compared as a whole string later."""
    if "*" in value:
        raise ValueError("must not contain a wildcard: register each address exactly")
    if "#" in value:
        raise ValueError("must not contain a fragment (#)")
    scheme, host = _parts(value)
    if scheme == "https":
        return value
    if scheme == "http" and _is_loopback(host):
        return value
    raise ValueError("must use https (http only for 127.0.0.1, [::1] or localhost, with any port)")


def check_logo_url(value: str) -> str:
    scheme, _ = _parts(value)
    if scheme != "https":
        raise ValueError("must use https")
    return value


def _distinct(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("must not repeat a value")
    return values


# https anywhere; http only on a loopback host, written as the validator knows it.
_URI_PATTERN = (
    r"^([Hh][Tt][Tt][Pp][Ss]://[^/?#@*\x00-\x20\x7f]+"
    r"|[Hh][Tt][Tt][Pp]://(127\.0\.0\.1|\[::1\]|localhost)(:[0-9]{1,5})?)"
    r"([/?][^#*\x00-\x20\x7f]*)?$"
)
RedirectUri = Annotated[
    Text,
    StringConstraints(min_length=1, max_length=MAX_URI_LENGTH),
    AfterValidator(check_redirect_uri),
    Field(
        description=(
            "Absolute https URL, matched exactly; http only on 127.0.0.1, [::1] or "
            "localhost (any port); no fragment, no wildcard, no credentials"
        ),
        examples=["https://app.example.com/callback"],
        json_schema_extra={"pattern": _URI_PATTERN},
    ),
]
RedirectUris = Annotated[
    list[RedirectUri],
    Field(max_length=MAX_URIS, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_distinct),
]
Scopes = Annotated[
    list[Scope],
    Field(min_length=1, max_length=len(Scope), json_schema_extra={"uniqueItems": True}),
    AfterValidator(_distinct),
]
GrantTypes = Annotated[
    list[GrantType],
    Field(min_length=1, max_length=len(GrantType), json_schema_extra={"uniqueItems": True}),
    AfterValidator(_distinct),
]
ClientName = Annotated[ShortName, Field(examples=["Acme CRM"])]
LogoUrl = Annotated[
    Text,
    StringConstraints(min_length=1, max_length=MAX_URI_LENGTH),
    AfterValidator(check_logo_url),
    Field(
        description="An https URL of the logo the consent screen shows",
        examples=["https://app.example.com/logo.png"],
        json_schema_extra={
            "pattern": r"^[Hh][Tt][Tt][Pp][Ss]://[^/?#@\x00-\x20\x7f]+([/?#][^\x00-\x20\x7f]*)?$"
        },
    ),
]


class ClientCreate(RequestBody):
    name: ClientName
    type: ClientType = Field(
        description="`confidential`: a server that keeps a secret; `public`: a browser "
        "or native app (no secret, so no client_credentials grant)"
    )
    redirect_uris: RedirectUris = Field(
        default_factory=list,
        description="Where the authorization code may be sent; at least one with "
        "`authorization_code`",
    )
    post_logout_redirect_uris: RedirectUris = Field(default_factory=list)
    scopes: Scopes
    grant_types: GrantTypes
    trusted: bool = Field(default=False, description="First-party: people are not asked to consent")
    logo_url: LogoUrl | None = None


def _patch_schema(schema: JsonDict) -> None:
    not_nullable(schema)
    # `logo_url: null` removes the logo: the one field a PATCH may set to null.
    properties = schema.get("properties")
    if isinstance(properties, dict) and "logo_url" in properties:
        logo = properties["logo_url"]
        properties["logo_url"] = {"anyOf": [logo, {"type": "null"}]}


class ClientPatch(RequestBody):
    """Any field but `type` (a client cannot change kind: register a new one);
    `logo_url: null` removes the logo. Enable or disable with their own endpoints."""

    model_config = ConfigDict(json_schema_extra=_patch_schema)

    name: ClientName | None = None
    redirect_uris: RedirectUris | None = None
    post_logout_redirect_uris: RedirectUris | None = None
    scopes: Scopes | None = None
    grant_types: GrantTypes | None = None
    trusted: bool | None = None
    logo_url: LogoUrl | None = None

    @model_validator(mode="after")
    def _something(self) -> ClientPatch:
        if not self.model_fields_set:
            raise ValueError(
                "give at least one of name, redirect_uris, post_logout_redirect_uris, "
                "scopes, grant_types, trusted, logo_url"
            )
        for name in self.model_fields_set - {"logo_url"}:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ClientRead(Schema):
    id: uuid.UUID = Field(description="The client's id in this API (`/api/v1/clients/{id}`)")
    client_id: str = Field(
        description="The public identifier the application sends",
        examples=["gh_4yK0x2QfC9pLm7Wb1sTz8A"],
    )
    name: str = Field(examples=["Acme CRM"])
    type: ClientType
    redirect_uris: list[str] = Field(examples=[["https://app.example.com/callback"]])
    post_logout_redirect_uris: list[str]
    scopes: list[Scope]
    grant_types: list[GrantType]
    trusted: bool
    logo_url: str | None
    enabled: bool
    secret_rotated_at: datetime | None = Field(
        description="When the current secret was issued (confidential clients only)"
    )
    created_at: datetime
    updated_at: datetime
    created_by: uuid.UUID | None = Field(
        description="The admin who registered it; null when made by the CLI"
    )


class ClientWithSecret(ClientRead):
    """The client and its secret, shown only in this response."""

    client_secret: str | None = Field(
        description="Keep it: it is never shown again (rotate it to get a new one). "
        "Null for a public client, which has none",
        examples=["ghcs_2mN7sQk0Yb4rVt9Wx1Lp6Hd3Fg8Jc5Ze0Ua7Ro2Ti4E"],
    )


class ClientSecret(BaseModel):
    """A confidential client's new secret; the previous one stopped working."""

    model_config = ConfigDict(extra="ignore")

    client_id: str
    client_secret: str = Field(description="Keep it: it is never shown again")
    secret_rotated_at: datetime


class ClientList(BaseModel):
    data: list[ClientRead]
    meta: PageMeta


class ListParams(BaseModel):
    page: int = Field(default=1, ge=1, le=100_000)
    page_size: int = Field(default=20, ge=1, le=100)
