"""Passkeys (WebAuthn): registration, management, and the one assertion check behind the
passwordless login, the login's second step and step-up. Never commits."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    generate_challenge,
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from gatehouse.audit.trail import Entry
from gatehouse.auth.passwords import PasswordHasher
from gatehouse.auth.principal import Principal
from gatehouse.auth.protection import Attempt, LoginProtection
from gatehouse.auth.service import AuthService, TokenPair, hash_mfa_token
from gatehouse.config import Settings
from gatehouse.errors import GatehouseError, UserNotFound
from gatehouse.kit import metrics
from gatehouse.kit.time import utcnow
from gatehouse.mfa.checks import require_step_up
from gatehouse.mfa.errors import MfaTokenInvalid
from gatehouse.mfa.repository import MfaRepository
from gatehouse.mfa.service import MfaService
from gatehouse.passkeys.errors import (
    InvalidPasskey,
    PasskeyAlreadyRegistered,
    PasskeyNotFound,
    PasskeyRejected,
)
from gatehouse.passkeys.models import Passkey, WebAuthnChallenge
from gatehouse.passkeys.repository import ChallengeRepository, PasskeyRepository
from gatehouse.uow import UnitOfWork
from gatehouse.users.errors import ReauthenticationRequired, WrongPassword

# A ceremony's challenge lives this long, and the browser is told the same timeout.
CHALLENGE_SECONDS = 300

Purpose = Literal["login", "mfa", "step_up"]
AmrKind = Literal["hwk", "swk"]


@dataclass(frozen=True)
class RelyingParty:
    id: str
    name: str
    origins: list[str]


def relying_party(settings: Settings) -> RelyingParty:
    """Who browsers bind passkeys to: the settings, else derived from the public URL."""
    web = settings.webauthn
    public = urlsplit(settings.server.public_url)
    host = public.hostname or "localhost"
    origin = f"{public.scheme}://{host}" + (f":{public.port}" if public.port else "")
    return RelyingParty(
        id=web.webauthn_rp_id or host,
        name=web.webauthn_rp_name or "Gatehouse",
        origins=web.webauthn_origins or [origin],
    )


def amr_kind(backed_up: bool) -> AmrKind:
    """RFC 8176: a synced (backed-up) passkey is a software key, a device-bound one hardware."""
    return "swk" if backed_up else "hwk"


@dataclass(frozen=True)
class Ceremony:
    challenge_id: uuid.UUID
    options: dict[str, Any]


class PasskeyService:
    def __init__(
        self,
        uow: UnitOfWork,
        settings: Settings,
        hasher: PasswordHasher,
        auth: AuthService,
        mfa: MfaService,
        protection: LoginProtection | None = None,
    ) -> None:
        self.uow = uow
        self.session = session = uow.session
        self.settings = settings
        self.hasher = hasher
        # Sessions and tokens of a passwordless login; MFA going on and off.
        self.auth = auth
        self.mfa = mfa
        # None: no brute-force accounting of passwordless logins (limits switched off).
        self.protection = protection
        self.rp = relying_party(settings)
        self.passkeys = PasskeyRepository(session)
        self.challenges = ChallengeRepository(session)
        self.factors = MfaRepository(session)

    # --- registration ---------------------------------------------------------------

    async def registration_options(
        self, actor: Principal, current_password: str | None
    ) -> Ceremony:
        """Options for `navigator.credentials.create()`. Without MFA the caller proves
        the account is theirs with the password; with MFA, by a recent step-up."""
        async with self.uow.reader() as reading:
            has_mfa = await MfaRepository(reading).has_mfa(actor.user_id)
            checked = await PasskeyRepository(reading).live_owner(actor.user_id)
        if has_mfa:
            await require_step_up(self.uow, self.settings, actor)
        elif current_password is None:
            raise ReauthenticationRequired(
                "Registering your first second factor needs your current password"
            )
        else:
            # Verified outside the unit of work's transaction (SQLite's write lock).
            right = checked is not None and await self.hasher.verify(
                current_password, checked.password_hash
            )
            user = await self.passkeys.live_owner(actor.user_id)
            # A hash changed since it was checked is not the one the caller proved.
            if (
                not right
                or user is None
                or checked is None
                or (user.password_hash != checked.password_hash)
            ):
                self._audit_register_failure(actor.user_id, "wrong_password")
                raise WrongPassword()
        user = await self.passkeys.live_owner(actor.user_id)
        if user is None:
            raise UserNotFound(actor.user_id)
        existing = await self.passkeys.list_for_user(user.id)
        challenge = await self._challenge("register", user.id)
        options = generate_registration_options(
            rp_id=self.rp.id,
            rp_name=self.rp.name,
            user_id=user.id.bytes,
            user_name=user.email,
            user_display_name=user.name,
            challenge=challenge.challenge,
            timeout=CHALLENGE_SECONDS * 1000,
            authenticator_selection=AuthenticatorSelectionCriteria(
                # Discoverable: the passkey can log in without a typed email.
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[_descriptor(p) for p in existing],
        )
        return Ceremony(challenge.id, options_to_json_dict(options))

    async def register(
        self,
        actor: Principal,
        challenge_id: uuid.UUID,
        name: str,
        credential: Mapping[str, Any],
    ) -> tuple[Passkey, list[str]]:
        """Verify the browser's new credential and keep it; the passkey, and the recovery
        codes made if it turned MFA on."""
        now = utcnow()
        challenge = await self.challenges.spend(challenge_id, now)
        if (
            challenge is None
            or challenge.purpose != "register"
            or challenge.user_id != actor.user_id
            or challenge.expires_at <= now
        ):
            self._audit_register_failure(actor.user_id, "challenge_invalid")
            raise PasskeyRejected("challenge_invalid")
        try:
            parsed = parse_registration_credential_json(dict(credential))
            verified = verify_registration_response(
                credential=parsed,
                expected_challenge=challenge.challenge,
                expected_rp_id=self.rp.id,
                expected_origin=self.rp.origins,
            )
        except (WebAuthnException, ValueError, TypeError, KeyError):
            self._audit_register_failure(actor.user_id, "attestation_invalid")
            raise PasskeyRejected("attestation_invalid") from None
        if await self.passkeys.credential_exists(verified.credential_id):
            self._audit_register_failure(actor.user_id, "already_registered")
            raise PasskeyAlreadyRegistered(persist=True)
        user = await self.passkeys.live_owner(actor.user_id)
        if user is None:
            raise PasskeyRejected("user_deleted")
        transports = [
            t.value if isinstance(t, AuthenticatorTransport) else str(t)
            for t in parsed.response.transports or []
        ]
        passkey = Passkey(
            user_id=user.id,
            credential_id=verified.credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            name=name,
            transports=transports,
            aaguid=verified.aaguid,
            backed_up=verified.credential_backed_up,
        )
        try:
            # A savepoint: losing the unique index's race to a concurrent registration
            # of the same credential is the same answer as finding it registered.
            async with self.session.begin_nested():
                await self.passkeys.add(passkey)
        except IntegrityError:
            self._audit_register_failure(actor.user_id, "already_registered")
            raise PasskeyAlreadyRegistered(persist=True) from None
        self.uow.audit.record(
            Entry(
                "passkey.register",
                target_type="user",
                target_id=str(user.id),
                details={
                    "passkey_id": str(passkey.id),
                    "backed_up": passkey.backed_up,
                    "aaguid": passkey.aaguid,
                },
                pii={"name": name},
            )
        )
        # MFA going on (other sessions end, recovery codes made, event) and the mail.
        recovery_codes = await self.mfa.factor_added(user.id, "passkey", actor.session_id)
        return passkey, recovery_codes

    def _audit_register_failure(self, user_id: uuid.UUID, reason: str) -> None:
        self.uow.audit.record(
            Entry(
                "passkey.register",
                outcome="failure",
                reason=reason,
                target_type="user",
                target_id=str(user_id),
            ),
            always=True,
        )

    # --- management -----------------------------------------------------------------

    async def list_mine(self, actor: Principal) -> list[Passkey]:
        return list(await self.passkeys.list_for_user(actor.user_id))

    async def rename(self, actor: Principal, passkey_id: uuid.UUID, name: str) -> Passkey:
        passkey = await self.passkeys.get_owned(passkey_id, actor.user_id)
        if passkey is None:
            raise PasskeyNotFound(passkey_id)
        if passkey.name != name:
            passkey.name = name
            await self.session.flush()
            self.uow.audit.record(
                Entry(
                    "passkey.rename",
                    target_type="user",
                    target_id=str(actor.user_id),
                    details={"passkey_id": str(passkey.id)},
                    pii={"name": name},
                )
            )
        return passkey

    async def remove(self, actor: Principal, passkey_id: uuid.UUID) -> None:
        passkey = await self.passkeys.get_owned(passkey_id, actor.user_id)
        if passkey is None:
            raise PasskeyNotFound(passkey_id)
        # The caller owns a passkey, so MFA is on: removing a factor needs a step-up.
        await require_step_up(self.uow, self.settings, actor)
        await self.passkeys.delete(passkey)
        self.uow.audit.record(
            Entry(
                "passkey.remove",
                target_type="user",
                target_id=str(actor.user_id),
                details={"passkey_id": str(passkey_id)},
                pii={"name": passkey.name},
            )
        )
        await self.mfa.factor_removed(actor.user_id, "passkey")

    # --- authentication ceremonies --------------------------------------------------

    async def login_options(self, mfa_token: str | None) -> Ceremony:
        """Options for `navigator.credentials.get()`: passwordless (any discoverable
        passkey, user verification required), or the second step of a password login
        (that user's passkeys)."""
        if mfa_token is None:
            challenge = await self._challenge("login", None)
            return self._request_options(challenge, [], UserVerificationRequirement.REQUIRED)
        now = utcnow()
        pending = await self.factors.challenge(hash_mfa_token(mfa_token))
        if (
            pending is None
            or pending.used_at is not None
            or pending.expires_at <= now
            or pending.failures >= self.settings.mfa.mfa_token_max_failures
        ):
            raise MfaTokenInvalid()
        challenge = await self._challenge("mfa", pending.user_id, pending.id)
        passkeys = await self.passkeys.list_for_user(pending.user_id)
        return self._request_options(challenge, passkeys, UserVerificationRequirement.PREFERRED)

    async def step_up_options(self, actor: Principal) -> Ceremony:
        challenge = await self._challenge("step_up", actor.user_id)
        passkeys = await self.passkeys.list_for_user(actor.user_id)
        return self._request_options(challenge, passkeys, UserVerificationRequirement.PREFERRED)

    def _request_options(
        self,
        challenge: WebAuthnChallenge,
        passkeys: Sequence[Passkey],
        verification: UserVerificationRequirement,
    ) -> Ceremony:
        options = generate_authentication_options(
            rp_id=self.rp.id,
            challenge=challenge.challenge,
            timeout=CHALLENGE_SECONDS * 1000,
            allow_credentials=[_descriptor(p) for p in passkeys],
            user_verification=verification,
        )
        return Ceremony(challenge.id, options_to_json_dict(options))

    async def _challenge(
        self,
        purpose: str,
        user_id: uuid.UUID | None,
        mfa_challenge_id: uuid.UUID | None = None,
    ) -> WebAuthnChallenge:
        now = utcnow()
        return await self.challenges.add(
            WebAuthnChallenge(
                challenge=generate_challenge(),
                purpose=purpose,
                user_id=user_id,
                mfa_challenge_id=mfa_challenge_id,
                expires_at=now + timedelta(seconds=CHALLENGE_SECONDS),
            )
        )

    # --- the assertion --------------------------------------------------------------

    async def verify_assertion(
        self,
        *,
        user_id: uuid.UUID | None,
        challenge_id: uuid.UUID | str,
        credential: Mapping[str, Any],
        purpose: Purpose,
        mfa_challenge_id: uuid.UUID | None = None,
    ) -> tuple[Passkey, AmrKind]:
        """Check a `navigator.credentials.get()` answer: the one check behind the
        passwordless login (`user_id` None: whoever's credential it is), the login's
        second step (`mfa`) and step-up (`user_id` is who must answer).

        The challenge is spent first, in this unit of work, whatever follows: every
        refusal is `InvalidPasskey` raised with `persist=True`, so it stays spent. A
        caller that turns the refusal into an error of its own must keep `persist`.
        The sign counter is compared only once the signature verified: a counter that
        went backwards is then real evidence of a cloned authenticator (audited
        `passkey.counter_regression`), not something anyone could make up.
        """
        now = utcnow()
        try:
            wanted = uuid.UUID(str(challenge_id))
        except ValueError:
            _refuse("challenge_unknown")
        challenge = await self.challenges.spend(wanted, now)
        if challenge is None:
            _refuse("challenge_unknown_or_used")
        if challenge.expires_at <= now:
            _refuse("challenge_expired")
        if challenge.purpose != purpose or (purpose != "login" and challenge.user_id != user_id):
            _refuse("challenge_mismatch")
        if mfa_challenge_id is not None and challenge.mfa_challenge_id != mfa_challenge_id:
            _refuse("challenge_mismatch")
        parsed = _parse_assertion(credential)
        passkey = await self.passkeys.by_credential_id(parsed.raw_id)
        if passkey is None:
            _refuse("unknown_credential")
        owner = passkey.user_id
        if purpose != "login" and owner != user_id:
            _refuse("credential_of_another_user", owner)
        if await self.passkeys.live_owner(owner) is None:
            _refuse("user_deleted", owner)
        handle = parsed.response.user_handle
        if handle is not None and bytes(handle) != owner.bytes:
            _refuse("user_handle_mismatch", owner)
        try:
            client = parse_client_data_json(bytes(parsed.response.client_data_json))
            data = parse_authenticator_data(bytes(parsed.response.authenticator_data))
        except Exception:  # the library raises several kinds for malformed bytes
            _refuse("malformed", owner)
        if client.origin not in self.rp.origins:
            _refuse("origin_mismatch", owner)
        if data.rp_id_hash != hashlib.sha256(self.rp.id.encode()).digest():
            _refuse("rp_id_mismatch", owner)
        if purpose == "login" and not data.flags.uv:
            # Passwordless, the passkey is both factors: it must have checked the user.
            _refuse("user_not_verified", owner)
        try:
            verified = verify_authentication_response(
                credential=parsed,
                expected_challenge=challenge.challenge,
                expected_rp_id=self.rp.id,
                expected_origin=self.rp.origins,
                credential_public_key=passkey.public_key,
                # 0: the library would compare before the signature; we compare after.
                credential_current_sign_count=0,
                require_user_verification=purpose == "login",
            )
        except (WebAuthnException, ValueError, TypeError) as exc:
            text = str(exc).lower()
            _refuse("challenge_mismatch" if "challenge" in text else "bad_signature", owner)
        stored, presented = passkey.sign_count, verified.new_sign_count
        if (presented > 0 or stored > 0) and presented <= stored:
            self.uow.audit.record(
                Entry(
                    "passkey.counter_regression",
                    outcome="failure",
                    reason="sign_count_not_increased",
                    target_type="user",
                    target_id=str(owner),
                    details={
                        "passkey_id": str(passkey.id),
                        "stored": stored,
                        "presented": presented,
                        "purpose": purpose,
                    },
                ),
                always=True,
            )
            _refuse("counter_regression", owner)
        await self.passkeys.record_use(passkey.id, presented, verified.credential_backed_up, now)
        return passkey, amr_kind(verified.credential_backed_up)

    # --- passwordless login ---------------------------------------------------------

    async def login(self, challenge_id: uuid.UUID, credential: Mapping[str, Any]) -> TokenPair:
        """Log in with a passkey alone (it verified the user: both factors at once)."""
        client = self.uow.actor
        attempt: Attempt | None = None
        if self.protection is not None:
            # The per-IP failure budget of password logins counts these too; the
            # "account" is the credential, so its locks never reach a password login.
            raw = credential.get("rawId") or credential.get("id")
            account = "passkey:" + (raw[:2048] if isinstance(raw, str) else "")
            try:
                attempt = await self.protection.begin(account, client.ip)
            except GatehouseError:
                self._login_failed("rate_limited", None)
                raise
        try:
            passkey, kind = await self.verify_assertion(
                user_id=None, challenge_id=challenge_id, credential=credential, purpose="login"
            )
            if attempt is not None and attempt.refused:
                _refuse("locked", passkey.user_id)
        except InvalidPasskey as exc:
            self._login_failed(exc.reason, exc.user_id)
            raise
        user = await self.passkeys.live_owner(passkey.user_id)
        assert user is not None  # noqa: S101  (verify_assertion refuses a deleted owner)
        if attempt is not None and self.protection is not None:
            await self.protection.succeeded(attempt)
        return await self.auth.start_session(
            user,
            [kind, "user", "mfa"],
            second_factor=True,
            action="passkey.login",
            details={"passkey_id": str(passkey.id)},
        )

    def _login_failed(self, reason: str, user_id: uuid.UUID | None) -> None:
        outcome = {"rate_limited": "rate_limited", "locked": "locked"}.get(reason, "invalid")
        metrics.LOGINS.labels(outcome).inc()
        self.uow.audit.record(
            Entry(
                "passkey.login",
                outcome="failure",
                reason=reason,
                target_type="user" if user_id is not None else None,
                target_id=str(user_id) if user_id is not None else None,
            ),
            always=True,
        )


class PasskeyAssertions:
    """The passkey check as the MFA service calls it (its `PasskeyVerifier`)."""

    def __init__(self, service: PasskeyService) -> None:
        self.service = service

    async def verify_assertion(
        self,
        *,
        user_id: uuid.UUID,
        challenge_id: uuid.UUID,
        credential: dict[str, Any],
        purpose: Literal["mfa", "step_up"],
        mfa_challenge_id: uuid.UUID | None = None,
    ) -> AmrKind:
        _, kind = await self.service.verify_assertion(
            user_id=user_id,
            challenge_id=challenge_id,
            credential=credential,
            purpose=purpose,
            mfa_challenge_id=mfa_challenge_id,
        )
        return kind


def _refuse(reason: str, user_id: uuid.UUID | None = None) -> NoReturn:
    raise InvalidPasskey(reason, user_id=user_id)


def _parse_assertion(credential: Mapping[str, Any]) -> AuthenticationCredential:
    try:
        return parse_authentication_credential_json(dict(credential))
    except (WebAuthnException, ValueError, TypeError):
        _refuse("malformed")


def _descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    transports = []
    for name in passkey.transports or []:
        try:
            transports.append(AuthenticatorTransport(name))
        except ValueError:
            continue  # a transport this library does not know: the browser may, skip it
    return PublicKeyCredentialDescriptor(id=passkey.credential_id, transports=transports or None)
