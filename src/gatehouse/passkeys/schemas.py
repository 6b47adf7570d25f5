from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from gatehouse.kit.fields import Password, ShortName, Text
from gatehouse.kit.schemas import RequestBody, Schema

# What the user calls the passkey ("Work laptop").
PasskeyName = Annotated[ShortName, Field(examples=["Work laptop"])]
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
