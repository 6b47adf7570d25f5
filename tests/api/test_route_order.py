"""The routers sharing `/api/v1/users` cannot shadow one another, whatever their order."""

from __future__ import annotations

import pytest
from fastapi import APIRouter

from gatehouse.kit.routing import AmbiguousRoutes, check_unambiguous
from tests.factories import Api


def _router(*paths: str) -> APIRouter:
    router = APIRouter(prefix="/api/v1/users")
    for path in paths:
        router.add_api_route(path, lambda: None, methods=["GET"])
    return router


def test_a_parameter_route_before_a_literal_one_is_refused() -> None:
    general, literal = _router("/{user_id}"), _router("/me")
    with pytest.raises(AmbiguousRoutes, match=r"/api/v1/users/\{user_id\} is tried before"):
        check_unambiguous([*general.routes, *literal.routes])
    check_unambiguous([*literal.routes, *general.routes])


def test_routes_of_other_methods_or_lengths_do_not_collide() -> None:
    router = APIRouter(prefix="/api/v1/users")
    router.add_api_route("/{user_id}", lambda: None, methods=["DELETE"])
    router.add_api_route("/me", lambda: None, methods=["GET"])
    router.add_api_route("/{user_id}/sessions", lambda: None, methods=["GET"])
    router.add_api_route("/me/export", lambda: None, methods=["GET"])
    check_unambiguous(router.routes)


async def test_me_and_an_id_reach_their_own_routes(api: Api) -> None:
    """What the check protects: `/me` paths are never read as a user id."""
    me = await api.user("user")
    for path in ("/api/v1/users/me", "/api/v1/users/me/sessions", "/api/v1/users/me/export"):
        response = await api.client.get(path, headers=me.headers)
        assert response.status_code == 200, (path, response.text)
