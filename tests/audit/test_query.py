"""The admin audit query API and its NDJSON export (AUD-10, AUD-03 for the trail itself).

Rows are written the way the application writes them (`trail.append`, at travelled
times) next to the real ones the API calls leave. Every filtered answer is checked
against an oracle: the same filter applied in Python to every row in the table.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import time_machine
from sqlalchemy import select, text

from gatehouse.app import create_app
from gatehouse.audit import queries as audit_queries
from gatehouse.audit import trail
from gatehouse.audit.models import AuditEvent
from gatehouse.audit.service import allow_maintenance
from gatehouse.config import Environment, ServerSettings, Settings
from gatehouse.runtime import Runtime
from gatehouse.users.models import Role
from tests.factories import Account, Api, assert_envelope

URL = "/api/v1/audit-events"
EXPORT_URL = f"{URL}/export"
ACTOR_A = uuid.UUID("aaaaaaaa-0000-4000-8000-000000000001")
ACTOR_B = uuid.UUID("bbbbbbbb-0000-4000-8000-000000000002")
ACTOR_C = uuid.UUID("cccccccc-0000-4000-8000-000000000003")
T1 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
T2 = datetime(2025, 3, 2, 10, 0, tzinfo=UTC)
T3 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
FILLER = 25
SEEDED = 12 + FILLER
LATE = T1 + timedelta(hours=1)
ITEM_FIELDS = {
    "id",
    "seq",
    "occurred_at",
    "action",
    "outcome",
    "reason",
    "actor_id",
    "actor_role",
    "target_type",
    "target_id",
    "request_id",
    "details",
    "pii",
}


def entry(action: str, outcome: str = "success", **fields: Any) -> trail.Entry:
    fields.setdefault("pii", {"ip": "198.51.100.9", "user_agent": "seed-agent"})
    return trail.Entry(action=action, outcome=outcome, **fields)


SEEDS: list[tuple[datetime, list[trail.Entry]]] = [
    (
        T1,
        [
            entry("auth.login", actor_id=ACTOR_A, target_type="user", target_id=str(ACTOR_A),
                  request_id="req-seed-1"),
            entry("auth.login", "failure", reason="bad_password", request_id="req-seed-1",
                  pii={"identifier": "someone@example.com", "ip": "198.51.100.9"}),
            entry("auth.logout", actor_id=ACTOR_A, actor_role="user"),
            entry("x_y.z", actor_id=ACTOR_B, target_id="t-1"),
            entry("x\\q.z", actor_id=ACTOR_B),
        ],
    ),
    (T2 - timedelta(microseconds=1), [entry("x%y.z", "denied", actor_id=ACTOR_B, target_id="t-1")]),
    (
        T2,
        [
            entry("xay.z", "failure", actor_id=ACTOR_B, target_type="webhook", target_id="t-2"),
            entry("auth.logout_all", actor_id=ACTOR_A, actor_role="user"),
            entry("authz.denied", "denied", reason="role", actor_id=ACTOR_B,
                  target_type="user", target_id="t-2"),
        ],
    ),
    (
        T3,
        [
            entry("user.update", actor_id=ACTOR_A, target_type="user", target_id="t-1",
                  details={"fields": ["name"]}),
            entry("auth.login", "failure", reason="locked", actor_id=ACTOR_A,
                  request_id="req-seed-2"),
            *(entry("user.read", actor_id=ACTOR_C, target_type="user", target_id=f"f-{n}")
              for n in range(FILLER)),
        ],
    ),
    # The clock stepped back: the newest row by id is not the newest by time.
    (LATE, [entry("user.delete", "failure", actor_id=ACTOR_B, target_id="t-3")]),
]  # fmt: skip


async def seed(runtime: Runtime) -> None:
    for moment, entries in SEEDS:
        with time_machine.travel(moment, tick=False):
            async with runtime.db.session() as session:
                await trail.append(session, runtime.audit_key, entries)


async def all_rows(runtime: Runtime) -> list[AuditEvent]:
    async with runtime.db.session(write=False) as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all())


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.upper())


def matches(row: AuditEvent, filters: dict[str, str]) -> bool:
    """The oracle: what each filter means, in plain Python."""

    def one(name: str, value: str) -> bool:
        if name == "actor_id":
            return row.actor_id == uuid.UUID(value)
        if name == "action":
            return row.action.startswith(value)
        if name == "since":
            return row.occurred_at >= parse_time(value)
        if name == "until":
            return row.occurred_at < parse_time(value)
        column: str | None = getattr(row, name)  # target_id, target_type, outcome, request_id
        return column == value

    return all(one(name, value) for name, value in filters.items())


async def expected_ids(runtime: Runtime, filters: dict[str, str]) -> list[int]:
    """Newest first: by id, or with a time range by (occurred_at, id)."""
    rows = [row for row in await all_rows(runtime) if matches(row, filters)]
    if "since" in filters or "until" in filters:
        rows.sort(key=lambda row: (row.occurred_at, row.id))
    return [row.id for row in reversed(rows)]


async def walk(
    api: Api, admin: Account, filters: dict[str, str], limit: int
) -> list[dict[str, Any]]:
    """Every page, following next_cursor, until a null cursor; no row twice."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {**filters, "limit": limit}
    for _ in range(1000):
        response = await api.client.get(URL, params=params, headers=admin.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        if page["next_cursor"] is None:
            break
        assert len(page["items"]) == limit, "a page before the last one is full"
        params["cursor"] = page["next_cursor"]
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)), "no row twice"
    return items


