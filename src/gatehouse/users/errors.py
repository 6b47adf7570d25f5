"""The refusals of a user editing their own account."""

from __future__ import annotations

from gatehouse.errors import Forbidden


class WrongPassword(Forbidden):
    audited = True
    code = "INVALID_CURRENT_PASSWORD"
    default_message = "The current password is not correct"


class ReauthenticationRequired(Forbidden):
    code = "REAUTHENTICATION_REQUIRED"
    default_message = "Changing your email needs your current password"
