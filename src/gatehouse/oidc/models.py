"""What the OpenID provider remembers: grants (one per authorization), their refresh
tokens, and the browser sessions that give single sign-on across a product's apps."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from gatehouse.db.base import Base
from gatehouse.kit.time import utcnow
from gatehouse.kit.types import UTCDateTime


class OAuthGrant(Base):
    """One authorization a client holds: a person's (born as an authorization code) or
    the client's own (`client_credentials`). Every token issued under it lives and dies
    with it: revoking the grant ends its access and refresh tokens at once."""

    __tablename__ = "oauth_grants"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    oauth_client_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("oauth_clients.id", ondelete="CASCADE")
    )
    # None for client_credentials: the client acts as itself.
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    # The login session the person's browser had when the code was issued; its end
    # does not end a grant that holds offline_access.
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("sessions.id", ondelete="SET NULL"), default=None
    )
    grant_type: Mapped[str] = mapped_column(String(30))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    # The user's auth_version when granted: a password change or a disabled account
    # moves it, and every token of the grant stops working.
    auth_version: Mapped[int | None] = mapped_column(Integer, default=None)
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # RFC 8176 methods of the login, space-separated (as sessions keep them).
    amr: Mapped[str | None] = mapped_column(String(100), default=None)
    # The authorization code: only its SHA-256, single use, short-lived, bound to the
    # redirect URI and the PKCE challenge it was issued with.
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    code_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    redirect_uri: Mapped[str | None] = mapped_column(String(2048), default=None)
    code_challenge: Mapped[str | None] = mapped_column(String(128), default=None)
    nonce: Mapped[str | None] = mapped_column(String(512), default=None)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(50), default=None)

    __table_args__ = (
        Index("idx_oauth_grants_user", "user_id"),
        Index("idx_oauth_grants_client", "oauth_client_id"),
        Index("idx_oauth_grants_session", "session_id"),
    )


class OAuthRefreshToken(Base):
    """A refresh token of a grant (only with `offline_access`): used once, then replaced;
    a used one presented again revokes the whole grant (reuse detection)."""

    __tablename__ = "oauth_refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("oauth_grants.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (Index("idx_oauth_refresh_tokens_grant", "grant_id"),)


class OAuthBrowserSession(Base):
    """The provider's cookie (`gatehouse_op`): which login session a browser has, so
    `/oauth2/authorize` knows the person without asking again (single sign-on). It
    stands only while that login session does: logging out of Gatehouse, an admin
    ending the session or deleting the user ends it too."""

    __tablename__ = "oauth_browser_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("sessions.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("idx_oauth_browser_sessions_session", "session_id"),)
