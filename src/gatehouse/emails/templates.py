"""The words of each email Gatehouse sends (plain text).

An action email's link carries `TOKEN_PLACEHOLDER` where the token goes: the token is
minted when the mail is sent and never stored, so the row in `email_messages` shows
what was sent without being usable by whoever can read the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr
from enum import StrEnum

from gatehouse.config import Settings

TOKEN_PLACEHOLDER = "{{token}}"  # noqa: S105 (a marker, not a token)
# How long the address an account left can take it back: long enough for someone who
# reads their mail weekly, short enough that an old address cannot haunt the account.
EMAIL_CHANGE_UNDO_TTL_SECONDS = 7 * 24 * 3600


class Kind(StrEnum):
    welcome = "welcome"
    verify_email = "verify_email"
    password_reset = "password_reset"  # noqa: S105 (a kind of email)
    login_under_attack = "login_under_attack"
    # To the address an account just left, with a link that takes it back.
    email_changed = "email_changed"
    # To an account's owner when someone signs up with its address.
    signup_attempt = "signup_attempt"
    # Second factors: every change, the use of a recovery code, an admin's reset, and
    # codes guessed with the right password.
    totp_enabled = "totp_enabled"
    totp_disabled = "totp_disabled"
    passkey_added = "passkey_added"
    passkey_removed = "passkey_removed"
    recovery_codes_regenerated = "recovery_codes_regenerated"
    recovery_code_used = "recovery_code_used"
    mfa_reset = "mfa_reset"
    mfa_code_guessing = "mfa_code_guessing"


# Kinds whose mail carries a single-use action token, and the page that takes it.
ACTION_PAGES: dict[Kind, str] = {
    Kind.verify_email: "verify-email",
    Kind.password_reset: "reset-password",
    Kind.email_changed: "undo-email-change",
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def product_name(settings: Settings) -> str:
    """The display name of GATEHOUSE_EMAIL_FROM ("Acme <no-reply@acme.test>" → "Acme")."""
    name, _ = parseaddr(settings.worker.email_from)
    return name.strip() or "Gatehouse"


def action_link(settings: Settings, kind: Kind) -> str:
    base = settings.server.public_url.rstrip("/")
    return f"{base}/{ACTION_PAGES[kind]}?token={TOKEN_PLACEHOLDER}"


def _hours(seconds: int) -> str:
    if seconds % 86400 == 0 and seconds > 86400:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour" if hours == 1 else f"{hours} hours"
    minutes = max(1, seconds // 60)
    return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"


# The second-factor notices: (subject, what happened), each followed by the same advice.
_FACTOR_NOTICES: dict[Kind, tuple[str, str]] = {
    Kind.totp_enabled: (
        "An authenticator app was set up for your {product} account",
        "An authenticator app was set up as a second factor for the {product} account "
        "for {email}. Logins now need a code from it (or a passkey or a recovery code), "
        "and every other session of the account was logged out.",
    ),
    Kind.totp_disabled: (
        "The authenticator app was removed from your {product} account",
        "The authenticator app was removed from the {product} account for {email}. If "
        "the account has no passkey left, logins need only the password again.",
    ),
    Kind.passkey_added: (
        "A passkey was added to your {product} account",
        "A passkey was added to the {product} account for {email}.",
    ),
    Kind.passkey_removed: (
        "A passkey was removed from your {product} account",
        "A passkey was removed from the {product} account for {email}. If the account "
        "has no second factor left, logins need only the password again.",
    ),
    Kind.recovery_codes_regenerated: (
        "New recovery codes for your {product} account",
        "New recovery codes were made for the {product} account for {email}; the old "
        "ones no longer work.",
    ),
    Kind.recovery_code_used: (
        "A recovery code was used on your {product} account",
        "A recovery code was used to log in to the {product} account for {email} (or to "
        "confirm a change). Each code works once; make new ones when few are left.",
    ),
    Kind.mfa_reset: (
        "The second factors of your {product} account were removed",
        "An administrator removed every second factor (authenticator app, passkeys, "
        "recovery codes) of the {product} account for {email}, and logged it out "
        "everywhere. Logins need only the password until you set one up again.",
    ),
    Kind.mfa_code_guessing: (
        "Someone who knows your {product} password is guessing your codes",
        "Many second-factor codes were tried on the {product} account for {email} after "
        "the right password, so code checks are paused for a while. Whoever tried knows "
        "your password.",
    ),
}


def render(kind: Kind, settings: Settings, *, email: str, new_email: str | None = None) -> Rendered:
    """A mail's words. No mail quotes the account's name: whoever signs up chooses it, so
    a name like "Jane, your account was flagged, log in at https://evil.example" would
    read as our words, and a link, in a mail to an address nobody has verified."""
    product = product_name(settings)
    worker = settings.worker
    greeting = "Hello,"
    signature = f"-- \n{product}\n"
    base = settings.server.public_url.rstrip("/")
    if kind in _FACTOR_NOTICES:
        subject, happened = _FACTOR_NOTICES[kind]
        return Rendered(
            subject=subject.format(product=product),
            body=(
                f"{greeting}\n\n{happened.format(product=product, email=email)}\n\n"
                f"If this was you, there is nothing to do.\n"
                f"If it wasn't, change your password at once ({base}/forgot-password) and "
                f"check your second factors after logging in.\n\n{signature}"
            ),
        )
    if kind is Kind.welcome:
        return Rendered(
            subject=f"Welcome to {product}",
            body=(
                f"{greeting}\n\n"
                f"Welcome to {product}! Your account for {email} is ready.\n\n"
                f"If you did not sign up, you can ignore this message.\n\n{signature}"
            ),
        )
    if kind is Kind.verify_email:
        return Rendered(
            subject=f"Confirm your email address for {product}",
            body=(
                f"{greeting}\n\n"
                f"Please confirm that {email} is your email address by opening this link:\n\n"
                f"{action_link(settings, kind)}\n\n"
                f"The link works once and expires in "
                f"{_hours(worker.email_verification_ttl_seconds)}.\n"
                f"If you did not ask for this, you can ignore this message.\n\n{signature}"
            ),
        )
    if kind is Kind.login_under_attack:
        # No token in this mail: the link asks for a reset mail, so a reader of the
        # email table (or of a forwarded alert) holds nothing usable.
        forgot = f"{settings.server.public_url.rstrip('/')}/forgot-password"
        return Rendered(
            subject=f"Someone is trying to guess your {product} password",
            body=(
                f"{greeting}\n\n"
                f"Many wrong passwords have been tried on the {product} account for "
                f"{email} from many addresses, so logins from devices and addresses it "
                f"has not been used from are being held back. A login with your correct "
                f"password was refused for this reason.\n\n"
                f"Logging in from a device or network you have used before still works. "
                f"Otherwise, or if that login was not you, reset your password here; the "
                f"reset also lifts the hold:\n\n{forgot}\n\n{signature}"
            ),
        )
    if kind is Kind.email_changed:
        return Rendered(
            subject=f"The email address of your {product} account was changed",
            body=(
                f"{greeting}\n\n"
                f"The email address of the {product} account for {email} was changed to "
                f"{new_email}.\n\n"
                f"If this was you, there is nothing to do.\n"
                f"If it wasn't, open this link to put {email} back and log everyone out:\n\n"
                f"{action_link(settings, kind)}\n\n"
                f"The link works once and expires in {_hours(EMAIL_CHANGE_UNDO_TTL_SECONDS)}. "
                f"Then choose a new password ({base}/forgot-password).\n\n{signature}"
            ),
        )
    if kind is Kind.signup_attempt:
        return Rendered(
            subject=f"Someone tried to sign up to {product} with your address",
            body=(
                f"{greeting}\n\n"
                f"Someone tried to create a {product} account for {email}, which already has "
                f"one. No new account was created.\n\n"
                f"If it was you, log in ({base}/login) or, if you forgot your password, "
                f"reset it ({base}/forgot-password).\n"
                f"If it wasn't, you can ignore this message: your account is unchanged.\n\n"
                f"{signature}"
            ),
        )
    return Rendered(
        subject=f"Reset your {product} password",
        body=(
            f"{greeting}\n\n"
            f"Someone asked to reset the password of the {product} account for {email}.\n"
            f"To choose a new password, open this link:\n\n"
            f"{action_link(settings, kind)}\n\n"
            f"The link works once and expires in {_hours(worker.password_reset_ttl_seconds)}.\n"
            f"If you did not ask for this, ignore this message: your password stays as it is.\n\n"
            f"{signature}"
        ),
    )
