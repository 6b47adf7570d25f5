"""Annotated field types shared by the request schemas."""

from __future__ import annotations

import re
import unicodedata
from functools import partial
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints
from pydantic.config import JsonDict

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The columns' width (varchar(255)); a name is checked again after normalising, because
# NFC can lengthen a string (U+0958 becomes two characters).
MAX_LENGTH = 255


def _strict_str(value: object) -> object:
    # "true", 1 or ["admin"] for a string field is a client bug; say so instead of coercing.
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def normalise_email(value: str) -> str:
    """One spelling per address: NFKC, trimmed, lower case; ValueError if not an email."""
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    # No length check after NFKC: email_validator refuses more than 254 characters.
    folded = unicodedata.normalize("NFKC", value).strip().lower()
    try:
        info = validate_email(folded, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from None
    return info.normalized.lower()


def clean_name(value: str, max_length: int = MAX_LENGTH) -> str:
    """A name as people type it (a user's, a passkey's, a client's): no control
    character, NFC, trimmed, not blank, at most `max_length` characters then."""
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    value = unicodedata.normalize("NFC", value).strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > max_length:
        raise ValueError(f"must be at most {max_length} characters once normalised")
    return value


# The JSON Schema of `_no_nul` (PostgreSQL text cannot hold a NUL).
NO_NUL = "^[^\\u0000]*$"


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Email = Annotated[
    str,
    BeforeValidator(_strict_str),
    StringConstraints(max_length=MAX_LENGTH),
    AfterValidator(normalise_email),
    # email-validator's bound is 254 (RFC 5321's path limit), below the column's 255.
    Field(examples=["jane@example.com"], json_schema_extra={"format": "email", "maxLength": 254}),
]
Name = Annotated[
    str,
    BeforeValidator(_strict_str),
    StringConstraints(min_length=1, max_length=MAX_LENGTH),
    AfterValidator(clean_name),
    Field(examples=["Jane Doe"]),
]
# Length and strength rules live in the password policy, which knows the settings;
# this bound only keeps absurd inputs away from it.
Password = Annotated[
    str,
    BeforeValidator(_strict_str),
    StringConstraints(min_length=1, max_length=1024),
    AfterValidator(_no_nul),
    Field(examples=["correct horse battery staple"], json_schema_extra={"pattern": NO_NUL}),
]
# No NUL (PostgreSQL text cannot hold one), said in the document too.
Text = Annotated[
    str,
    BeforeValidator(_strict_str),
    AfterValidator(_no_nul),
    Field(json_schema_extra={"pattern": NO_NUL}),
]
# A new password (registration, creation, change, reset): the policy's bounds, said in
# the document; the service enforces them (auth.passwords.password_problems) with a
# field error. bcrypt reads 72 bytes, so the limit is in UTF-8 bytes, which JSON Schema
# cannot say: maxLength is the bound for ASCII, the description says the rest.
NEW_PASSWORD_SCHEMA: JsonDict = {
    "pattern": NO_NUL,
    "minLength": 8,
    "maxLength": 72,
    "description": (
        "At least GATEHOUSE_PASSWORD_MIN_LENGTH characters (8 by default) and at most "
        "72 bytes in UTF-8 (72 ASCII characters; fewer with accented letters or emoji), "
        "else 400 with a field error; no NUL; not a common password, and not containing "
        "the account's email address or name"
    ),
}
NewPassword = Annotated[Password, Field(json_schema_extra=NEW_PASSWORD_SCHEMA)]
# A name's rules as JSON Schema (the validators above enforce them): no ASCII control
# character, and something besides white space (str.strip's, NEL and NBSP included).
NAME_SCHEMA: JsonDict = {
    "pattern": (
        r"^[^\x00-\x1f\x7f]*"
        r"[^\s\x00-\x1f\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
        r"[^\x00-\x1f\x7f]*$"
    )
}
SHORT_NAME_MAX = 100
# A thing's name as its owner types it (a passkey's, an OAuth client's): at most 100
# characters once trimmed; the bound before trimming only keeps absurd input away, and
# the schema says what the validators check.
ShortName = Annotated[
    str,
    BeforeValidator(_strict_str),
    StringConstraints(min_length=1, max_length=4 * SHORT_NAME_MAX),
    AfterValidator(partial(clean_name, max_length=SHORT_NAME_MAX)),
    Field(json_schema_extra={**NAME_SCHEMA, "maxLength": SHORT_NAME_MAX}),
]
