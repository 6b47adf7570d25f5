"""Second factors: enrolling and removing TOTP, recovery codes, the login's MFA step,
step-up, the transitions when MFA goes on or off, and the admin's reset.

Never commits: the caller's unit of work does. A refusal whose side effects must stand
(a wrong code counted on the mfa_token) is raised with `persist`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from gatehouse.audit.trail import Entry
from gatehouse.auth.passwords import PasswordHasher
from gatehouse.auth.principal import Principal
from gatehouse.auth.repository import SessionRepository
from gatehouse.auth.service import AuthService, TokenPair, amr_of, amr_text, hash_mfa_token
from gatehouse.config import Settings
from gatehouse.emails.service import queue_email
from gatehouse.emails.templates import Kind, product_name
from gatehouse.errors import Conflict, GatehouseError, UserNotFound
from gatehouse.events import outbox
from gatehouse.events.schemas import UserMfaDisabled, UserMfaEnabled, UserMfaReset
from gatehouse.kit.encryption import EncryptedColumn, KeyRing
from gatehouse.kit.time import utcnow
from gatehouse.mfa import totp
from gatehouse.mfa.checks import Method, PasskeyVerifier
from gatehouse.mfa.errors import (
    InvalidMfaCode,
    MethodNotEnrolled,
    MfaAlreadyEnabled,
    MfaThrottled,
    MfaTokenInvalid,
    NoPasskeyVerifier,
    NoPendingTotp,
    WrongEnrolmentCode,
)
from gatehouse.mfa.models import TotpFactor
from gatehouse.mfa.repository import MfaRepository
from gatehouse.mfa.throttle import MfaThrottle, account_key
from gatehouse.passkeys.models import Passkey
from gatehouse.uow import UnitOfWork
from gatehouse.users.errors import WrongPassword
from gatehouse.users.models import User
from gatehouse.users.repository import UserRepository

FactorKind = Literal["totp", "passkey"]
# Mails about a factor kind going on or off.
_ADDED = {"totp": Kind.totp_enabled, "passkey": Kind.passkey_added}
_REMOVED = {"totp": Kind.totp_disabled, "passkey": Kind.passkey_removed}
# The code-guessing alert goes out at most once per window per account.
GUESSING_ALERT_WINDOW_SECONDS = 3600


def totp_context(user_id: uuid.UUID) -> str:
    """Where a user's TOTP secret lives: its token decrypts there only."""
    return f"mfa_totp:{user_id}"


# For `gatehouse keys rotate-encryption`.
TOTP_SECRET_COLUMN = EncryptedColumn(
    label="mfa_totp.secret",
    column=TotpFactor.secret,
    key=TotpFactor.user_id,
    context=totp_context,
)


class MfaNotEnabled(Conflict):
    code = "MFA_NOT_ENABLED"
    default_message = "Set up an authenticator app or a passkey first"


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True)
class TotpState:
    enabled: bool
    confirmed_at: datetime | None


@dataclass(frozen=True)
class MfaState:
    enabled: bool
    required: bool
    totp: TotpState
    passkeys: Sequence[Passkey]
    recovery_codes_left: int


@dataclass(frozen=True)
class Proof:
    """A second factor as a client presents it (at login or for a step-up)."""

    method: Method
    code: str | None = None
    challenge_id: uuid.UUID | None = None
    credential: dict[str, Any] | None = None


