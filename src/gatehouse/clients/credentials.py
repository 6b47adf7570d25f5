"""Client ids and secrets: how they are made, stored and compared."""

from __future__ import annotations

import hashlib
import hmac
import secrets

CLIENT_ID_PREFIX = "gh_"
# A prefix secret scanners can be taught to look for.
SECRET_PREFIX = "ghcs_"  # noqa: S105 (a prefix, not a secret)
# Compared against when the client is unknown or has no secret, so every refusal costs
# the same hash and comparison as a wrong secret.
_DUMMY_HASH = hashlib.sha256(b"gatehouse: no such client").hexdigest()


def new_client_id() -> str:
    """'gh_' and 22 URL-safe characters: 128 random bits, public."""
    return CLIENT_ID_PREFIX + secrets.token_urlsafe(16)


def new_secret() -> str:
    """'ghcs_' and 43 URL-safe characters: 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 hex. A secret of 256 random bits cannot be guessed, so a slow hash
    (bcrypt) would only cost every token request time, not an attacker anything."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str | None) -> bool:
    """Constant time in the secret's bytes and the stored hash."""
    given = hash_secret(secret)
    expected = stored_hash if stored_hash is not None else _DUMMY_HASH
    return hmac.compare_digest(given, expected) and stored_hash is not None
