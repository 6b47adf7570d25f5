from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gatehouse.db.base import Base
from gatehouse.kit.time import utcnow
from gatehouse.kit.types import UTCDateTime


class Passkey(Base):
    """A WebAuthn credential registered by a user (a second factor and a passkey)."""

    __tablename__ = "passkeys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    # COSE public key: public by nature, stored as is.
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    name: Mapped[str] = mapped_column(String(100))
    transports: Mapped[list[str]] = mapped_column(JSON, default=list)
    aaguid: Mapped[str | None] = mapped_column(String(36), default=None)
    # A synced (backed-up) credential is "swk" in the token's amr, a device-bound one "hwk".
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (Index("idx_passkeys_user_id", "user_id"),)


class WebAuthnChallenge(Base):
    """A registration or authentication ceremony's challenge: single use, short-lived."""

    __tablename__ = "webauthn_challenges"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    challenge: Mapped[bytes] = mapped_column(LargeBinary(64))
    # "register", "login" (passwordless), "mfa" (the login's second step), "step_up".
    purpose: Mapped[str] = mapped_column(String(20))
    # None for a passwordless login: who answers is known only from the credential.
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    mfa_challenge_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("mfa_challenges.id", ondelete="CASCADE"), default=None
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, server_default=func.now()
    )

    __table_args__ = (Index("idx_webauthn_challenges_expires_at", "expires_at"),)