@pytest.fixture
async def admin(api: Api) -> Account:
    return await api.user(Role.admin)


@pytest.fixture
async def seeded(api: Api, admin: Account) -> Account:
    await seed(api.runtime)
    return admin


A, B = str(ACTOR_A), str(ACTOR_B)
# (filters, how many seeded rows match): the oracle decides the full answer (real rows
# too); the count proves the seeds really exercise the filter.
FILTER_CASES = [
    ({}, SEEDED),
    ({"actor_id": A}, 5),
    ({"actor_id": A.upper()}, 5),
    ({"target_id": "t-1"}, 3),
    ({"target_type": "webhook"}, 1),
    ({"action": "auth."}, 5),
    ({"action": "auth.logout"}, 2),
    ({"action": "x_"}, 1),
    ({"action": "x%"}, 1),
    ({"action": "x\\"}, 1),
    ({"action": "AUTH."}, 0),
    ({"outcome": "denied"}, 2),
    ({"since": "2025-03-02T10:00:00Z"}, 5 + FILLER),
    ({"until": "2025-03-02T10:00:00Z"}, 7),
    ({"since": "2025-03-02T12:00:00+02:00", "until": "2025-03-03T10:00:00Z"}, 3),
    ({"since": "2025-03-02T10:00:00Z", "until": "2025-03-02T10:00:00Z"}, 0),
    ({"request_id": "req-seed-1"}, 2),
    ({"actor_id": A, "outcome": "failure", "action": "auth."}, 1),
]


async def test_each_filter_returns_exactly_the_matching_rows(api: Api, seeded: Account) -> None:
    seeded_ids = {row.id for row in await all_rows(api.runtime) if row.occurred_at <= T3}
    assert len(seeded_ids) == SEEDED
    for filters, seeded_count in FILTER_CASES:
        expected = await expected_ids(api.runtime, filters)
        assert len([i for i in expected if i in seeded_ids]) == seeded_count, filters
        items = await walk(api, seeded, filters, limit=4)
        assert [item["id"] for item in items] == expected, filters


async def test_pages_walk_every_row_once_whatever_the_page_size(api: Api, seeded: Account) -> None:
    # Only the seeded rows: the walks' own audit.read rows would grow an unfiltered range.
    filters = {"until": "2025-03-04T00:00:00Z"}
    expected = await expected_ids(api.runtime, filters)
    assert len(expected) == SEEDED
    for limit in (1, 3, len(expected) - 1, len(expected), len(expected) + 1, 100):
        items = await walk(api, seeded, filters, limit=limit)
        assert [item["id"] for item in items] == expected, limit
    # A full last page still says there is no next one (one row more is fetched).
    response = await api.client.get(
        URL, params={**filters, "limit": len(expected)}, headers=seeded.headers
    )
    assert len(response.json()["items"]) == len(expected)
    assert response.json()["next_cursor"] is None


async def test_a_time_range_is_ordered_by_time_and_the_rest_by_id(
    api: Api, seeded: Account
) -> None:
    by_id = await walk(api, seeded, {"actor_id": B}, limit=2)
    assert [item["action"] for item in by_id] == [
        "user.delete", "authz.denied", "xay.z", "x%y.z", "x\\q.z", "x_y.z",
    ]  # fmt: skip
    # The row recorded last, at a stepped-back clock, sits at its time in a time range;
    # ties in time (the T1 rows) keep id order.
    timed = {"actor_id": B, "since": "2025-01-01T00:00:00Z"}
    by_time = await walk(api, seeded, timed, limit=2)
    assert [item["action"] for item in by_time] == [
        "authz.denied", "xay.z", "x%y.z", "user.delete", "x\\q.z", "x_y.z",
    ]  # fmt: skip
    # A cursor taken with a time range pages on (time, id): a row recorded meanwhile, at
    # the present time, is not in the next pages.
    first = await api.client.get(URL, params={**timed, "limit": 3}, headers=seeded.headers)
    cursor = first.json()["next_cursor"]
    async with api.runtime.db.session() as session:
        await trail.append(session, api.runtime.audit_key, [entry("user.read", actor_id=ACTOR_B)])
    rest = await api.client.get(
        URL, params={**timed, "limit": 3, "cursor": cursor}, headers=seeded.headers
    )
    assert [item["action"] for item in rest.json()["items"]] == ["user.delete", "x\\q.z", "x_y.z"]


