"""Every registration rule refuses with 400 VALIDATION_ERROR under the field to change,
on create and on an edit (checked against the client as the edit would leave it)."""

from __future__ import annotations

from typing import Any

from tests.clients.conftest import CALLBACK, CLIENTS, outbox_events, register, spa, web_app
from tests.factories import Account, Api, assert_envelope

# (body, field, words of the message)
# (redirect URI, words of the message): absolute, https or loopback http, no fragment,
# no wildcard, no credentials
REFUSED_URIS: list[tuple[str, str]] = [
    ("/callback", "absolute"),
    ("app.example.com/cb", "absolute"),
    ("http://app.example.com/cb", "https"),
    ("http://127.0.0.2/cb", "https"),
    ("http://localhost.example.com/cb", "https"),
    ("com.example.app:/cb", "absolute"),
    ("javascript://app.example.com/%0aalert(1)", "https"),
    (f"{CALLBACK}#frag", "fragment"),
    (f"{CALLBACK}#", "fragment"),
    ("https://*.example.com/cb", "wildcard"),
    ("https://app.example.com/*", "wildcard"),
    ("https://user:pw@app.example.com/cb", "credentials"),
    ("https://app.example.com/a b", "spaces"),
    ("https://app.example.com:99999/cb", "valid"),
]
# (body, field, words of the message)
REFUSED_CREATES: list[tuple[dict[str, Any], str, str]] = [
    *[(web_app(redirect_uris=[uri]), "redirect_uris.0", words) for uri, words in REFUSED_URIS],
    (web_app(redirect_uris=[CALLBACK, CALLBACK]), "redirect_uris", "repeat"),
    (
        web_app(post_logout_redirect_uris=["http://app.example.com/"]),
        "post_logout_redirect_uris.0",
        "https",
    ),
    # grants and their clients
    (spa(grant_types=["authorization_code", "client_credentials"]), "grant_types", "confidential"),
    (
        web_app(grant_types=["refresh_token"], scopes=["openid"]),
        "grant_types",
        "authorization_code",
    ),
    (web_app(grant_types=["authorization_code"]), "scopes", "refresh_token"),
    (web_app(redirect_uris=[]), "redirect_uris", "at least one"),
    (spa(grant_types=["implicit"]), "grant_types.0", "authorization_code"),
    (spa(grant_types=[]), "grant_types", "at least 1"),
    (spa(scopes=["openid", "admin"]), "scopes.1", "openid"),
    (spa(scopes=["openid", "openid"]), "scopes", "repeat"),
    # the rest
    (spa(name=""), "name", "at least 1"),
    (spa(name="   "), "name", "empty"),
    (spa(name="x" * 101), "name", "at most 100"),
    (spa(name="Bad\nName"), "name", "control"),
    (spa(type="private"), "type", "confidential"),
    (spa(logo_url="http://app.example.com/logo.png"), "logo_url", "https"),
    (spa(logo_url="logo.png"), "logo_url", "absolute"),
    (spa(client_secret="ghcs_mine"), "client_secret", "Unknown field"),
    (spa(client_id="gh_mine"), "client_id", "Unknown field"),
    (spa(enabled=False), "enabled", "Unknown field"),
]


async def test_each_rule_refuses_a_registration_naming_its_field(api: Api, admin: Account) -> None:
    misses = []
    for body, field, words in REFUSED_CREATES:
        response = await api.client.post(CLIENTS, json=body, headers=admin.headers)
        error = assert_envelope(response, 400, "VALIDATION_ERROR")
        messages = error["details"].get(field, [])
        if not any(words in message for message in messages):
            misses.append((body, field, error["details"]))
    assert misses == []
    # A refusal names every rule the body breaks, field by field.
    both = spa(grant_types=["refresh_token", "client_credentials"], scopes=["offline_access"])
    details = assert_envelope(
        await api.client.post(CLIENTS, json=both, headers=admin.headers), 400
    )["details"]
    assert details == {
        "grant_types": [
            "client_credentials needs a confidential client",
            "refresh_token needs authorization_code",
        ]
    }
    assert (await api.client.get(CLIENTS, headers=admin.headers)).json()["data"] == []


async def test_service_clients_need_no_redirect_uri(api: Api, admin: Account) -> None:
    machine = await register(
        api,
        admin,
        {
            "name": "Nightly export",
            "type": "confidential",
            "scopes": ["roles"],
            "grant_types": ["client_credentials"],
        },
    )
    assert machine["redirect_uris"] == []
    assert machine["client_secret"] is not None


async def test_an_edit_must_leave_a_valid_client(api: Api, admin: Account) -> None:
    created = await register(api, admin, web_app())
    path = f"{CLIENTS}/{created['id']}"
    edits: list[tuple[dict[str, Any], str]] = [
        ({"grant_types": ["authorization_code"]}, "scopes"),  # offline_access stays
        ({"grant_types": ["refresh_token"]}, "grant_types"),
        ({"redirect_uris": []}, "redirect_uris"),
        ({"redirect_uris": ["http://app.example.com/cb"]}, "redirect_uris.0"),
        ({"name": None}, "body"),
        ({"scopes": None}, "body"),
        ({}, "body"),
        ({"logo_url": "ftp://app.example.com/logo.png"}, "logo_url"),
    ]
    for body, field in edits:
        error = assert_envelope(await api.client.patch(path, json=body, headers=admin.headers), 400)
        assert field in error["details"], (body, error)
    public = await register(api, admin, spa())
    refused = await api.client.patch(
        f"{CLIENTS}/{public['id']}",
        json={"grant_types": ["authorization_code", "client_credentials"]},
        headers=admin.headers,
    )
    assert assert_envelope(refused, 400)["details"] == {
        "grant_types": ["client_credentials needs a confidential client"]
    }
    # Nothing was changed: the same version, and no event but the two registrations.
    assert (await api.client.get(path, headers=admin.headers)).headers["etag"] == '"1"'
    assert len(await outbox_events(api.runtime)) == 2
