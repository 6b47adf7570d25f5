"""Admin API for OAuth clients: admins register and manage them, readonly users may look."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from gatehouse.clients.models import OAuthClient
from gatehouse.clients.schemas import (
    ClientCreate,
    ClientList,
    ClientPatch,
    ClientRead,
    ClientSecret,
    ClientWithSecret,
    ListParams,
)
from gatehouse.clients.service import ClientService
from gatehouse.dependencies import AdminUser, StaffUser, UowDep
from gatehouse.kit.http import etag, parse_if_match
from gatehouse.kit.openapi import AUTHED, ETAG_HEADER, IfMatch, errors
from gatehouse.kit.schemas import PageMeta

router = APIRouter(prefix="/api/v1/clients", tags=["clients"], responses=errors(*AUTHED))


async def get_client_service(uow: UowDep) -> ClientService:
    return ClientService(uow)


ClientServiceDep = Annotated[ClientService, Depends(get_client_service)]


def _read(client: OAuthClient, response: Response) -> ClientRead:
    response.headers["ETag"] = etag(client.version)
    return ClientRead.model_validate(client)


@router.post(
    "",
    response_model=ClientWithSecret,
    status_code=status.HTTP_201_CREATED,
    responses={201: {"headers": ETAG_HEADER}},
)
async def create_client(
    body: ClientCreate, _: AdminUser, clients: ClientServiceDep, response: Response
) -> ClientWithSecret:
    """Register a client (admin); a confidential client's `client_secret` is shown only here."""
    issued = await clients.create(body)
    response.headers["Location"] = f"/api/v1/clients/{issued.client.id}"
    read = _read(issued.client, response)
    return ClientWithSecret(**read.model_dump(), client_secret=issued.secret)


@router.get("", response_model=ClientList)
async def list_clients(
    _: StaffUser, clients: ClientServiceDep, params: Annotated[ListParams, Query()]
) -> ClientList:
    """List clients, newest first (admin, readonly); never their secrets."""
    rows, total = await clients.list(params)
    return ClientList(
        data=[ClientRead.model_validate(row) for row in rows],
        meta=PageMeta.build(params.page, params.page_size, total),
    )


@router.get(
    "/{id}",
    response_model=ClientRead,
    responses={**errors(404), 200: {"headers": ETAG_HEADER}},
)
async def get_client(
    id: uuid.UUID,
    _: StaffUser,
    clients: ClientServiceDep,
    response: Response,
) -> ClientRead:
    """Read one client, without its secret (admin, readonly)."""
    return _read(await clients.get(id), response)


@router.patch("/{id}", response_model=ClientRead, responses=errors(404, 409))
async def update_client(
    id: uuid.UUID,
    body: ClientPatch,
    _: AdminUser,
    clients: ClientServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> ClientRead:
    """Change any field but `type` (admin); `logo_url: null` removes the logo."""
    client = await clients.update(id, body.model_dump(exclude_unset=True), parse_if_match(if_match))
    return _read(client, response)


@router.post("/{id}/disable", response_model=ClientRead, responses=errors(404, 409))
async def disable_client(
    id: uuid.UUID,
    _: AdminUser,
    clients: ClientServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> ClientRead:
    """Disable a client (admin): every authentication of it fails until it is enabled."""
    return _read(await clients.set_enabled(id, False, parse_if_match(if_match)), response)


@router.post("/{id}/enable", response_model=ClientRead, responses=errors(404, 409))
async def enable_client(
    id: uuid.UUID,
    _: AdminUser,
    clients: ClientServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> ClientRead:
    """Enable a disabled client again (admin)."""
    return _read(await clients.set_enabled(id, True, parse_if_match(if_match)), response)


@router.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404, 409))
async def delete_client(
    id: uuid.UUID,
    _: AdminUser,
    clients: ClientServiceDep,
    if_match: IfMatch = None,
) -> None:
    """Delete a client and the consents given to it (admin)."""
    await clients.delete(id, parse_if_match(if_match))


@router.post("/{id}/rotate-secret", response_model=ClientSecret, responses=errors(404, 409))
async def rotate_secret(
    id: uuid.UUID,
    _: AdminUser,
    clients: ClientServiceDep,
    response: Response,
    if_match: IfMatch = None,
) -> ClientSecret:
    """Replace a confidential client's secret (admin): the old one stops working at once,
    the new one is shown only here. A public client has none: `409 CLIENT_IS_PUBLIC`."""
    issued = await clients.rotate_secret(id, parse_if_match(if_match))
    response.headers["ETag"] = etag(issued.client.version)
    return ClientSecret.model_validate(
        {**ClientRead.model_validate(issued.client).model_dump(), "client_secret": issued.secret}
    )
