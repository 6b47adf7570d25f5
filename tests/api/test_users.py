"""Users API, read side (docs/api.md): list, pagination, sorting, search, filters, get."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from tests.factories import Account, Api, assert_envelope

USERS = "/api/v1/users"
READ_FIELDS = {"id", "email", "name", "role", "created_at", "updated_at"}
SECRET_FIELDS = {"password", "password_hash", "version", "auth_version"}


async def _list(api: Api, who: Account, **params: Any) -> dict[str, Any]:
    response = await api.client.get(USERS, params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _make(api: Api, *names: str, role: str = "user") -> list[Account]:
    """Users with letter-only local parts (one order under any collation)."""
    return [
        await api.create_user(role, email=f"{n.lower()}@example.com", name=n.title() + " Person")
        for n in names
    ]


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- list: shape and defaults ---------------------------------------------------------


async def test_list_has_data_and_meta_with_source_defaults(api: Api) -> None:
    admin = await api.user("admin")
    await _make(api, "alpha", "bravo")
    body = await _list(api, admin)
    assert set(body) == {"data", "meta"}
    assert body["meta"] == {"page": 1, "page_size": 20, "total_count": 3, "total_pages": 1}
    for item in body["data"]:
        assert set(item) >= READ_FIELDS
        assert not SECRET_FIELDS & set(item), item
        uuid.UUID(item["id"])
    # Default sort: created_at desc.
    stamps = [_when(item["created_at"]) for item in body["data"]]
    assert stamps == sorted(stamps, reverse=True)


async def test_total_pages_rounds_up_and_a_page_past_the_end_is_empty(api: Api) -> None:
    admin = await api.user("admin")
    await _make(api, "alpha", "bravo", "charlie", "delta")
    body = await _list(api, admin, page_size=2)
    assert body["meta"] == {"page": 1, "page_size": 2, "total_count": 5, "total_pages": 3}
    assert len(body["data"]) == 2
    last = await _list(api, admin, page_size=2, page=3)
    assert len(last["data"]) == 1
    beyond = await _list(api, admin, page_size=2, page=4)
    assert beyond["data"] == []
    assert beyond["meta"]["total_count"] == 5


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": 0}, "page"),
        ({"page": -1}, "page"),
        ({"page": "two"}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 101}, "page_size"),
        ({"sort_by": "password_hash"}, "sort_by"),
        ({"sort_by": "created_at; DROP TABLE users"}, "sort_by"),
        ({"order": "sideways"}, "order"),
        ({"role": "superuser"}, "role"),
    ],
)
async def test_list_refuses_bad_query_parameters(
    api: Api, params: dict[str, Any], field: str
) -> None:
    admin = await api.user("admin")
    response = await api.client.get(USERS, params=params, headers=admin.headers)
    error = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert field in error["details"], error


async def test_page_size_100_is_the_maximum_allowed(api: Api) -> None:
    admin = await api.user("admin")
    body = await _list(api, admin, page_size=100)
    assert body["meta"]["page_size"] == 100


# --- sorting -----------------------------------------------------------------------


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_sort_by_email_orders_the_emails(api: Api, order: str) -> None:
    admin = await api.user("admin")
    await _make(api, "mike", "alpha", "zulu", "kilo", "echo")
    body = await _list(api, admin, sort_by="email", order=order, search="@example.com")
    emails = [item["email"] for item in body["data"]]
    assert len(emails) == 6
    assert emails == sorted(emails, reverse=order == "desc")


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_sort_by_name_orders_the_names(api: Api, order: str) -> None:
    admin = await api.user("admin", name="Middle Admin")
    await _make(api, "xray", "bravo", "oscar", "hotel")
    body = await _list(api, admin, sort_by="name", order=order)
    names = [item["name"] for item in body["data"]]
    assert names == sorted(
        ["Xray Person", "Bravo Person", "Oscar Person", "Hotel Person", "Middle Admin"],
        reverse=order == "desc",
    )


@pytest.mark.parametrize("field", ["created_at", "updated_at"])
async def test_sort_by_timestamps_in_both_directions(api: Api, field: str) -> None:
    admin = await api.user("admin")
    await _make(api, "alpha", "bravo", "charlie")
    asc = [_when(i[field]) for i in (await _list(api, admin, sort_by=field, order="asc"))["data"]]
    desc = [_when(i[field]) for i in (await _list(api, admin, sort_by=field))["data"]]
    assert asc == sorted(asc)
    assert desc == sorted(desc, reverse=True)
    assert len(asc) == 4


async def test_sort_by_role_groups_the_roles(api: Api) -> None:
    admin = await api.user("admin")
    await _make(api, "alpha", "bravo", role="readonly")
    await _make(api, "charlie", "delta", role="user")
    body = await _list(api, admin, sort_by="role", order="asc")
    roles = [item["role"] for item in body["data"]]
    assert roles == ["admin", "readonly", "readonly", "user", "user"]


# --- pagination stability --------------------------------------------------------------


@pytest.mark.parametrize(("sort_by", "order"), [("created_at", "desc"), ("role", "asc")])
async def test_paging_through_every_page_returns_each_user_exactly_once(
    api: Api, sort_by: str, order: str
) -> None:
    admin = await api.user("admin")
    roles = ["user", "readonly", "admin"]
    expected = {str(admin.id)}
    for n in range(22):
        account = await api.create_user(roles[n % 3])
        expected.add(str(account.id))
    seen: list[str] = []
    first = await _list(api, admin, page_size=5, sort_by=sort_by, order=order)
    pages = first["meta"]["total_pages"]
    assert pages == 5
    for page in range(1, pages + 1):
        body = await _list(api, admin, page=page, page_size=5, sort_by=sort_by, order=order)
        seen.extend(item["id"] for item in body["data"])
    assert len(seen) == len(set(seen)) == 23
    assert set(seen) == expected
    # The same query twice gives the same order: ties (equal roles) are broken stably.
    again: list[str] = []
    for page in range(1, pages + 1):
        body = await _list(api, admin, page=page, page_size=5, sort_by=sort_by, order=order)
        again.extend(item["id"] for item in body["data"])
    assert again == seen


# --- search and filters ----------------------------------------------------------------


async def test_search_matches_a_fragment_of_email_or_name_case_insensitively(api: Api) -> None:
    admin = await api.user("admin")
    jane = await api.create_user(email="jane.doe@corp.example", name="Jane Doe")
    bob = await api.create_user(email="bob@other.example", name="Robert Janeway")
    await api.create_user(email="carol@other.example", name="Carol King")

    def ids(body: dict[str, Any]) -> set[str]:
        return {item["id"] for item in body["data"]}

    assert ids(await _list(api, admin, search="JANE")) == {str(jane.id), str(bob.id)}
    assert ids(await _list(api, admin, search="corp.exa")) == {str(jane.id)}
    assert ids(await _list(api, admin, search="janeway")) == {str(bob.id)}
    body = await _list(api, admin, search="nobody-has-this")
    assert body["data"] == []
    assert body["meta"]["total_count"] == 0


async def test_search_wildcards_are_literal(api: Api) -> None:
    admin = await api.user("admin")
    await _make(api, "alpha", "bravo")
    assert (await _list(api, admin, search="%"))["meta"]["total_count"] == 0
    assert (await _list(api, admin, search="_"))["meta"]["total_count"] == 0


async def test_role_filter_returns_only_that_role(api: Api) -> None:
    admin = await api.user("admin")
    readers = await _make(api, "alpha", "bravo", role="readonly")
    await _make(api, "charlie", role="user")
    body = await _list(api, admin, role="readonly")
    assert {item["id"] for item in body["data"]} == {str(a.id) for a in readers}
    assert body["meta"]["total_count"] == 2
    combined = await _list(api, admin, role="readonly", search="alpha")
    assert [item["id"] for item in combined["data"]] == [str(readers[0].id)]


async def test_deleted_users_are_listed_only_for_admins_who_ask(api: Api) -> None:
    admin = await api.user("admin")
    reader = await api.user("readonly")
    gone = await api.create_user()
    deleted = await api.client.delete(f"{USERS}/{gone.id}", headers=admin.headers)
    assert deleted.status_code == 204

    default = await _list(api, admin)
    assert str(gone.id) not in {item["id"] for item in default["data"]}
    assert default["meta"]["total_count"] == 2

    everything = await _list(api, admin, include_deleted="true")
    rows = {item["id"]: item for item in everything["data"]}
    assert everything["meta"]["total_count"] == 3
    assert rows[str(gone.id)]["deleted_at"] is not None
    assert rows[str(admin.id)]["deleted_at"] is None

    refused = await api.client.get(
        USERS, params={"include_deleted": "true"}, headers=reader.headers
    )
    assert_envelope(refused, 403, "FORBIDDEN")


# --- who may list ----------------------------------------------------------------------


async def test_readonly_may_list_a_plain_user_may_not_and_anonymous_is_401(api: Api) -> None:
    reader = await api.user("readonly")
    plain = await api.user("user")
    assert (await _list(api, reader))["meta"]["total_count"] == 2
    assert_envelope(await api.client.get(USERS, headers=plain.headers), 403, "FORBIDDEN")
    anonymous = await api.client.get(USERS)
    assert_envelope(anonymous, 401, "UNAUTHORIZED")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")


# --- get one -------------------------------------------------------------------------------


async def test_get_user_returns_the_source_fields_and_an_etag(api: Api) -> None:
    admin = await api.user("admin")
    target = await api.create_user("readonly", email="Reader@Example.com", name="Rita Reader")
    response = await api.client.get(f"{USERS}/{target.id}", headers=admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == READ_FIELDS
    assert body["id"] == str(target.id)
    assert body["email"] == "reader@example.com"
    assert body["name"] == "Rita Reader"
    assert body["role"] == "readonly"
    assert body["created_at"].endswith(("Z", "+00:00"))
    assert _when(body["updated_at"]) >= _when(body["created_at"])
    assert response.headers["etag"].startswith('"')
    assert response.headers["cache-control"] == "no-store"


async def test_unknown_user_is_404_with_the_source_message(api: Api) -> None:
    admin = await api.user("admin")
    missing = uuid.uuid4()
    response = await api.client.get(f"{USERS}/{missing}", headers=admin.headers)
    error = assert_envelope(response, 404, "USER_NOT_FOUND")
    assert error["message"] == f"User with ID '{missing}' not found"


async def test_deleted_user_reads_as_not_found(api: Api) -> None:
    admin = await api.user("admin")
    gone = await api.create_user()
    await api.client.delete(f"{USERS}/{gone.id}", headers=admin.headers)
    response = await api.client.get(f"{USERS}/{gone.id}", headers=admin.headers)
    error = assert_envelope(response, 404, "USER_NOT_FOUND")
    assert error["message"] == f"User with ID '{gone.id}' not found"


async def test_readonly_reads_anyone_a_plain_user_only_themself(api: Api) -> None:
    reader = await api.user("readonly")
    plain = await api.user("user")
    other = await api.create_user()

    seen = await api.client.get(f"{USERS}/{other.id}", headers=reader.headers)
    assert seen.status_code == 200
    assert seen.json()["email"] == other.email

    own = await api.client.get(f"{USERS}/{plain.id}", headers=plain.headers)
    assert own.status_code == 200
    assert own.json()["id"] == str(plain.id)

    # Another user looks exactly like a user that does not exist: no enumeration.
    hidden = await api.client.get(f"{USERS}/{other.id}", headers=plain.headers)
    error = assert_envelope(hidden, 404, "USER_NOT_FOUND")
    assert error["message"] == f"User with ID '{other.id}' not found"
