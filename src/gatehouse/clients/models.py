from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gatehouse.db.base import Base
from gatehouse.kit.time import utcnow
from gatehouse.kit.types import UTCDateTime


class OAuthClient(Base):
    """An application allowed to ask Gatehouse to log people in ("Log in with Gatehouse")."""

    __tablename__ = "oauth_clients"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # The public identifier the application sends ("gh_" + 22 URL-safe characters).
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # "confidential" (a server that keeps a secret) or "public" (a browser or native app).
    type: Mapped[str] = mapped_column(String(20))
    # SHA-256 hex of the secret: a 256-bit random value needs no slow hash, and a
    # database dump yields nothing to authenticate with. None for public clients.
    secret_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    grant_types: Mapped[list[str]] = mapped_column(JSON)
    # First-party: the consent screen is skipped.
    trusted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    logo_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, server_default=func.now()
    )
    # The admin who registered it; null when made by the CLI or once that user is gone.
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class OAuthConsent(Base):
    """The scopes a user has allowed a client to have, asked once per new scope."""

    __tablename__ = "oauth_consents"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # The client's row id (oauth_clients.id), not its public client_id.
    oauth_client_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("oauth_clients.id", ondelete="CASCADE"), primary_key=True
    )
    scopes: Mapped[list[str]] = mapped_column(JSON)
    granted_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, server_default=func.now()
    )

    # Deleting a client removes its consents: found by this index, not a scan.
    __table_args__ = (Index("idx_oauth_consents_client", "oauth_client_id"),)
