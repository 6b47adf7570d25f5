"""The recovery endpoints as an API: validation, OpenAPI, the shared rate-limit bucket."""

from __future__ import annotations

from typing import Any

import pytest

from gatehouse.worker.embedded import InProcessRunner
from tests.emails.conftest import RESET, RESET_REQUEST, VERIFY, VERIFY_REQUEST
from tests.factories import Api, assert_envelope

# Nothing here depends on the database.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

ENDPOINTS = [VERIFY_REQUEST, VERIFY, RESET_REQUEST, RESET]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"rate_limit_enabled": True, "rate_limit_password_reset": "3/hour"}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (VERIFY_REQUEST, {}, "email"),
        (VERIFY_REQUEST, {"email": ["a@example.com"]}, "email"),
        (RESET_REQUEST, {"email": "a@example.com", "role": "admin"}, "role"),
        (VERIFY, {"token": 12345}, "token"),
        (VERIFY, {"token": "x" * 600}, "token"),
        (RESET, {"token": "abc"}, "new_password"),
        (RESET, {"token": "abc", "new_password": ""}, "new_password"),
    ],
)
async def test_bad_input_is_a_400_envelope(
    api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    error = assert_envelope(await api.client.post(path, json=body), 400, "VALIDATION_ERROR")
    assert field in error["details"], error


async def test_the_endpoints_are_documented(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    for path in ENDPOINTS:
        operation = spec["paths"][path]["post"]
        assert operation["description"] or operation["summary"]
        assert "400" in operation["responses"]
        assert operation["security"] == []  # public: no credentials asked for
    assert "202" in spec["paths"][RESET_REQUEST]["post"]["responses"]
    assert "204" in spec["paths"][RESET]["post"]["responses"]


async def test_both_request_endpoints_share_the_password_reset_bucket(
    api: Api, runner: InProcessRunner
) -> None:
    assert (
        await api.client.post(VERIFY_REQUEST, json={"email": "a@example.com"})
    ).status_code == 202
    assert (
        await api.client.post(RESET_REQUEST, json={"email": "a@example.com"})
    ).status_code == 202
    assert (
        await api.client.post(VERIFY_REQUEST, json={"email": "b@example.com"})
    ).status_code == 202
    over = await api.client.post(RESET_REQUEST, json={"email": "c@example.com"})
    assert_envelope(over, 429, "RATE_LIMITED")
    assert_envelope(
        await api.client.post(VERIFY_REQUEST, json={"email": "c@example.com"}), 429, "RATE_LIMITED"
    )
    # Using a token is not in that bucket.
    response = await api.client.post(VERIFY, json={"token": "unknown"})
    assert_envelope(response, 400, "INVALID_TOKEN")
