"""The refusal of an emailed verification or password-reset token."""

from __future__ import annotations

from gatehouse.errors import GatehouseError


class InvalidToken(GatehouseError):
    """Unknown, expired and used tokens get this one answer: nothing to tell apart."""

    status = 400
    code = "INVALID_TOKEN"
    default_message = "This link is invalid, has expired or was already used; ask for a new one"
