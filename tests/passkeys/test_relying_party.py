"""Who browsers bind passkeys to: the settings, else derived from the public URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gatehouse.config import Settings, WebAuthnSettings
from gatehouse.passkeys.service import relying_party
from tests.conftest import make_settings


def settings(tmp_path: Path, **overrides: object) -> Settings:
    return make_settings("sqlite+aiosqlite:///unused.db", tmp_path, "unused", **overrides)


def test_unset_the_public_url_decides(tmp_path: Path) -> None:
    rp = relying_party(settings(tmp_path, public_url="https://id.example.com:8443/app"))
    assert (rp.id, rp.name, rp.origins) == (
        "id.example.com",
        "Gatehouse",
        ["https://id.example.com:8443"],
    )


def test_set_the_settings_win(tmp_path: Path) -> None:
    rp = relying_party(
        settings(
            tmp_path,
            public_url="https://id.example.com",
            webauthn_rp_id="example.com",
            webauthn_origins=["https://app.example.com", "https://admin.example.com"],
            webauthn_rp_name="Acme",
        )
    )
    assert (rp.id, rp.name) == ("example.com", "Acme")
    assert rp.origins == ["https://app.example.com", "https://admin.example.com"]


@pytest.mark.parametrize(
    "bad",
    [
        {"webauthn_rp_id": "https://example.com"},
        {"webauthn_rp_id": "example.com:443"},
        {"webauthn_origins": "https://app.example.com/login"},
        {"webauthn_origins": "app.example.com"},
    ],
)
def test_malformed_values_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WebAuthnSettings(**bad)  # type: ignore[arg-type]


def test_origins_are_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_WEBAUTHN_ORIGINS", "https://a.example.com, https://b.example.com")
    assert WebAuthnSettings().webauthn_origins == ["https://a.example.com", "https://b.example.com"]
