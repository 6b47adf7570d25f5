"""Typed dependency aliases: an endpoint reads as its signature.

Every protected endpoint declares who may call it (CurrentUser, StaffUser, AdminUser);
public endpoints declare none. tests/security/test_access_matrix.py lists every route
the app serves, public ones included, with the status each role gets, and fails on a
route it does not list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from gatehouse.auth.principal import Principal
from gatehouse.auth.service import AuthService
from gatehouse.errors import Forbidden, NotAuthenticated
from gatehouse.kit.context import VERIFIED_TOKEN, Actor, user_id_var
from gatehouse.kit.http import SAFE_METHODS, header_text
from gatehouse.mfa.checks import enforce_policy, require_step_up
from gatehouse.mfa.service import MfaService
from gatehouse.mfa.throttle import MfaThrottle
from gatehouse.passkeys.service import PasskeyAssertions, PasskeyService
from gatehouse.runtime import Runtime
from gatehouse.uow import UnitOfWork
from gatehouse.users.models import Role
from gatehouse.users.service import UserService


# Every dependency here is `async def`, even those that never await: FastAPI runs a plain
# `def` dependency on a worker thread, and that hop cost more than the rest of a cached
# request's dependencies together.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def request_actor(request: Request) -> Actor:
    """The caller as far as is known before authentication: address, client, request."""
    return Actor(
        ip=getattr(request.state, "client_ip", None),
        user_agent=header_text(request.headers.get("user-agent")),
        request_id=getattr(request.state, "request_id", None),
    )


async def get_uow(request: Request, runtime: RuntimeDep) -> AsyncIterator[UnitOfWork]:
    """The request's one unit of work, committed once when the endpoint has returned."""
    write = request.method not in SAFE_METHODS
    async with runtime.unit_of_work(write=write, actor=request_actor(request)) as uow:
        yield uow


# scope="function": the unit of work commits when the endpoint returns, before the
# response is sent; a client that got 2xx can rely on the change being stored, and a
# failing commit still answers 5xx instead of a 2xx for a change that was lost.
UowDep = Annotated[UnitOfWork, Depends(get_uow, scope="function")]

bearer_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    auto_error=False,
    description="Log in with your email as the username. Access tokens are RS256 JWTs.",
)


def build_auth_service(uow: UnitOfWork, runtime: Runtime) -> AuthService:
    """The auth service as a request gets it (jobs and tests build it the same way)."""
    return AuthService(
        uow,
        runtime.settings.auth,
        runtime.hasher,
        runtime.tokens,
        runtime.protection,
        mail=runtime.settings,
    )


def build_user_service(uow: UnitOfWork, runtime: Runtime) -> UserService:
    """The users service as a request gets it (jobs and tests build it the same way)."""
    return UserService(uow, runtime.settings.auth, runtime.hasher, mail=runtime.settings)


def build_mfa_service(uow: UnitOfWork, runtime: Runtime) -> MfaService:
    """The MFA service as a request gets it (jobs and tests build it the same way), with
    the passkey check behind its "webauthn" method."""
    auth = build_auth_service(uow, runtime)
    mfa = _mfa_service(uow, runtime, auth)
    mfa.passkeys = PasskeyAssertions(_passkey_service(uow, runtime, auth, mfa))
    return mfa


def build_passkey_service(uow: UnitOfWork, runtime: Runtime) -> PasskeyService:
    """The passkey service as a request gets it (tests build it the same way); its MFA
    service only hears that a factor came or went, so it needs no passkey check."""
    auth = build_auth_service(uow, runtime)
    return _passkey_service(uow, runtime, auth, _mfa_service(uow, runtime, auth))


def _mfa_service(uow: UnitOfWork, runtime: Runtime, auth: AuthService) -> MfaService:
    limits = runtime.settings.rate_limit
    return MfaService(
        uow,
        runtime.settings,
        encryption=runtime.encryption,
        hasher=runtime.hasher,
        auth=auth,
        throttle=runtime.part(MfaThrottle) if limits.rate_limit_enabled else None,
    )


def _passkey_service(
    uow: UnitOfWork, runtime: Runtime, auth: AuthService, mfa: MfaService
) -> PasskeyService:
    return PasskeyService(
        uow, runtime.settings, runtime.hasher, auth, mfa, protection=runtime.protection
    )


async def get_auth_service(uow: UowDep, runtime: RuntimeDep) -> AuthService:
    return build_auth_service(uow, runtime)


async def get_user_service(uow: UowDep, runtime: RuntimeDep) -> UserService:
    return build_user_service(uow, runtime)


async def get_mfa_service(uow: UowDep, runtime: RuntimeDep) -> MfaService:
    return build_mfa_service(uow, runtime)


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]
UserServiceDep = Annotated[UserService, Depends(get_user_service)]
MfaServiceDep = Annotated[MfaService, Depends(get_mfa_service)]


async def get_passkey_service(uow: UowDep, runtime: RuntimeDep) -> PasskeyService:
    return build_passkey_service(uow, runtime)


PasskeyServiceDep = Annotated[PasskeyService, Depends(get_passkey_service)]


async def get_principal(
    request: Request,
    auth: AuthServiceDep,
    token: Annotated[str | None, Depends(bearer_scheme)],
) -> Principal:
    return await _authenticate(request, auth, token, reads_self=False)


async def get_self_reader(
    request: Request,
    auth: AuthServiceDep,
    token: Annotated[str | None, Depends(bearer_scheme)],
) -> Principal:
    """The caller, for a route that reads the caller's own profile next."""
    return await _authenticate(request, auth, token, reads_self=True)


async def _authenticate(
    request: Request, auth: AuthService, token: str | None, *, reads_self: bool
) -> Principal:
    if not token:
        raise NotAuthenticated()
    verified = getattr(request.state, VERIFIED_TOKEN, None)
    claims = verified[1] if verified is not None and verified[0] == token else None
    principal = await auth.principal(token, claims, reads_self=reads_self)
    request.state.user_id = str(principal.user_id)
    # Jobs this request asks for carry it (RequestContextMiddleware resets it).
    user_id_var.set(request.state.user_id)
    request.state.user_role = principal.role.value
    auth.uow.act_as(auth.uow.actor.as_user(principal.user_id, principal.role.value))
    route = request.scope.get("route")
    await enforce_policy(
        auth.uow,
        request.app.state.runtime.settings,
        principal,
        request.method,
        getattr(route, "path", request.url.path),
    )
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]
# The same caller, for GET /users/me: their profile's cache entry comes with the
# principal's, in one round trip.
SelfReader = Annotated[Principal, Depends(get_self_reader)]


async def get_stepped_up(principal: CurrentUser, uow: UowDep, runtime: RuntimeDep) -> Principal:
    await require_step_up(uow, runtime.settings, principal)
    return principal


# The caller, who has checked a second factor recently if they have one (else 403
# STEP_UP_REQUIRED): for changes a stolen session must not make alone.
StepUpUser = Annotated[Principal, Depends(get_stepped_up)]


def require_roles(*roles: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    async def check(principal: CurrentUser) -> Principal:
        if principal.role not in roles:
            raise Forbidden()
        return principal

    return check


AdminUser = Annotated[Principal, Depends(require_roles(Role.admin))]
StaffUser = Annotated[Principal, Depends(require_roles(Role.admin, Role.readonly))]
