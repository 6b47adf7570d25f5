"""The data export document (`gatehouse.user-export/1`), field by field.

The shape is a contract (docs/privacy.md): fields are only ever added, never renamed
or removed, without a new format version.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from gatehouse.audit.models import AuditEvent
from gatehouse.users.models import Role

ExportFormat = Literal["gatehouse.user-export/1"]
EXPORT_FORMAT: ExportFormat = "gatehouse.user-export/1"
# pii keys that describe the client of a request: the actor's, not the subject's.
_CLIENT_KEYS = frozenset({"ip", "user_agent"})


class _Part(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ExportProfile(_Part):
    """The account as stored (never the password hash)."""

    id: uuid.UUID
    email: str
    name: str
    role: Role
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None
    email_verified_at: datetime | None
    deleted_at: datetime | None


class ExportSession(_Part):
    """One login, live or ended (never a token or its hash)."""

    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    absolute_expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    ip: str | None
    user_agent: str | None


class ExportEmail(_Part):
    """A mail Gatehouse sent or owes the user (the body is left out: it may hold a link
    with a one-time token)."""

    kind: str
    to_address: str
    subject: str
    status: str
    created_at: datetime
    sent_at: datetime | None


class ExportActionToken(_Part):
    """A one-time token mailed to the user (verify an address, reset a password)."""

    purpose: str
    email: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


class ExportGrant(BaseModel):
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None


class ExportApplication(BaseModel):
    """An application the user logged in to with Gatehouse (an OpenID client): the
    scopes they consented to (`consented_at` null for a first-party app, never asked)
    and each authorization it holds or held (never a code or token)."""

    client_id: str
    name: str
    consented_scopes: list[str]
    consented_at: datetime | None
    grants: list[ExportGrant]


class ExportFactor(BaseModel):
    """A second factor of the user's: its kind, name and dates (never a secret, a key
    or a code). `kind`: "totp" (an authenticator app; `confirmed_at` null while it is
    pending), "passkey", or "recovery_code" (one row per code, `used_at` once used)."""

    kind: Literal["totp", "passkey", "recovery_code"]
    name: str | None
    created_at: datetime
    confirmed_at: datetime | None
    last_used_at: datetime | None
    used_at: datetime | None


class ExportAuditEvent(BaseModel):
    """An audit row the user did or that was about them.

    `actor` says who acted: "self", "other" (another account, e.g. an admin: only its
    role is shown) or "none" (an anonymous attempt or a system job). The IP and user
    agent of a request the subject did not make, or anyone else's identity, are never
    shown.
    """

    id: int
    occurred_at: datetime
    action: str
    outcome: str
    reason: str | None
    actor: Literal["self", "other", "none"]
    actor_role: str | None
    target_type: str | None
    target_id: str | None
    request_id: str | None
    details: dict[str, Any]
    pii: dict[str, Any] | None

    @classmethod
    def of(cls, row: AuditEvent, subject: uuid.UUID) -> ExportAuditEvent:
        """The row as its subject may see it: nothing that identifies anyone else."""
        by_self = row.actor_id == subject
        actor = "self" if by_self else "none" if row.actor_id is None else "other"
        about_other_user = row.target_type == "user" and row.target_id != str(subject)
        pii = {k: v for k, v in (row.pii or {}).items() if k != "salt"}
        if actor != "self":
            # A request the subject did not make: another account's, or an anonymous
            # client's (a stranger trying their address). Its IP and user agent are that
            # person's data, not the subject's.
            pii = {k: v for k, v in pii.items() if k not in _CLIENT_KEYS}
        if about_other_user:
            # The subject acted on someone else (an admin): only their own client shows.
            pii = {k: v for k, v in pii.items() if k in _CLIENT_KEYS}
        return cls(
            id=row.id,
            occurred_at=row.occurred_at,
            action=row.action,
            outcome=row.outcome,
            reason=row.reason,
            actor=actor,
            actor_role=row.actor_role,
            target_type=row.target_type,
            target_id=None if about_other_user else row.target_id,
            request_id=row.request_id,
            details=row.details or {},
            pii=pii or None,
        )


class ExportEvent(BaseModel):
    """An event Gatehouse published about the user (still in the outbox)."""

    event_type: str
    event_id: uuid.UUID
    timestamp: str


class UserExport(BaseModel):
    """Everything Gatehouse holds about one user, as one JSON document (GDPR Art. 15, 20)."""

    format: ExportFormat = EXPORT_FORMAT
    exported_at: datetime
    user: ExportProfile
    sessions: list[ExportSession]
    emails: list[ExportEmail]
    action_tokens: list[ExportActionToken]
    factors: list[ExportFactor]
    applications: list[ExportApplication]
    audit_events: list[ExportAuditEvent]
    events: list[ExportEvent]
