"""The refusals of the OAuth client registry and of client authentication."""

from __future__ import annotations

from typing import ClassVar

from gatehouse.errors import Conflict, GatehouseError, NotFound


class ClientNotFound(NotFound):
    code = "CLIENT_NOT_FOUND"

    def __init__(self, client: object) -> None:
        super().__init__(f"Client '{client}' not found")


class ClientIsPublic(Conflict):
    code = "CLIENT_IS_PUBLIC"
    default_message = "A public client has no secret to rotate"


class InvalidClient(GatehouseError):
    """Client authentication failed (RFC 6749 §5.2). One answer for every reason (an
    unknown client, a wrong or missing secret, a disabled client, a public client that
    sent a secret), so a caller learns nothing about which client ids exist."""

    status = 401
    code = "INVALID_CLIENT"
    default_message = "Client authentication failed"
    # The OAuth `error` value the protocol endpoints answer with.
    oauth_error: ClassVar[str] = "invalid_client"

    def __init__(self, *, basic: bool = False) -> None:
        # RFC 6749 §5.2: a client that authenticated with HTTP Basic gets its challenge.
        headers = {"WWW-Authenticate": 'Basic realm="gatehouse"'} if basic else None
        super().__init__(headers=headers)
