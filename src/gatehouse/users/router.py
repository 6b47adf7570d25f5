"""HTTP ↔ service for /api/v1/users (docs/api.md) and the caller's own profile."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from gatehouse.cache.store import CachedUser
from gatehouse.dependencies import AdminUser, CurrentUser, SelfReader, StaffUser, UserServiceDep
from gatehouse.kit.http import etag, parse_if_match
from gatehouse.kit.openapi import AUTHED, ETAG_HEADER, IfMatch, errors
from gatehouse.kit.schemas import PageMeta
from gatehouse.users.schemas import (
    ListParams,
    MeUpdate,
    PasswordChange,
    UserAdminRead,
    UserCreate,
    UserEdit,
    UserList,
    UserPatch,
    UserRead,
    UserReplace,
)

router = APIRouter(prefix="/api/v1/users", tags=["users"], responses=errors(*AUTHED))


def _user_response(found: CachedUser) -> Response:
    # `UserRead`'s own JSON, as the cache keeps it: parsing it into the model only for
    # FastAPI to validate and serialise it again cost a fifth of the hot path.
    return Response(
        found.read, media_type="application/json", headers={"ETag": etag(found.version)}
    )


@router.get("/me", response_model=UserRead)
async def read_me(actor: SelfReader, users: UserServiceDep) -> Response:
    """Your own profile."""
    return _user_response(await users.get(actor, actor.user_id))


@router.put("/me", response_model=UserRead, responses=errors(409))
async def replace_me(
    body: MeUpdate,
    actor: CurrentUser,
    users: UserServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> UserRead:
    """Update your name or email (an email change needs `current_password`)."""
    user = await users.update_me(actor, body, parse_if_match(if_match))
    response.headers["ETag"] = etag(user.version)
    return UserRead.model_validate(user)


@router.patch("/me", response_model=UserRead, responses=errors(409))
async def update_me(
    body: MeUpdate,
    actor: CurrentUser,
    users: UserServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> UserRead:
    """Partly update your name or email (an email change needs `current_password`)."""
    return await replace_me(body, actor, users, response, if_match)


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, responses=errors(409))
async def delete_me(actor: CurrentUser, users: UserServiceDep) -> None:
    """Delete your account: you are logged out everywhere and your email is freed."""
    await users.delete_me(actor)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(body: PasswordChange, actor: CurrentUser, users: UserServiceDep) -> None:
    """Change your password; your other sessions end, this one goes on."""
    await users.change_password(actor, body)


@router.get("", response_model=UserList)
async def list_users(
    actor: StaffUser,
    users: UserServiceDep,
    params: Annotated[ListParams, Query()],
) -> UserList:
    """List users, paginated and sorted (admin, readonly)."""
    rows, total = await users.list(actor, params)
    return UserList(
        data=[UserAdminRead.model_validate(row) for row in rows],
        meta=PageMeta.build(params.page, params.page_size, total),
    )


@router.post("", response_model=UserRead, status_code=status.HTTP_201_CREATED)
async def create_user(
    body: UserCreate, _: AdminUser, users: UserServiceDep, response: Response
) -> UserRead:
    """Create a user with any role (admin)."""
    user = await users.create(body)
    response.headers["ETag"] = etag(user.version)
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return UserRead.model_validate(user)


@router.get(
    "/{user_id}",
    response_model=UserRead,
    responses={**errors(404), 200: {"headers": ETAG_HEADER}},
)
async def get_user(user_id: uuid.UUID, actor: CurrentUser, users: UserServiceDep) -> Response:
    """Read one user (admin, readonly; anyone may read themself)."""
    return _user_response(await users.get(actor, user_id))


@router.put("/{user_id}", response_model=UserRead, responses=errors(404, 409))
async def replace_user(
    user_id: uuid.UUID,
    body: UserReplace,
    actor: AdminUser,
    users: UserServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> UserRead:
    """Update a user's name and role, and optionally email (admin; your own email needs
    `current_password`)."""
    changes = UserEdit(
        name=body.name, email=body.email, role=body.role, current_password=body.current_password
    )
    return await _update(users, actor, user_id, changes, response, if_match)


@router.patch("/{user_id}", response_model=UserRead, responses=errors(404, 409))
async def patch_user(
    user_id: uuid.UUID,
    body: UserPatch,
    actor: AdminUser,
    users: UserServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> UserRead:
    """Update some of a user's name, role and email (admin; your own email needs
    `current_password`)."""
    changes = UserEdit(
        name=body.name, email=body.email, role=body.role, current_password=body.current_password
    )
    return await _update(users, actor, user_id, changes, response, if_match)


async def _update(
    users: UserServiceDep,
    actor: AdminUser,
    user_id: uuid.UUID,
    changes: UserEdit,
    response: Response,
    if_match: str | None,
) -> UserRead:
    user = await users.update(actor, user_id, changes, parse_if_match(if_match))
    response.headers["ETag"] = etag(user.version)
    return UserRead.model_validate(user)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404, 409))
async def delete_user(
    user_id: uuid.UUID, actor: AdminUser, users: UserServiceDep, if_match: IfMatch = None
) -> None:
    """Soft-delete a user: gone from reads, logged out, email freed (admin)."""
    await users.delete(actor, user_id, parse_if_match(if_match))
