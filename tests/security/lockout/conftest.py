"""The login-protection suites' fixtures: where the counts live, the settings that switch
them on, and the app over them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from gatehouse.runtime import Runtime
from tests.conftest import app_for


# Where the counts live, with the database beside them: the embedded default (SQLite,
# memory), a single instance on Redis, and production's pair (PostgreSQL, Redis). The
# counts never touch the database, so PostgreSQL with in-process counts adds nothing.
@pytest.fixture(params=["sqlite-memory", "sqlite-redis", "postgres-redis"])
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend(store: str) -> str:
    return store.split("-")[0]


@pytest.fixture
def extra_settings() -> dict[str, Any]:
    """A test parametrizes this to change a setting on every store."""
    return {}


@pytest.fixture
def settings_overrides(
    request: pytest.FixtureRequest, store: str, extra_settings: dict[str, Any]
) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "rate_limit_enabled": True,
        # The general limiter's login bucket stays out of the way of these counts.
        "rate_limit_login": "100000/hour",
        # Tests pose as many clients: the test client is the trusted proxy.
        "trusted_proxies": ["127.0.0.1/32"],
    }
    if store.endswith("redis"):
        overrides["redis_url"] = request.getfixturevalue("redis_url")
        overrides["redis_prefix"] = request.getfixturevalue("redis_prefix")
    return {**overrides, **extra_settings}


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return app_for(runtime)
