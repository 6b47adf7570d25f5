"""A name that grows under Unicode normalisation is refused with a 400 on its
field, never stored past its column nor answered 500 (issue "Hardening", item 7)."""

from __future__ import annotations

import unicodedata

import pytest

from gatehouse.users.models import Role
from tests.factories import PASSWORD, Api, assert_envelope

# U+0958 is excluded from composition: NFC spells it as two characters.
GROWING = "\u0958" * 255
assert len(unicodedata.normalize("NFC", GROWING)) == 510


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/auth/register"),
        ("POST", "/api/v1/users"),
        ("PUT", "/api/v1/users/{id}"),
        ("PATCH", "/api/v1/users/{id}"),
        ("PUT", "/api/v1/users/me"),
        ("PATCH", "/api/v1/users/me"),
    ],
)
async def test_a_name_longer_than_its_column_once_normalised_is_a_400(
    api: Api, method: str, path: str
) -> None:
    admin = await api.user(Role.admin)
    target = await api.create_user()
    body: dict[str, str] = {"name": GROWING}
    if path in ("/api/v1/auth/register", "/api/v1/users"):
        body |= {"email": "grown@example.com", "password": PASSWORD}
    if method == "PUT" and "{id}" in path:
        body["role"] = "user"
    response = await api.client.request(
        method, path.format(id=target.id), json=body, headers=admin.headers
    )
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]) == ["name"], error
    assert "255" in error["details"]["name"][0]

    # One character short of the column, once normalised, is accepted.
    fits = "\u0958" * 127 + "a"
    body["name"] = fits
    accepted = await api.client.request(
        method, path.format(id=target.id), json=body, headers=admin.headers
    )
    assert accepted.status_code in (200, 201, 202), accepted.text