async def test_items_carry_every_field_and_personal_data_without_the_salt(
    api: Api, seeded: Account
) -> None:
    rows = {row.id: row for row in await all_rows(api.runtime)}
    items = await walk(api, seeded, {"request_id": "req-seed-1"}, limit=10)
    assert len(items) == 2
    for item in items:
        assert set(item) == ITEM_FIELDS
        row = rows[item["id"]]
        assert item["seq"] == row.seq
        assert parse_time(item["occurred_at"]) == row.occurred_at
        assert item["occurred_at"].endswith("Z") or item["occurred_at"].endswith("+00:00")
    failed, ok = items  # newest first
    assert failed["action"] == "auth.login"
    assert failed["outcome"] == "failure"
    assert failed["reason"] == "bad_password"
    assert failed["actor_id"] is None
    assert failed["pii"] == {
        "identifier": "someone@example.com",
        "ip": "198.51.100.9",
        "user_agent": None,
    }
    assert ok["actor_id"] == str(ACTOR_A)
    assert ok["target_type"] == "user"
    assert ok["target_id"] == str(ACTOR_A)
    assert ok["request_id"] == "req-seed-1"
    assert ok["pii"] == {"ip": "198.51.100.9", "user_agent": "seed-agent"}
    assert ok["details"] == {}
    assert all("salt" not in json.dumps(item) for item in items)


async def test_erased_personal_data_reads_as_null(api: Api, seeded: Account) -> None:
    target = next(row for row in await all_rows(api.runtime) if row.action == "user.update")
    async with api.runtime.db.session() as session:
        await allow_maintenance(session)
        await session.execute(
            text("UPDATE audit_events SET pii = NULL WHERE id = :id"), {"id": target.id}
        )
    items = await walk(api, seeded, {"action": "user.update"}, limit=10)
    assert [(item["id"], item["pii"]) for item in items] == [(target.id, None)]
    assert items[0]["details"] == {"fields": ["name"]}


async def test_the_read_is_itself_audited(api: Api, seeded: Account) -> None:
    request_id = f"audit-read-{uuid.uuid4().hex[:8]}"
    response = await api.client.get(
        URL,
        params={"action": "auth.", "actor_id": A, "target_id": "jane@example.com", "limit": 5},
        headers={**seeded.headers, "X-Request-ID": request_id, "User-Agent": "audit-test"},
    )
    assert response.status_code == 200, response.text
    rows = [row for row in await all_rows(api.runtime) if row.request_id == request_id]
    assert len(rows) == 1
    row = rows[0]
    assert row.action == "audit.read"
    assert row.outcome == "success"
    assert row.actor_id == seeded.id
    assert row.actor_role == "admin"
    assert row.target_type == "audit"
    assert row.details == {"filters": {"action": "auth.", "actor_id": A}, "returned": 0}
    # A value that may be personal data (an email typed as a target) is kept with the
    # personal data, which erasure nulls, not in the safe details.
    assert row.pii is not None
    assert row.pii["filters"] == {"target_id": "jane@example.com"}
    assert row.pii["user_agent"] == "audit-test"
    # ...and it is found like any other row, by the next read.
    again = await walk(api, seeded, {"action": "audit.read", "request_id": request_id}, limit=5)
    assert [item["id"] for item in again] == [row.id]


BAD_PARAMETERS = [
    {"limit": "0"},
    {"limit": "-1"},
    {"limit": "501"},
    {"limit": "5001"},
    {"limit": "ten"},
    {"actor_id": "not-a-uuid"},
    {"outcome": "maybe"},
    {"since": "2026-01-01"},
    {"since": "2026-01-01T00:00:00"},
    {"until": "1700000000"},
    {"until": "2026-02-30T00:00:00Z"},
    {"action": ""},
    {"target_id": "x" * 101},
    {"cursor": "!!!"},
    {"cursor": "abc"},
    {"actor": "aaaaaaaa-0000-4000-8000-000000000001"},
]


async def test_bad_parameters_answer_400(api: Api, admin: Account) -> None:
    for params in BAD_PARAMETERS:
        response = await api.client.get(URL, params=params, headers=admin.headers)
        error = assert_envelope(response, 400, "VALIDATION_ERROR")
        assert set(error["details"]) == set(params), (params, error)


