from __future__ import annotations

from tests.factories import Api, assert_envelope


async def test_admin_creates_and_lists_users(api: Api) -> None:
    admin = await api.user("admin")
    created = await api.client.post(
        "/api/v1/users",
        json={"email": "New.User@Example.com", "name": "Jane Doe", "password": "x-long-password"},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "new.user@example.com"
    listing = await api.client.get("/api/v1/users", headers=admin.headers)
    assert listing.status_code == 200
    assert listing.json()["meta"]["total_count"] == 2


async def test_unknown_route_is_enveloped(api: Api) -> None:
    assert_envelope(await api.client.get("/nope"), 404, "NOT_FOUND")
