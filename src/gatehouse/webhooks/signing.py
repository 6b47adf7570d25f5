"""Signing secrets and signatures of the Standard Webhooks spec (standardwebhooks.com).

The signature of a delivery is `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))
where the key is the secret's base64 part, decoded. The receiver recomputes it with
the secret it was given and compares in constant time.

Signing needs the secret in clear, so it is stored encrypted (`seal`), bound to its
subscription, and decrypted for each attempt (`unseal`). A subscription saved before
encryption came holds its secret in clear (`whsec_…`, no `v1.` prefix): it still signs,
and `gatehouse keys rotate-encryption` encrypts it (`SECRET_COLUMN`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

from gatehouse.kit.encryption import EncryptedColumn, KeyRing, is_token
from gatehouse.webhooks.models import WebhookSubscription

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes
SIGNATURE_VERSION = "v1"


def new_secret() -> str:
    """A fresh signing secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key a secret stands for."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one delivery attempt."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def secret_context(webhook_id: uuid.UUID) -> str:
    """Where a subscription's secret lives: its token decrypts there only."""
    return f"webhook.secret:{webhook_id}"


def seal(ring: KeyRing, webhook_id: uuid.UUID, secret: str) -> str:
    """The stored form of a secret: a token of the ring's current key."""
    return ring.encrypt(secret, context=secret_context(webhook_id))


def unseal(ring: KeyRing, webhook_id: uuid.UUID, stored: str) -> str:
    """The secret in clear (EncryptionError if it cannot be decrypted)."""
    if not is_token(stored):
        return stored  # saved in clear before encryption; rotate-encryption seals it
    return ring.decrypt_text(stored, context=secret_context(webhook_id))


SECRET_COLUMN = EncryptedColumn(
    label="webhook_subscriptions.secret",
    column=WebhookSubscription.secret,
    key=WebhookSubscription.id,
    context=secret_context,
    clear_legacy=True,
)
