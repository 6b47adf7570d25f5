"""What other features ask of MFA on a request: which methods a user has, whether a
session stepped up recently, the enrolment policy; and the passkey verifier's shape.

Apart from `service.py` so that the users feature (whose service the auth service
imports) can ask without an import cycle.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, Literal, Protocol

from gatehouse.auth.principal import Principal
from gatehouse.auth.repository import SessionRepository
from gatehouse.config import Settings
from gatehouse.kit.time import utcnow
from gatehouse.mfa.errors import MfaEnrollmentRequired, StepUpRequired
from gatehouse.mfa.repository import MfaRepository
from gatehouse.uow import UnitOfWork

Method = Literal["totp", "recovery_code", "webauthn"]
PasskeyAmr = Literal["hwk", "swk"]


class PasskeyVerifier(Protocol):
    """Checks a WebAuthn assertion for a user (implemented by the passkeys feature).

    Returns "hwk" for a device-bound credential, "swk" for a synced one; raises its own
    401 error when the assertion fails (and records what it must, challenge spent).
    `mfa_challenge_id`: the login's mfa_token row the ceremony must have been made for.
    """

    async def verify_assertion(
        self,
        *,
        user_id: uuid.UUID,
        challenge_id: uuid.UUID,
        credential: dict[str, Any],
        purpose: Literal["mfa", "step_up"],
        mfa_challenge_id: uuid.UUID | None = None,
    ) -> PasskeyAmr: ...


async def methods(repo: MfaRepository, user_id: uuid.UUID) -> list[Method]:
    """The second-factor methods the user can use now, in the contract's order."""
    found: list[Method] = []
    totp = await repo.totp(user_id)
    if totp is not None and totp.confirmed_at is not None:
        found.append("totp")
    if await repo.recovery_codes_left(user_id):
        found.append("recovery_code")
    if await repo.passkeys.count_for_user(user_id):
        found.append("webauthn")
    return found


async def require_step_up(uow: UnitOfWork, settings: Settings, actor: Principal) -> None:
    """403 STEP_UP_REQUIRED when the caller has MFA and their session has not checked a
    second factor within GATEHOUSE_MFA_STEP_UP_SECONDS; nothing for a user without MFA."""
    # Read apart on SQLite: the route may check a password (bcrypt) next, which must
    # not run under the write lock a first statement of the unit of work would take.
    async with uow.reader() as session:
        repo = MfaRepository(session)
        if not await repo.has_mfa(actor.user_id):
            return
        verified = await SessionRepository(session).step_up_state(actor.session_id)
        window = timedelta(seconds=settings.mfa.mfa_step_up_seconds)
        if verified is not None and utcnow() - verified <= window:
            return
        offered = list(await methods(repo, actor.user_id))
    raise StepUpRequired(offered)


# Where a user whose role needs MFA may go before enrolling: their profile, the MFA
# and passkey settings, logging out, and the step-up itself.
POLICY_OPEN: tuple[tuple[str | None, str], ...] = (
    ("GET", "/api/v1/users/me"),
    (None, "/api/v1/users/me/mfa"),
    (None, "/api/v1/users/me/passkeys"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/mfa/step-up"),
)


def policy_exempt(method: str, route: str) -> bool:
    for allowed_method, path in POLICY_OPEN:
        if allowed_method is None:
            if route == path or route.startswith(path + "/"):
                return True
        elif method == allowed_method and route == path:
            return True
    return False


async def enforce_policy(
    uow: UnitOfWork, settings: Settings, actor: Principal, method: str, route: str
) -> None:
    """403 MFA_ENROLLMENT_REQUIRED for a user whose role must have MFA and who has
    none, on every route but the open ones. Cheap on the hot path: nothing for roles
    outside the policy, nor for a token whose login used a second factor; the database
    is asked only for a token without one."""
    required = settings.mfa_required_roles
    if not required or actor.role.value not in required or actor.second_factor:
        return
    if policy_exempt(method, route):
        return
    async with uow.reader() as session:
        if await MfaRepository(session).has_mfa(actor.user_id):
            return
    raise MfaEnrollmentRequired()
