"""The rules about OAuth clients. Never commits: the caller's unit of work does."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy.orm.exc import StaleDataError

from gatehouse.audit.trail import Entry
from gatehouse.clients import credentials
from gatehouse.clients.errors import ClientIsPublic, ClientNotFound, InvalidClient
from gatehouse.clients.models import OAuthClient
from gatehouse.clients.repository import ClientRepository
from gatehouse.clients.rules import check_client
from gatehouse.clients.schemas import ClientCreate, ClientType, ListParams
from gatehouse.errors import VersionConflict
from gatehouse.events import outbox
from gatehouse.events.schemas import ClientCreated, ClientDeleted, ClientUpdated
from gatehouse.kit.time import utcnow
from gatehouse.uow import UnitOfWork

# What an edit may change, in the order events and audit rows name them.
EDITABLE = (
    "name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "scopes",
    "grant_types",
    "trusted",
    "logo_url",
)
# Small values an audit row shows before and after (URIs by field name only).
_AUDITED_VALUES = ("name", "scopes", "grant_types", "trusted", "enabled")
# A client id is at most this long; a longer one cannot name a client.
_CLIENT_ID_MAX = 64


class AuthMethod(StrEnum):
    """How a client proves itself at the token endpoint (RFC 6749 §2.3, OIDC Core §9)."""

    client_secret_basic = "client_secret_basic"  # noqa: S105 (a method's name)
    client_secret_post = "client_secret_post"  # noqa: S105
    none = "none"


class Issued(NamedTuple):
    """A client and its new secret in clear: only the hash is stored, so this is the one
    moment anyone can read it (shown once to the admin). None for a public client."""

    client: OAuthClient
    secret: str | None


def public_state(client: OAuthClient) -> dict[str, Any]:
    """Everything about a client that is not a secret, as events carry it."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "type": client.type,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "scopes": list(client.scopes),
        "grant_types": list(client.grant_types),
        "trusted": client.trusted,
        "logo_url": client.logo_url,
        "enabled": client.enabled,
    }


