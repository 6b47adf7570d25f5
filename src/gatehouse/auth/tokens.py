"""Access tokens (RS256 JWTs with a `kid`, published as JWKS) and opaque refresh tokens."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from jwt.algorithms import RSAAlgorithm

from gatehouse.config import ConfigError, Settings
from gatehouse.errors import NotAuthenticated
from gatehouse.kit.time import utcnow

ALGORITHM = "RS256"
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - RFC 9068: keeps other JWTs from passing as access tokens
MIN_RSA_BITS = 2048
KEY_FILE = "jwt-private.pem"
# Tokens whose signature this process has checked, kept until they expire: an RS256
# check with a 3072-bit key was about a tenth of an authenticated request's CPU, paid
# again on every request of the same token. Keyed by the token's SHA-256, so an entry
# is ~200 bytes whatever the token's length: 4,096 of them are under a megabyte.
VERIFIED_CACHE_SIZE = 4096
# The `amr` of a password-only login, and of a session or token from before `amr` existed.
PASSWORD_AMR: tuple[str, ...] = ("pwd",)


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    auth_version: int
    role: str
    expires_at: int
    # How the session's login was made (RFC 8176); a token from before `amr` existed
    # was a password login.
    amr: tuple[str, ...] = PASSWORD_AMR


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@functools.lru_cache(maxsize=4)
def _parsed_pem(pem: str) -> PrivateKeyTypes:
    # Parsing checks the RSA key's consistency (~50 ms for 2048 bits): a process that
    # builds several runtimes (the CLI, the test suite) pays it once per key. The key
    # object is immutable; a refused PEM raises and is not cached.
    return serialization.load_pem_private_key(pem.encode(), password=None)


class SigningKey:
    """The RSA key that signs access tokens, and the JWKS other systems verify with."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        if private_key.key_size < MIN_RSA_BITS:
            raise ConfigError(
                f"GATEHOUSE_JWT_PRIVATE_KEY: an RSA key of at least {MIN_RSA_BITS} bits is needed"
            )
        self.private_key = private_key
        self.public_key = private_key.public_key()
        public_jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.public_key, as_dict=True)
        # RFC 7638 thumbprint: the same key always gets the same kid, on every node.
        canonical = json.dumps(
            {k: public_jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True
        )
        self.kid = _b64(hashlib.sha256(canonical.encode()).digest())
        self.jwk = {**public_jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}

    @classmethod
    def from_pem(cls, pem: str) -> SigningKey:
        try:
            key = _parsed_pem(pem)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                "GATEHOUSE_JWT_PRIVATE_KEY: not an unencrypted PEM private key"
            ) from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError("GATEHOUSE_JWT_PRIVATE_KEY: must be an RSA key (RS256)")
        return cls(key)

    @classmethod
    def load(cls, settings: Settings) -> SigningKey:
        """The configured key, or on the embedded default one generated into the data dir."""
        if settings.auth.jwt_private_key is not None:
            return cls.from_pem(settings.auth.jwt_private_key.get_secret_value())
        path = settings.server.data_dir / KEY_FILE
        if path.exists():
            return cls.from_pem(path.read_text())
        return cls._generate(path)

    @classmethod
    def _generate(cls, path: Path) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            # Another worker process generated it first: everyone signs with that one.
            return cls.from_pem(_read_when_written(path))
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return cls(key)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}


def _read_when_written(path: Path, attempts: int = 50) -> str:
    """The key file's content once its writer has finished (it is created, then filled)."""
    for _ in range(attempts):
        text = path.read_text()
        if text.rstrip().endswith("-----END PRIVATE KEY-----"):
            return text
        time.sleep(0.1)
    return path.read_text()


class TokenService:
    def __init__(self, settings: Settings, key: SigningKey) -> None:
        self.key = key
        self.issuer = settings.auth.jwt_issuer
        self.audience = settings.auth.jwt_audience
        self.leeway = settings.auth.jwt_leeway_seconds
        self.ttl = settings.auth.access_token_ttl_seconds
        self._verified: OrderedDict[bytes, AccessClaims] = OrderedDict()

    def issue_access_token(
        self,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        role: str,
        auth_version: int,
        amr: Sequence[str] = PASSWORD_AMR,
    ) -> str:
        now = int(utcnow().timestamp())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "sid": str(session_id),
            "ver": auth_version,
            "role": role,
            "amr": list(amr),
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(
            claims,
            self.key.private_key,
            algorithm=ALGORITHM,
            headers={"kid": self.key.kid, "typ": ACCESS_TOKEN_TYPE},
        )

    def decode_access_token(self, token: str) -> AccessClaims:
        """Verify everything about a bearer token; any doubt is a 401.

        A token verified before is not verified again while it is unexpired: its bytes
        are the same, so its signature and claims are too; only the clock moved, and
        expiry is checked on every use. Whether its session still stands is the
        principal's check, on every request (`AuthService.principal`).
        """
        digest = hashlib.sha256(token.encode()).digest()
        known = self._verified.get(digest)
        if known is not None:
            if known.expires_at + self.leeway > utcnow().timestamp():
                self._verified.move_to_end(digest)
                return known
            self._verified.pop(digest, None)
        claims = self._verify(token)
        self._verified[digest] = claims
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            # Only our own key, looked up by kid; never a key or URL the token names.
            if header.get("alg") != ALGORITHM or header.get("kid") != self.key.kid:
                raise jwt.InvalidTokenError("unknown key or algorithm")
            if header.get("typ") != ACCESS_TOKEN_TYPE:
                raise jwt.InvalidTokenError("not an access token")
            claims = jwt.decode(
                token,
                self.key.public_key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "sid", "ver"]},
            )
            ver = claims["ver"]
            if not isinstance(ver, int) or isinstance(ver, bool):
                raise jwt.InvalidTokenError("bad ver")
            amr = claims.get("amr", list(PASSWORD_AMR))
            if not isinstance(amr, list) or not all(isinstance(m, str) for m in amr):
                raise jwt.InvalidTokenError("bad amr")
            return AccessClaims(
                user_id=uuid.UUID(str(claims["sub"])),
                session_id=uuid.UUID(str(claims["sid"])),
                auth_version=ver,
                role=str(claims.get("role", "")),
                expires_at=int(claims["exp"]),
                amr=tuple(amr),
            )
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError) as exc:
            raise NotAuthenticated(
                "The access token is invalid or has expired", error="invalid_token"
            ) from exc


def new_refresh_token() -> str:
    """256 bits from the OS CSPRNG; only its hash is ever stored."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
