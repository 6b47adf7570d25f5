"""Why a restore is refused: each a 409 with a code of its own, so a client can tell.

An address taken meanwhile is no restore rule: it is `EmailTaken`, the answer every
write that would reuse a live account's email gets."""

from __future__ import annotations

from gatehouse.errors import Conflict


class UserNotDeleted(Conflict):
    code = "USER_NOT_DELETED"
    default_message = "The user is not deleted; there is nothing to restore"


class UserAlreadyErased(Conflict):
    code = "USER_ERASED"
    default_message = "The user's personal data has been erased; the account cannot be restored"


class RestoreWindowClosed(Conflict):
    code = "RESTORE_WINDOW_CLOSED"
    default_message = "The grace period is over; the account is due for erasure"
