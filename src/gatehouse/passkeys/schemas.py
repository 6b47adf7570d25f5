from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StringConstraints

from gatehouse.kit.fields import NAME_SCHEMA, Password, Text
from gatehouse.kit.schemas import RequestBody, Schema

NAME_MAX = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _string(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _clean_name(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    value = unicodedata.normalize("NFC", value).strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > NAME_MAX:
        raise ValueError(f"must be at most {NAME_MAX} characters once trimmed")
    return value


# What the user calls the passkey ("Work laptop"), trimmed; the bound before trimming
# only keeps absurd input away.
PasskeyName = Annotated[
    str,
    BeforeValidator(_string),
    StringConstraints(min_length=1, max_length=4 * NAME_MAX),
    AfterValidator(_clean_name),
    # The schema says what the validator checks: no control character, not blank.
    Field(examples=["Work laptop"], json_schema_extra={**NAME_SCHEMA, "maxLength": NAME_MAX}),
]
# The browser's PublicKeyCredential as JSON (`credential.toJSON()`); its parts are
# checked by the WebAuthn verification, which answers INVALID_PASSKEY for any flaw.
Credential = Annotated[
    dict[str, Any],
    Field(description="The PublicKeyCredential as JSON, as `credential.toJSON()` returns it"),
]


class PasskeyRead(Schema):
    id: uuid.UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None
    backed_up: bool = Field(description="Synced to the user's other devices (a cloud passkey)")
    transports: list[str]


class RegistrationOptionsRequest(RequestBody):
    current_password: Password | None = Field(
        default=None, description="Needed while you have no second factor"
    )


class CeremonyOptions(BaseModel):
    """A WebAuthn challenge: pass `options` to the browser, send `challenge_id` back."""

    challenge_id: uuid.UUID
    options: dict[str, Any] = Field(
        description="PublicKeyCredentialCreationOptionsJSON (registration) or "
        "PublicKeyCredentialRequestOptionsJSON (authentication)"
    )


class PasskeyCreate(RequestBody):
    challenge_id: uuid.UUID
    name: PasskeyName
    credential: Credential


class PasskeyCreated(BaseModel):
    passkey: PasskeyRead
    recovery_codes: list[str] = Field(
        description="New recovery codes when this passkey turned MFA on; else empty"
    )


class PasskeyRename(RequestBody):
    name: PasskeyName


class LoginOptionsRequest(RequestBody):
    mfa_token: Text | None = Field(
        default=None,
        max_length=512,
        description="The second step of a password login (from 401 MFA_REQUIRED); "
        "omit it for a passwordless login",
    )


class PasskeyLogin(RequestBody):
    challenge_id: uuid.UUID
    credential: Credential
