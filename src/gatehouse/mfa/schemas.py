"""Request and response bodies of the MFA routes (docs/api.md, "MFA and passkeys")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from gatehouse.kit.fields import Password, Text
from gatehouse.kit.schemas import RequestBody
from gatehouse.passkeys.schemas import PasskeyRead

MethodName = Literal["totp", "recovery_code", "webauthn"]


# What each method needs, said in JSON Schema (the body is one model).
_METHOD_NEEDS: JsonDict = {
    "oneOf": [
        {
            "properties": {
                "method": {"enum": ["totp", "recovery_code"]},
                "code": {"type": "string", "minLength": 1},
            },
            "required": ["method", "code"],
        },
        {
            "properties": {
                "method": {"const": "webauthn"},
                "challenge_id": {"type": "string", "format": "uuid"},
                "credential": {"type": "object", "additionalProperties": True},
            },
            "required": ["method", "challenge_id", "credential"],
        },
    ]
}


class _Proof(RequestBody):
    model_config = ConfigDict(json_schema_extra=_METHOD_NEEDS)

    method: MethodName
    code: Text | None = Field(
        default=None,
        max_length=32,
        description="`totp`: the app's 6 digits; `recovery_code`: one of your codes",
        examples=["123456"],
    )
    challenge_id: uuid.UUID | None = Field(
        default=None, description="`webauthn`: from the authentication options"
    )
    credential: dict[str, Any] | None = Field(
        default=None,
        description="`webauthn`: the browser's PublicKeyCredential as JSON (`credential.toJSON()`)",
    )

    @model_validator(mode="after")
    def _what_the_method_needs(self) -> Self:
        if self.method == "webauthn":
            if self.challenge_id is None or self.credential is None:
                raise ValueError("method 'webauthn' needs challenge_id and credential")
        elif not self.code:
            raise ValueError(f"method '{self.method}' needs code")
        return self


class MfaVerifyRequest(_Proof):
    mfa_token: Text = Field(max_length=100, description="From the `401 MFA_REQUIRED` answer")


class StepUpRequest(_Proof):
    pass


class StepUpResponse(BaseModel):
    step_up_expires_at: datetime = Field(
        description="Until then this session may change its factors, email and password"
    )


class TotpEnrolRequest(RequestBody):
    current_password: Password


class TotpEnrolment(BaseModel):
    secret: str = Field(description="Base32, for typing into an app that cannot scan")
    otpauth_uri: str
    qr_svg: str = Field(description="The otpauth URI as an inline `<svg>` QR code")


class TotpConfirmRequest(RequestBody):
    code: Text = Field(max_length=32, examples=["123456"])


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(
        description="Shown once: each works once; [] when none were made"
    )


class TotpStatus(BaseModel):
    enabled: bool
    confirmed_at: datetime | None


class MfaStatus(BaseModel):
    enabled: bool = Field(description="A confirmed authenticator app or a passkey")
    required: bool = Field(description="Your role must have a second factor")
    totp: TotpStatus
    passkeys: list[PasskeyRead]
    recovery_codes_left: int
