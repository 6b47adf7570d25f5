"""A relying party written with Authlib (as a real one would be) against the back
channel: exchange, ID token validation, userinfo, refresh, introspection, revocation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from authlib.jose import JsonWebKey  # type: ignore[import-untyped]
from authlib.jose import jwt as authlib_jwt
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]

from gatehouse.app import create_app
from gatehouse.oidc import protocol
from tests.factories import Api
from tests.oidc.token_support import RP, issue_code, make_client

BASE = "http://testserver"


@pytest.fixture
def transport(api: Api) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=create_app(runtime=api.runtime), client=("127.0.0.1", 50001))


def relying_party(rp: RP, transport: httpx.ASGITransport, method: str) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=rp.client_id,
        client_secret=rp.secret,
        token_endpoint_auth_method=method,
        redirect_uri=rp.redirect_uri,
        code_challenge_method="S256",
        transport=transport,
        base_url=BASE,
    )


async def validated_id_token(
    oauth: AsyncOAuth2Client, token: dict[str, Any], rp: RP, nonce: str | None
) -> dict[str, Any]:
    discovery = (await oauth.get(protocol.DISCOVERY_PATH)).json()
    keys = JsonWebKey.import_key_set((await oauth.get(protocol.JWKS_PATH)).json())
    claims = authlib_jwt.decode(
        token["id_token"],
        keys,
        claims_cls=CodeIDToken,
        claims_options={
            "iss": {"values": [discovery["issuer"]]},
            "aud": {"values": [rp.client_id]},
        },
        claims_params={
            "nonce": nonce,
            "client_id": rp.client_id,
            "access_token": token["access_token"],
        },
    )
    claims.validate()  # exp, iat, aud, nonce, at_hash (against the access token)
    return dict(claims)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_an_authlib_relying_party_goes_the_whole_way(
    api: Api, transport: httpx.ASGITransport, method: str
) -> None:
    rp = await make_client(api.runtime)
    user = await api.user(name="Rel Party")
    code = await issue_code(api, rp, user, "openid profile email offline_access", nonce="abc")
    async with relying_party(rp, transport, method) as oauth:
        token = await oauth.fetch_token(
            protocol.TOKEN_PATH,
            grant_type="authorization_code",
            code=code.code,
            code_verifier=code.verifier,
        )
        claims = await validated_id_token(oauth, token, rp, "abc")
        assert claims["sub"] == str(user.id)
        assert claims["name"] == "Rel Party"
        info = (await oauth.get(protocol.USERINFO_PATH)).json()
        assert info["sub"] == str(user.id)

        renewed = await oauth.refresh_token(protocol.TOKEN_PATH)
        assert renewed["refresh_token"] != token["refresh_token"]
        assert (await oauth.get(protocol.USERINFO_PATH)).status_code == 200

        seen = (
            await oauth.introspect_token(protocol.INTROSPECTION_PATH, token=renewed["access_token"])
        ).json()
        assert seen["active"] is True
        assert seen["client_id"] == rp.client_id

        revoked = await oauth.revoke_token(
            protocol.REVOCATION_PATH,
            token=renewed["refresh_token"],
            token_type_hint="refresh_token",
        )
        assert revoked.status_code == 200
        assert (await oauth.get(protocol.USERINFO_PATH)).status_code == 401
