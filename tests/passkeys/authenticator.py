"""A software WebAuthn authenticator (and the browser around it) for the tests.

It answers `PublicKeyCredentialCreationOptionsJSON` with a "none"-attestation credential
and `PublicKeyCredentialRequestOptionsJSON` with an assertion, as JSON the way
`credential.toJSON()` gives it: ES256 keys on P-256, a signature over
authenticatorData || SHA-256(clientDataJSON). Every knob a test needs to make a bad
answer (another origin or RP id, no user verification, a counter set by hand, a broken
signature, someone else's user handle) is a keyword of `get`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
# Not a real model's AAGUID: one that says "made by the test suite".
TEST_AAGUID = bytes.fromhex("7e57a11e0000400080000000000000aa")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CredentialExcluded(Exception):
    """The browser's InvalidStateError: the options exclude a credential this holds."""


@dataclass
class StoredCredential:
    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    def cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


@dataclass
class SoftwareAuthenticator:
    origin: str
    # A synced passkey (iCloud Keychain, Google Password Manager): backup flags BE|BS.
    synced: bool = False
    credentials: dict[bytes, StoredCredential] = field(default_factory=dict)

    def _flags(self, *, uv: bool, attested: bool = False) -> int:
        flags = UP | (UV if uv else 0) | (AT if attested else 0)
        return flags | (BE | BS if self.synced else 0)

    def create(
        self, options: dict[str, Any], *, reuse: StoredCredential | None = None
    ) -> dict[str, Any]:
        """navigator.credentials.create(): a new credential (or `reuse` an existing one,
        as a second registration of the same authenticator would), "none" attestation."""
        known = {unb64url(c["id"]) for c in options.get("excludeCredentials", [])}
        if reuse is None and known & set(self.credentials):
            raise CredentialExcluded()
        rp_id = options["rp"]["id"]
        stored = reuse or StoredCredential(
            id=os.urandom(32),
            key=ec.generate_private_key(ec.SECP256R1()),
            rp_id=rp_id,
            user_handle=unb64url(options["user"]["id"]),
        )
        self.credentials[stored.id] = stored
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags(uv=True, attested=True)])
            + struct.pack(">I", stored.sign_count)
            + TEST_AAGUID
            + struct.pack(">H", len(stored.id))
            + stored.id
            + stored.cose_key()
        )
        client_data = self._client_data("webauthn.create", options["challenge"], self.origin)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64url(stored.id),
            "rawId": b64url(stored.id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["hybrid", "internal"],
            },
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        credential: StoredCredential | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        uv: bool = True,
        sign_count: int | None = None,
        user_handle: bytes | bool | None = True,
        break_signature: bool = False,
    ) -> dict[str, Any]:
        """navigator.credentials.get(): an assertion by `credential`, else by the first
        one the options allow (any of this RP's for a discoverable login).

        `user_handle`: True sends the credential's own (as a discoverable credential
        does), False sends none, bytes sends those instead.
        """
        chosen = credential or self._choose(options)
        chosen.sign_count = chosen.sign_count + 1 if sign_count is None else sign_count
        auth_data = (
            hashlib.sha256((rp_id or chosen.rp_id).encode()).digest()
            + bytes([self._flags(uv=uv)])
            + struct.pack(">I", chosen.sign_count)
        )
        client_data = self._client_data("webauthn.get", options["challenge"], origin or self.origin)
        signature = chosen.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        if break_signature:
            signature = bytes(signature[:-1]) + bytes([signature[-1] ^ 0x01])
        response: dict[str, Any] = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        if user_handle is True:
            response["userHandle"] = b64url(chosen.user_handle)
        elif isinstance(user_handle, bytes):
            response["userHandle"] = b64url(user_handle)
        return {
            "id": b64url(chosen.id),
            "rawId": b64url(chosen.id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": response,
        }

    def _choose(self, options: dict[str, Any]) -> StoredCredential:
        allowed = [unb64url(c["id"]) for c in options.get("allowCredentials", [])]
        for stored in self.credentials.values():
            if stored.rp_id != options["rpId"]:
                continue
            if not allowed or stored.id in allowed:
                return stored
        raise LookupError("no credential of this authenticator is allowed")

    @property
    def only(self) -> StoredCredential:
        [stored] = self.credentials.values()
        return stored

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
        ).encode()
