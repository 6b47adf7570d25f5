"""The ID token, verified as a relying party verifies it: PyJWT with the key the JWKS
serves, the issuer discovery names, the client's own audience."""

from __future__ import annotations

import base64
import hashlib
import time

import jwt
import pytest

from gatehouse.oidc import protocol
from gatehouse.oidc.tokens import verify_id_token_hint
from tests.factories import Api
from tests.oidc.token_support import exchange, make_client, verify_with_jwks


def _at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


async def test_the_id_token_verifies_against_the_jwks(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user(email="id-token@example.com", name="Ida Token")
    body = await exchange(api, rp, user, "openid profile email roles", nonce="nonce-123")
    assert jwt.get_unverified_header(body["id_token"])["typ"] == "JWT"
    claims = await verify_with_jwks(api, body["id_token"], rp.client_id)
    assert claims["iss"] == protocol.issuer(api.runtime.settings)
    assert claims["sub"] == str(user.id)
    assert claims["aud"] == rp.client_id
    assert claims["nonce"] == "nonce-123"
    assert claims["at_hash"] == _at_hash(body["access_token"])
    assert claims["amr"] == ["pwd"]
    assert claims["auth_time"] <= claims["iat"] <= time.time() + 1
    assert claims["exp"] > claims["iat"]
    assert claims["email"] == "id-token@example.com"
    assert claims["email_verified"] is False
    assert claims["name"] == "Ida Token"
    assert claims["role"] == "user"
    assert "sid" not in claims
    # Another audience does not verify.
    with pytest.raises(jwt.InvalidAudienceError):
        await verify_with_jwks(api, body["id_token"], "gh_someone_else")


@pytest.mark.parametrize(
    ("scopes", "present", "absent"),
    [
        ("openid", set(), {"email", "email_verified", "name", "role"}),
        ("openid email", {"email", "email_verified"}, {"name", "role"}),
        ("openid profile", {"name"}, {"email", "email_verified", "role"}),
        ("openid roles", {"role"}, {"email", "email_verified", "name"}),
    ],
)
async def test_claims_follow_the_scopes(
    api: Api, scopes: str, present: set[str], absent: set[str]
) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    body = await exchange(api, rp, user, scopes, nonce=None)
    claims = await verify_with_jwks(api, body["id_token"], rp.client_id)
    assert present <= set(claims)
    assert not absent & set(claims)
    assert "nonce" not in claims


async def test_no_id_token_without_openid(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    body = await exchange(api, rp, user, "profile email")
    assert "id_token" not in body
    assert body["scope"] == "profile email"


async def test_an_id_token_hint_verifies_even_expired_and_nothing_else_does(api: Api) -> None:
    rp = await make_client(api.runtime)
    user = await api.user()
    body = await exchange(api, rp, user)
    settings, key = api.runtime.settings, api.runtime.tokens.key
    claims = verify_id_token_hint(settings, key, body["id_token"])
    assert claims is not None
    assert (claims["sub"], claims["aud"]) == (str(user.id), rp.client_id)
    # Long expired: still a good hint (logout comes late).
    old = {**claims, "iat": claims["iat"] - 86400, "exp": claims["exp"] - 86400}
    expired = jwt.encode(
        old, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"}
    )
    assert verify_id_token_hint(settings, key, expired) is not None
    # An access token, a first-party token, another issuer, another key, garbage: no.
    other_iss = jwt.encode(
        {**claims, "iss": "https://evil.example.com"},
        key.private_key,
        algorithm="RS256",
        headers={"kid": key.kid, "typ": "JWT"},
    )
    for token in (body["access_token"], user.access_token, other_iss, "x.y.z", ""):
        assert verify_id_token_hint(settings, key, token) is None
    tampered = body["id_token"][:-4] + ("AAAA" if body["id_token"][-4:] != "AAAA" else "BBBB")
    assert verify_id_token_hint(settings, key, tampered) is None
