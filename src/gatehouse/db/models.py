"""Imports every model so that metadata (Alembic, tests) sees all tables."""

from gatehouse.audit.models import AuditEvent
from gatehouse.auth.models import RefreshToken, Session
from gatehouse.clients.models import OAuthClient, OAuthConsent
from gatehouse.db.base import Base
from gatehouse.emails.models import EmailMessage
from gatehouse.events.models import OutboxEvent
from gatehouse.mfa.models import MfaChallenge, RecoveryCode, TotpFactor
from gatehouse.oidc.models import OAuthBrowserSession, OAuthGrant, OAuthRefreshToken
from gatehouse.overview.models import AuditActivityHour, AuditActivityRollup
from gatehouse.passkeys.models import Passkey, WebAuthnChallenge
from gatehouse.recovery.models import ActionToken
from gatehouse.users.models import User, UserCount
from gatehouse.webhooks.models import WebhookDelivery, WebhookSubscription

__all__ = [
    "ActionToken",
    "AuditActivityHour",
    "AuditActivityRollup",
    "AuditEvent",
    "Base",
    "EmailMessage",
    "MfaChallenge",
    "OAuthBrowserSession",
    "OAuthClient",
    "OAuthConsent",
    "OAuthGrant",
    "OAuthRefreshToken",
    "OutboxEvent",
    "Passkey",
    "RecoveryCode",
    "RefreshToken",
    "Session",
    "TotpFactor",
    "User",
    "UserCount",
    "WebAuthnChallenge",
    "WebhookDelivery",
    "WebhookSubscription",
]
