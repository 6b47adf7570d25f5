"""Second factors: TOTP, recovery codes, the login's MFA step and step-up."""