async def test_limit_bounds(api: Api, seeded: Account) -> None:
    async with api.runtime.db.session() as session:  # past the default page size of 100
        await trail.append(session, api.runtime.audit_key, [entry("user.list")] * 80)
    for params, size in (({"limit": 1}, 1), ({"limit": 500}, 500), ({}, 100)):
        total = len(await all_rows(api.runtime))
        assert total > 100
        response = await api.client.get(URL, params=params, headers=seeded.headers)
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) == min(size, total), params
    error = assert_envelope(
        await api.client.get(URL, params={"limit": 501}, headers=seeded.headers), 400
    )
    assert error["details"] == {"limit": ["must be at most 500"]}


async def test_an_altered_or_foreign_cursor_answers_400(api: Api, seeded: Account) -> None:
    filters = {"actor_id": A}
    first = await api.client.get(URL, params={**filters, "limit": 2}, headers=seeded.headers)
    cursor = first.json()["next_cursor"]
    assert cursor
    ok = await api.client.get(
        URL, params={**filters, "limit": 2, "cursor": cursor}, headers=seeded.headers
    )
    assert ok.status_code == 200
    flipped = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]
    for params in (
        {**filters, "cursor": flipped},
        {**filters, "cursor": cursor + "AAAA"},
        {**filters, "cursor": cursor[:-2]},
        {"actor_id": B, "cursor": cursor},  # another filter's cursor
        {"cursor": cursor},
    ):
        error = assert_envelope(
            await api.client.get(URL, params=params, headers=seeded.headers), 400
        )
        assert set(error["details"]) == {"cursor"}


@pytest.mark.parametrize("path", [URL, EXPORT_URL])
async def test_only_admins_may_read_the_trail(api: Api, path: str) -> None:
    for role in (Role.readonly, Role.user):
        account = await api.user(role)
        assert_envelope(await api.client.get(path, headers=account.headers), 403, "FORBIDDEN")
        # Forbidden comes before any look at the parameters.
        response = await api.client.get(path, params={"limit": "x"}, headers=account.headers)
        assert_envelope(response, 403)
    assert_envelope(await api.client.get(path), 401, "UNAUTHORIZED")
    response = await api.client.get(path, headers={"Authorization": "Bearer nope"})
    assert_envelope(response, 401)
    reads = [r for r in await all_rows(api.runtime) if r.action.startswith("audit.")]
    assert reads == []


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.text == "" or response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


@pytest.mark.parametrize(
    "filters",
    [{}, {"action": "auth."}, {"actor_id": B, "until": "2025-03-02T10:00:00.000001Z"}],
    ids=str,
)
async def test_export_lines_equal_the_paged_items(
    api: Api, seeded: Account, monkeypatch: pytest.MonkeyPatch, filters: dict[str, str]
) -> None:
    # Batches of 7, so that the seeded rows span several of them.
    monkeypatch.setattr(audit_queries, "EXPORT_BATCH", 7)
    request_id = f"export-{uuid.uuid4().hex[:8]}"
    response = await api.client.get(
        EXPORT_URL, params=filters, headers={**seeded.headers, "X-Request-ID": request_id}
    )
    lines = ndjson(response)
    audited = [row for row in await all_rows(api.runtime) if row.request_id == request_id]
    assert [(row.action, row.actor_id) for row in audited] == [("audit.export", seeded.id)]
    through = audited[0].details["through_id"]
    assert audited[0].details["filters"] == filters
    # The export is the range as of the request, oldest first; its own row is after it.
    assert through < audited[0].id
    paged = await walk(api, seeded, filters, limit=9)
    assert lines == list(reversed([item for item in paged if item["id"] <= through]))
    assert lines, "the filter matches rows"
    assert all(set(line) == ITEM_FIELDS for line in lines)


async def test_export_of_nothing_is_empty(api: Api, seeded: Account) -> None:
    response = await api.client.get(EXPORT_URL, params={"action": "nope."}, headers=seeded.headers)
    assert ndjson(response) == []


async def test_export_refuses_bad_or_page_parameters(api: Api, admin: Account) -> None:
    for params in ({"limit": "10"}, {"cursor": "abc"}, {"since": "yesterday"}):
        response = await api.client.get(EXPORT_URL, params=params, headers=admin.headers)
        error = assert_envelope(response, 400, "VALIDATION_ERROR")
        assert set(error["details"]) == set(params)


def test_openapi_documents_the_audit_api() -> None:
    spec = create_app(Settings(server=ServerSettings(env=Environment.test))).openapi()
    listing = spec["paths"][URL]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert names == {
        "actor_id", "target_id", "target_type", "action", "outcome",
        "since", "until", "request_id", "limit", "cursor",
    }  # fmt: skip
    assert {"200", "400", "401", "403"} <= set(listing["responses"])
    export = spec["paths"][EXPORT_URL]["get"]
    assert "application/x-ndjson" in export["responses"]["200"]["content"]
    assert {"limit", "cursor"}.isdisjoint(p["name"] for p in export["parameters"])
