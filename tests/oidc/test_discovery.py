"""GET /.well-known/openid-configuration: what a relying party's library reads first."""

from __future__ import annotations

import pytest

from tests.factories import Api

ISSUER = "https://id.example.com"


@pytest.mark.parametrize("settings_overrides", [{"public_url": ISSUER + "/"}])
async def test_the_discovery_document(api: Api) -> None:
    response = await api.client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.headers["cache-control"].startswith("public")
    doc = response.json()
    assert doc["issuer"] == ISSUER
    assert doc["authorization_endpoint"] == ISSUER + "/oauth2/authorize"
    assert doc["token_endpoint"] == ISSUER + "/oauth2/token"
    assert doc["userinfo_endpoint"] == ISSUER + "/oauth2/userinfo"
    assert doc["jwks_uri"] == ISSUER + "/.well-known/jwks.json"
    assert doc["revocation_endpoint"] == ISSUER + "/oauth2/revoke"
    assert doc["introspection_endpoint"] == ISSUER + "/oauth2/introspect"
    assert doc["end_session_endpoint"] == ISSUER + "/oauth2/end_session"
    assert set(doc["scopes_supported"]) == {"openid", "profile", "email", "offline_access", "roles"}
    assert doc["response_types_supported"] == ["code"]
    assert doc["response_modes_supported"] == ["query"]
    assert set(doc["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
    }
    assert doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    methods = ["client_secret_basic", "client_secret_post", "none"]
    for name in ("token", "revocation", "introspection"):
        assert doc[f"{name}_endpoint_auth_methods_supported"] == methods
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"sub", "email", "email_verified", "name", "role", "at_hash"} <= set(
        doc["claims_supported"]
    )
    assert set(doc["prompt_values_supported"]) == {"none", "login", "consent"}
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["request_parameter_supported"] is False
    assert doc["request_uri_parameter_supported"] is False
    # The JWKS it names is served, and holds the key tokens are signed with.
    jwks = (await api.client.get("/.well-known/jwks.json")).json()
    assert [key["kid"] for key in jwks["keys"]] == [api.runtime.tokens.key.kid]


@pytest.mark.parametrize(
    "settings_overrides", [{"rate_limit_enabled": True, "rate_limit_anonymous": "1/minute"}]
)
async def test_discovery_and_jwks_are_not_rate_limited(api: Api) -> None:
    for _ in range(3):
        for path in ("/.well-known/openid-configuration", "/.well-known/jwks.json"):
            assert (await api.client.get(path)).status_code == 200
