from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from gatehouse.kit.fields import Email, NewPassword, Text
from gatehouse.kit.schemas import RequestBody
from gatehouse.users.schemas import UserRead

# Far above our 43-character tokens, so a mangled or foreign token answers
# INVALID_TOKEN like any other wrong one, instead of a validation error.
TOKEN_MAX_LENGTH = 512


class EmailRequest(RequestBody):
    email: Email


class TokenBody(RequestBody):
    token: Text = Field(max_length=TOKEN_MAX_LENGTH, description="The token from the email's link")


class PasswordReset(RequestBody):
    token: Text = Field(max_length=TOKEN_MAX_LENGTH, description="The token from the email's link")
    new_password: NewPassword


class Accepted(BaseModel):
    """The same answer whether or not the address belongs to an account."""

    message: str = Field(
        examples=["If an account with this email exists, we have sent it an email."]
    )


class VerifiedUser(UserRead):
    email_verified_at: datetime
