"""WebAuthn passkeys: registration, second factor and passwordless login."""