class ClientService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.session = uow.session
        self.repo = ClientRepository(uow.session)

    # --- reads --------------------------------------------------------------------------

    async def list(self, params: ListParams) -> tuple[Sequence[OAuthClient], int]:
        rows, total = await self.repo.page(params.page, params.page_size)
        details = {"view": "list", "page": params.page, "returned": len(rows)}
        self._audit("client.read", None, details=details)
        return rows, total

    async def get(self, client_pk: uuid.UUID) -> OAuthClient:
        """Read one client (audited as `client.read`)."""
        client = await self._find(client_pk)
        self._audit("client.read", client.id, details={"view": "get"})
        return client

    async def find(self, ref: str) -> OAuthClient:
        """A client by its id or its public client_id, as an operator types either."""
        client: OAuthClient | None = None
        with contextlib.suppress(ValueError):
            client = await self.repo.get(uuid.UUID(ref))
        if client is None and len(ref) <= _CLIENT_ID_MAX:
            client = await self.repo.by_client_id(ref)
        if client is None:
            raise ClientNotFound(ref)
        return client

    async def _find(self, client_pk: uuid.UUID) -> OAuthClient:
        client = await self.repo.get(client_pk)
        if client is None:
            raise ClientNotFound(client_pk)
        return client

    async def _for_write(self, client_pk: uuid.UUID, expected_version: int | None) -> OAuthClient:
        client = await self._find(client_pk)
        if expected_version is not None and expected_version != client.version:
            raise VersionConflict()
        return client

    # --- writes -------------------------------------------------------------------------

    async def create(self, data: ClientCreate) -> Issued:
        """A new client; a confidential one with a fresh secret (read it from the result)."""
        check_client(
            type=data.type,
            redirect_uris=data.redirect_uris,
            scopes=data.scopes,
            grant_types=data.grant_types,
        )
        now = utcnow()
        secret = credentials.new_secret() if data.type == ClientType.confidential else None
        client = OAuthClient(
            id=uuid.uuid4(),
            client_id=credentials.new_client_id(),
            name=data.name,
            type=data.type.value,
            secret_hash=credentials.hash_secret(secret) if secret is not None else None,
            secret_rotated_at=now if secret is not None else None,
            redirect_uris=list(data.redirect_uris),
            post_logout_redirect_uris=list(data.post_logout_redirect_uris),
            scopes=[scope.value for scope in data.scopes],
            grant_types=[grant.value for grant in data.grant_types],
            trusted=data.trusted,
            logo_url=data.logo_url,
            enabled=True,
            created_at=now,
            updated_at=now,
            created_by=self.uow.actor.user_id,
        )
        self.repo.add(client)
        await self._flush()
        await outbox.record(
            self.uow,
            ClientCreated(id=client.id, **public_state(client), version=client.version),
            aggregate_id=client.id,
        )
        state = public_state(client)
        self._audit(
            "client.create",
            client.id,
            details={"client_id": client.client_id, "type": client.type}
            | {name: state[name] for name in _AUDITED_VALUES},
        )
        return Issued(client, secret)

    async def update(
        self, client_pk: uuid.UUID, changes: dict[str, Any], expected_version: int | None
    ) -> OAuthClient:
        """Change any of EDITABLE (`type` never changes); the result must pass the rules."""
        client = await self._for_write(client_pk, expected_version)
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise ValueError(f"not editable: {sorted(unknown)}")
        after = {name: _plain(changes.get(name, getattr(client, name))) for name in EDITABLE}
        check_client(
            type=client.type,
            redirect_uris=after["redirect_uris"],
            scopes=after["scopes"],
            grant_types=after["grant_types"],
        )
        before = public_state(client)
        for name in EDITABLE:
            if after[name] != before[name]:
                setattr(client, name, after[name])
        await self._changed(client, before, "client.update")
        return client

    async def set_enabled(
        self, client_pk: uuid.UUID, enabled: bool, expected_version: int | None
    ) -> OAuthClient:
        """Enable or disable a client; a disabled one fails every authentication."""
        client = await self._for_write(client_pk, expected_version)
        before = public_state(client)
        client.enabled = enabled
        await self._changed(client, before, "client.enable" if enabled else "client.disable")
        return client

    async def _changed(self, client: OAuthClient, before: dict[str, Any], action: str) -> None:
        """Store an edit, announce and audit it; nothing at all when nothing changed."""
        after = public_state(client)
        changed = [name for name in (*EDITABLE, "enabled") if after[name] != before[name]]
        if not changed:
            return
        await self._flush()
        await outbox.record(
            self.uow,
            ClientUpdated(
                id=client.id, **public_state(client), changed=changed, version=client.version
            ),
            aggregate_id=client.id,
        )
        details: dict[str, Any] = {"fields": changed}
        for name in _AUDITED_VALUES:
            if name in changed:
                details[name] = {"from": before[name], "to": after[name]}
        self._audit(action, client.id, details=details)

    async def delete(self, client_pk: uuid.UUID, expected_version: int | None) -> None:
        """Remove a client and every consent given to it."""
        client = await self._for_write(client_pk, expected_version)
        event = ClientDeleted(id=client.id, client_id=client.client_id, version=client.version)
        details = {"client_id": client.client_id, "name": client.name, "type": client.type}
        await self.repo.delete(client)
        await self._flush()
        await outbox.record(self.uow, event, aggregate_id=event.id)
        self._audit("client.delete", event.id, details=details)

    async def rotate_secret(self, client_pk: uuid.UUID, expected_version: int | None) -> Issued:
        """A new secret for a confidential client; the old one stops working at once."""
        client = await self._for_write(client_pk, expected_version)
        if client.type != ClientType.confidential:
            raise ClientIsPublic()
        secret = credentials.new_secret()
        client.secret_hash = credentials.hash_secret(secret)
        client.secret_rotated_at = utcnow()
        await self._flush()
        self._audit("client.rotate_secret", client.id, details={"client_id": client.client_id})
        return Issued(client, secret)

    # --- the protocol's check -----------------------------------------------------------

    async def authenticate(
        self, client_id: str, secret: str | None, method: AuthMethod
    ) -> OAuthClient:
        """The client that `client_id` and `secret` prove, or InvalidClient.

        A confidential client authenticates with its secret (Basic or in the body); a
        public client with none, and sending one is refused rather than ignored (a
        secret where none exists is a misconfiguration or a probe). Unknown, wrong,
        missing or disabled: one refusal, after the same hash and constant-time
        comparison, so the answer and its timing do not tell which.
        """
        client = None
        if len(client_id) <= _CLIENT_ID_MAX:
            client = await self.repo.by_client_id(client_id)
        if method == AuthMethod.none:
            ok = (
                client is not None
                and secret is None
                and client.type == ClientType.public
                and client.enabled
            )
        else:
            confidential = client is not None and client.type == ClientType.confidential
            stored = client.secret_hash if client is not None and confidential else None
            matches = credentials.secret_matches(secret or "", stored)
            ok = matches and bool(secret) and client is not None and client.enabled
        if not ok or client is None:
            raise InvalidClient(basic=method == AuthMethod.client_secret_basic)
        return client

    # --- helpers ------------------------------------------------------------------------

    def _audit(
        self, action: str, client_pk: uuid.UUID | None, details: dict[str, Any] | None = None
    ) -> None:
        self.uow.audit.record(
            Entry(
                action,
                target_type="client",
                target_id=str(client_pk) if client_pk is not None else None,
                details=details or {},
            )
        )

    async def _flush(self) -> None:
        try:
            await self.session.flush()
        except StaleDataError:
            raise VersionConflict() from None


def _plain(value: Any) -> Any:
    """Request values as stored: enums by value, lists copied."""
    if isinstance(value, list):
        return [item.value if isinstance(item, StrEnum) else item for item in value]
    if isinstance(value, StrEnum):
        return value.value
    return value