class MfaService:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        *,
        encryption: KeyRing,
        hasher: PasswordHasher,
        auth: AuthService | None = None,
        throttle: MfaThrottle | None = None,
        passkeys: PasskeyVerifier | None = None,
    ) -> None:
        self.uow = uow
        self.session = session = uow.session
        self.settings = settings
        self.encryption = encryption
        self.hasher = hasher
        # Issues the session and tokens of a completed login (`verify_login`).
        self.auth = auth
        # None: no bound across mfa_tokens (GATEHOUSE_RATE_LIMIT_ENABLED=false).
        self.throttle = throttle
        # The passkeys feature's assertion check; None: "webauthn" is refused (400).
        self.passkeys = passkeys
        self.repo = MfaRepository(session)
        self.users = UserRepository(session)
        self.sessions = SessionRepository(session)

    # --- reading --------------------------------------------------------------------------

    async def state(self, user_id: uuid.UUID) -> MfaState:
        user = await self.users.get(user_id)
        if user is None:
            raise UserNotFound(user_id)
        found = await self.repo.totp(user_id)
        confirmed = found.confirmed_at if found is not None else None
        passkeys = await self.repo.passkeys.list_for_user(user_id)
        return MfaState(
            enabled=confirmed is not None or bool(passkeys),
            required=user.role in self.settings.mfa_required_roles,
            totp=TotpState(enabled=confirmed is not None, confirmed_at=confirmed),
            passkeys=passkeys,
            recovery_codes_left=await self.repo.recovery_codes_left(user_id),
        )

    # --- TOTP -----------------------------------------------------------------------------

    async def enrol_totp(self, actor: Principal, current_password: str) -> TotpEnrolment:
        """A new pending secret (replacing a pending one); it counts once confirmed."""
        async with self.uow.reader() as reader:
            read = await UserRepository(reader).get(actor.user_id)
        verified = read is not None and await self.hasher.verify(
            current_password, read.password_hash
        )
        user = await self._user(actor.user_id)
        if not verified or read is None or read.password_hash != user.password_hash:
            self._audit("mfa.totp_enrol", user.id, outcome="failure", reason="wrong_password")
            raise WrongPassword()
        existing = await self.repo.totp(user.id)
        if existing is not None and existing.confirmed_at is not None:
            raise MfaAlreadyEnabled()
        secret = totp.new_secret()
        sealed = self.encryption.encrypt(secret, context=totp_context(user.id))
        await self.repo.put_pending_totp(user.id, sealed, utcnow())
        self._audit("mfa.totp_enrol", user.id)
        uri = totp.otpauth_uri(secret, email=user.email, issuer=product_name(self.settings))
        return TotpEnrolment(secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri))

    async def confirm_totp(self, actor: Principal, code: str) -> list[str]:
        """The first code from the app makes the secret a factor; the recovery codes made
        if this turned MFA on (or none were left), else []."""
        user = await self._user(actor.user_id)
        found = await self.repo.totp(user.id)
        if found is None:
            raise NoPendingTotp()
        if found.confirmed_at is not None:
            raise MfaAlreadyEnabled()
        secret = self._secret(found)
        step = totp.matching_step(secret, code, utcnow().timestamp(), None)
        if step is None:
            self._audit("mfa.totp_confirm", user.id, outcome="failure", reason="wrong_code")
            raise WrongEnrolmentCode()
        if not await self.repo.confirm_totp(user.id, step, utcnow()):
            raise NoPendingTotp()
        self._audit("mfa.totp_confirm", user.id)
        return await self.factor_added(user.id, "totp", actor.session_id)

    async def remove_totp(self, actor: Principal) -> None:
        """Remove the authenticator app (the route asked for a step-up)."""
        user = await self._user(actor.user_id)
        found = await self.repo.totp(user.id)
        if found is None:
            return
        confirmed = found.confirmed_at is not None
        await self.repo.delete_totp(user.id)
        if confirmed:
            self._audit("mfa.totp_remove", user.id)
            await self.factor_removed(user.id, "totp")

    # --- recovery codes ---------------------------------------------------------------------

    async def regenerate_recovery_codes(self, actor: Principal) -> list[str]:
        user = await self._user(actor.user_id)
        if not await self.repo.has_mfa(user.id):
            raise MfaNotEnabled()
        codes = await self._new_recovery_codes(user.id)
        self._audit("mfa.recovery_codes_regenerate", user.id)
        await self._mail(user, Kind.recovery_codes_regenerated)
        return codes

    async def _new_recovery_codes(self, user_id: uuid.UUID) -> list[str]:
        codes = totp.new_recovery_codes()
        await self.repo.replace_recovery_codes(
            user_id, [totp.hash_recovery_code(code) for code in codes], utcnow()
        )
        return codes

    # --- the login's second step ------------------------------------------------------------

    async def verify_login(self, mfa_token: str, proof: Proof) -> TokenPair:
        """Finish a password login with a second factor: the session and the pair."""
        assert self.auth is not None  # noqa: S101  (the router always hands it)
        now = utcnow()
        max_failures = self.settings.mfa.mfa_token_max_failures
        challenge = await self.repo.challenge(hash_mfa_token(mfa_token))
        user = await self.users.get(challenge.user_id) if challenge is not None else None
        if (
            challenge is None
            or user is None
            or challenge.used_at is not None
            or challenge.expires_at <= now
            or challenge.failures >= max_failures
        ):
            self._audit(
                "mfa.verify",
                user.id if user is not None else None,
                outcome="failure",
                reason="token_invalid",
                details={"method": proof.method},
            )
            raise MfaTokenInvalid()
        await self._throttle(user, "mfa.verify", proof.method)
        try:
            amr = await self._check(user, proof, "mfa", challenge.id)
        except InvalidMfaCode:
            failures = await self.repo.fail_challenge(challenge.id)
            self._audit(
                "mfa.verify",
                user.id,
                outcome="failure",
                reason="wrong_code",
                details={"method": proof.method},
            )
            raise InvalidMfaCode(max(0, max_failures - failures)) from None
        if not await self.repo.use_challenge(challenge.id, now, max_failures):
            # Another request finished this login first.
            raise MfaTokenInvalid()
        self._audit("mfa.verify", user.id, details={"method": proof.method}, actor=user)
        return await self.auth.start_session(user, amr, second_factor=True)

    # --- step-up ----------------------------------------------------------------------------

    async def step_up(self, actor: Principal, proof: Proof) -> datetime:
        """A fresh second-factor check in this session; when its effect ends."""
        user = await self._user(actor.user_id)
        if not await self.repo.has_mfa(user.id):
            raise MethodNotEnrolled(proof.method)
        await self._throttle(user, "mfa.step_up", proof.method)
        try:
            await self._check(user, proof, "step_up")
        except InvalidMfaCode:
            self._audit(
                "mfa.step_up",
                user.id,
                outcome="failure",
                reason="wrong_code",
                details={"method": proof.method},
            )
            raise
        now = utcnow()
        if not await self.sessions.second_factor(actor.session_id, None, now):
            raise MfaTokenInvalid()
        self._audit("mfa.step_up", user.id, details={"method": proof.method})
        return now + timedelta(seconds=self.settings.mfa.mfa_step_up_seconds)

    # --- checking a second factor ---------------------------------------------------------

    async def _throttle(self, user: User, action: str, method: str) -> None:
        if self.throttle is None:
            return
        wait = await self.throttle.check(account_key(user.id, user.password_hash))
        if wait is None:
            return
        self._audit(
            action, user.id, outcome="failure", reason="rate_limited", details={"method": method}
        )
        window = int(utcnow().timestamp()) // GUESSING_ALERT_WINDOW_SECONDS
        await self._mail(user, Kind.mfa_code_guessing, dedupe=f"guessing:{user.id}:{window}")
        raise MfaThrottled(wait)

    async def _check(
        self,
        user: User,
        proof: Proof,
        purpose: Literal["mfa", "step_up"],
        mfa_challenge_id: uuid.UUID | None = None,
    ) -> list[str]:
        """The amr a right proof adds to the password's; InvalidMfaCode when wrong."""
        if proof.method == "totp":
            found = await self.repo.totp(user.id)
            if found is None or found.confirmed_at is None:
                raise MethodNotEnrolled("totp")
            step = totp.matching_step(
                self._secret(found), proof.code or "", utcnow().timestamp(), found.last_used_step
            )
            if step is None or not await self.repo.use_totp_step(user.id, step):
                raise InvalidMfaCode()
            return ["pwd", "otp", "mfa"]
        if proof.method == "recovery_code":
            if not await self.repo.recovery_codes_left(user.id):
                raise MethodNotEnrolled("recovery_code")
            code_hash = totp.hash_recovery_code(proof.code or "")
            if not await self.repo.use_recovery_code(user.id, code_hash, utcnow()):
                raise InvalidMfaCode()
            self._audit(
                "mfa.recovery_code_used",
                user.id,
                details={"left": await self.repo.recovery_codes_left(user.id)},
            )
            await self._mail(user, Kind.recovery_code_used)
            return ["pwd", "otp", "mfa"]
        if not await self.repo.passkeys.count_for_user(user.id):
            raise MethodNotEnrolled("webauthn")
        if self.passkeys is None:
            raise NoPasskeyVerifier()
        if proof.challenge_id is None or proof.credential is None:
            raise MethodNotEnrolled("webauthn")  # the schema asks for both: unreachable
        try:
            kind = await self.passkeys.verify_assertion(
                user_id=user.id,
                challenge_id=proof.challenge_id,
                credential=proof.credential,
                purpose=purpose,
                mfa_challenge_id=mfa_challenge_id,
            )
        except GatehouseError as exc:
            if exc.status != 401:
                raise
            raise InvalidMfaCode() from None
        return ["pwd", kind, "mfa"]

    def _secret(self, found: TotpFactor) -> str:
        return self.encryption.decrypt_text(found.secret, context=totp_context(found.user_id))

    # --- transitions: MFA on and off ------------------------------------------------------

    async def factor_added(
        self, user_id: uuid.UUID, kind: FactorKind, current_session_id: uuid.UUID | None
    ) -> list[str]:
        """A factor was just added (a TOTP confirmed, a passkey registered); the
        recovery codes made, [] if none.

        When it is the user's first (MFA goes on): every other session ends (their
        refresh tokens with them), the current one's amr gains the factor and "mfa" and
        counts as stepped up now, recovery codes are made, `user.mfa_enabled` is
        recorded. Later factors make recovery codes only when none is left. The user is
        mailed either way.
        """
        user = await self._user(user_id)
        count = await self.repo.factor_count(user_id)
        codes: list[str] = []
        now = utcnow()
        if count == 1:
            await self.sessions.revoke_all(user_id, now, "mfa_enabled", keep=current_session_id)
            if current_session_id is not None:
                current = await self.sessions.get(current_session_id)
                if current is not None:
                    gained = ["otp"] if kind == "totp" else []
                    amr = amr_text([*amr_of(current.amr), *gained, "mfa"])
                    await self.sessions.second_factor(current_session_id, amr, now)
            codes = await self._new_recovery_codes(user_id)
            await outbox.record(
                self.uow,
                UserMfaEnabled(user_id=user_id, method=kind, version=user.version),
                aggregate_id=user_id,
            )
        elif not await self.repo.recovery_codes_left(user_id):
            codes = await self._new_recovery_codes(user_id)
        await self._mail(user, _ADDED[kind])
        return codes

    async def factor_removed(self, user_id: uuid.UUID, kind: FactorKind) -> None:
        """A factor was just removed by its user: they are mailed; if it was the last,
        the recovery codes go and `user.mfa_disabled` is recorded."""
        user = await self._user(user_id)
        if not await self.repo.has_mfa(user_id):
            await self.repo.delete_recovery_codes(user_id)
            await outbox.record(
                self.uow,
                UserMfaDisabled(user_id=user_id, version=user.version),
                aggregate_id=user_id,
            )
        await self._mail(user, _REMOVED[kind])

    # --- the admin's reset --------------------------------------------------------------------

    async def reset(self, user_id: uuid.UUID) -> None:
        """Remove every factor of a user (a lost device): TOTP, passkeys, recovery codes;
        their sessions end; audited, announced and mailed."""
        user = await self._user(user_id)
        removed = await self.repo.delete_all(user_id)
        ended = await self.sessions.revoke_all(user_id, utcnow(), "mfa_reset")
        self._audit("mfa.reset", user_id, details={**removed, "sessions_ended": ended})
        await outbox.record(
            self.uow, UserMfaReset(user_id=user_id, version=user.version), aggregate_id=user_id
        )
        await self._mail(user, Kind.mfa_reset)

    # --- helpers --------------------------------------------------------------------------

    async def _user(self, user_id: uuid.UUID) -> User:
        user = await self.users.get(user_id)
        if user is None:
            raise UserNotFound(user_id)
        return user

    async def _mail(self, user: User, kind: Kind, dedupe: str | None = None) -> None:
        await queue_email(
            self.uow,
            self.settings,
            kind=kind,
            user=user,
            dedupe_key=dedupe or f"{kind.value}:{user.id}:{uuid.uuid4()}",
        )

    def _audit(
        self,
        action: str,
        user_id: uuid.UUID | None,
        *,
        outcome: str = "success",
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        actor: User | None = None,
    ) -> None:
        """A row about the user; a failure is written even when the request rolls back."""
        self.uow.audit.record(
            Entry(
                action,
                outcome=outcome,
                reason=reason,
                target_type="user" if user_id is not None else None,
                target_id=str(user_id) if user_id is not None else None,
                details=details or {},
                actor_id=actor.id if actor is not None else None,
                actor_role=actor.role if actor is not None else None,
            ),
            always=outcome != "success",
        )
