"""Annotated field types shared by the request schemas."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

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


def _clean_name(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    value = unicodedata.normalize("NFC", value).strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_LENGTH:
        raise ValueError(f"must be at most {MAX_LENGTH} characters once normalised")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Email = Annotated[
    str,
    BeforeValidator(_strict_str),
    StringConstraints(max_length=MAX_LENGTH),
    AfterValidator(normalise_email),
    Field(examples=["jane@example.com"]),
]
Name = Annotated[
    str,
    BeforeValidator(_strict_str),
    StringConstraints(min_length=1, max_length=MAX_LENGTH),
    AfterValidator(_clean_name),
    Field(examples=["Jane Doe"]),
]
# Length and strength rules live in the password policy, which knows the settings;
# this bound only keeps absurd inputs away from it.
Password = Annotated[
    str,
    BeforeValidator(_strict_str),
    StringConstraints(min_length=1, max_length=1024),
    AfterValidator(_no_nul),
    Field(examples=["correct horse battery staple"]),
]
Text = Annotated[str, BeforeValidator(_strict_str), AfterValidator(_no_nul)]
