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


class Kind(StrEnum):
    welcome = "welcome"
    verify_email = "verify_email"
    password_reset = "password_reset"  # noqa: S105 (a kind of email)
    login_under_attack = "login_under_attack"


# Kinds whose mail carries a single-use action token, and the page that takes it.
ACTION_PAGES: dict[Kind, str] = {
    Kind.verify_email: "verify-email",
    Kind.password_reset: "reset-password",
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
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour" if hours == 1 else f"{hours} hours"
    minutes = max(1, seconds // 60)
    return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"


def render(kind: Kind, settings: Settings, *, name: str, email: str) -> Rendered:
    product = product_name(settings)
    worker = settings.worker
    greeting = f"Hello {name},"
    signature = f"-- \n{product}\n"
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
