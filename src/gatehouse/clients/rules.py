"""The rules that tie a client's fields together, checked on the client as it will be
after a create or an edit; each refusal names the field to change."""

from __future__ import annotations

from collections.abc import Sequence

from gatehouse.clients.schemas import ClientType, GrantType, Scope
from gatehouse.errors import ValidationFailed

# Every message `check_client` can give: rules across fields, which no JSON Schema of one
# field can say (the API tests accept exactly these as refusals of well-formed bodies).
CROSS_FIELD_RULES = frozenset(
    {
        "client_credentials needs a confidential client",
        "refresh_token needs authorization_code",
        "offline_access needs the refresh_token grant",
        "authorization_code needs at least one redirect URI",
    }
)


def check_client(
    *,
    type: str,
    redirect_uris: Sequence[str],
    scopes: Sequence[str],
    grant_types: Sequence[str],
) -> None:
    problems: dict[str, list[str]] = {}

    def refuse(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    grants = set(grant_types)
    if GrantType.client_credentials in grants and type != ClientType.confidential:
        # A public client cannot keep a secret, so it cannot prove it is itself alone.
        refuse("grant_types", "client_credentials needs a confidential client")
    if GrantType.refresh_token in grants and GrantType.authorization_code not in grants:
        refuse("grant_types", "refresh_token needs authorization_code")
    if Scope.offline_access in set(scopes) and GrantType.refresh_token not in grants:
        refuse("scopes", "offline_access needs the refresh_token grant")
    if GrantType.authorization_code in grants and not redirect_uris:
        refuse("redirect_uris", "authorization_code needs at least one redirect URI")
    if problems:
        raise ValidationFailed(problems)
