"""Secrets at rest: the key ring (gatehouse.kit.encryption) and where its keys come from.

What a stored token must withstand: being read with another key ring, altered, or copied
to another row; and what an operator relies on: an old key still decrypts after a new
one is put first, production refuses to start without keys, and the embedded default
generates its key file once, readable by its owner only.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path

import pytest

from gatehouse.config import ConfigError, get_settings, load_settings
from gatehouse.keys.ring import KEY_FILE
from gatehouse.kit.encryption import KeyRing, Undecryptable, UnknownKey, parse_keys
from gatehouse.runtime import Runtime
from tests.conftest import make_settings

CONTEXT = "webhook.secret:6f1c4a52-9d1e-4f7a-8f4e-2b8d3c1e5a10"
SECRET = "whsec_MfKQ9r8GKYqrTGWv6AjKYcJ388Vwff1yPZQxoFpiP0tU="


def entry(kid: str) -> str:
    """One `kid:base64key` entry, as `echo "$kid:$(openssl rand -base64 32)"` makes it."""
    return f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def test_a_secret_round_trips_and_never_shows_in_its_token() -> None:
    ring = KeyRing.from_text(entry("k1"))
    token = ring.encrypt(SECRET, context=CONTEXT)
    again = ring.encrypt(SECRET, context=CONTEXT)

    assert token.startswith("v1.k1.")
    assert token != again  # a fresh nonce each time
    assert SECRET not in token
    assert SECRET.removeprefix("whsec_") not in token
    assert ring.decrypt(token, context=CONTEXT) == SECRET.encode()
    assert ring.decrypt_text(again, context=CONTEXT) == SECRET
    assert not ring.needs_rotation(token)
    assert "k1" in repr(ring)
    assert (
        ring.decrypt(ring.encrypt(b"\x00\xff", context="totp:x"), context="totp:x") == b"\x00\xff"
    )


def test_a_token_read_in_another_place_is_refused() -> None:
    ring = KeyRing.from_text(entry("k1"))
    token = ring.encrypt(SECRET, context=CONTEXT)

    with pytest.raises(Undecryptable) as caught:
        ring.decrypt(token, context="webhook.secret:another-row")
    assert caught.value.kid == "k1"
    assert caught.value.status == 500
    assert SECRET not in caught.value.message


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"),  # the tag
        lambda t: t[:10] + ("A" if t[10] != "A" else "B") + t[11:],  # the nonce
        lambda t: t.rsplit(".", 1)[0] + ".AAAA",  # too short to be one
        lambda t: "v2" + t[2:],  # an unknown version
        lambda t: t + ".x",  # not three parts
        lambda t: "whsec_not-a-token",
    ],
    ids=["tag", "nonce", "short", "version", "parts", "clear"],
)
def test_an_altered_token_is_refused(tamper: object) -> None:
    ring = KeyRing.from_text(entry("k1"))
    token = ring.encrypt(SECRET, context=CONTEXT)
    with pytest.raises(Undecryptable):
        ring.decrypt(tamper(token), context=CONTEXT)  # type: ignore[operator]


def test_a_token_of_an_unknown_key_is_refused_by_name() -> None:
    token = KeyRing.from_text(entry("gone")).encrypt(SECRET, context=CONTEXT)
    other = KeyRing.from_text(entry("k1"))

    with pytest.raises(UnknownKey) as caught:
        other.decrypt(token, context=CONTEXT)
    assert caught.value.kid == "gone"
    assert "GATEHOUSE_ENCRYPTION_KEYS" in caught.value.reason
    # Same kid, another key: refused as altered, never decrypted to garbage.
    with pytest.raises(Undecryptable):
        KeyRing.from_text(entry("gone")).decrypt(token, context=CONTEXT)


def test_a_new_first_key_encrypts_and_the_old_one_still_decrypts() -> None:
    old = entry("2025")
    token = KeyRing.from_text(old).encrypt(SECRET, context=CONTEXT)
    rotated = KeyRing.from_text(f"{entry('2026')}\n{old}\n")

    assert rotated.current == "2026"
    assert rotated.needs_rotation(token)
    assert rotated.needs_rotation(SECRET)  # a clear legacy value
    assert rotated.decrypt_text(token, context=CONTEXT) == SECRET
    fresh = rotated.encrypt(SECRET, context=CONTEXT)
    assert fresh.startswith("v1.2026.")
    assert not rotated.needs_rotation(fresh)


def test_the_key_list_accepts_commas_newlines_and_url_safe_base64() -> None:
    key = secrets.token_bytes(32)
    standard = base64.b64encode(key).decode()
    url_safe = base64.urlsafe_b64encode(key).decode().rstrip("=")
    text = f" a:{standard} ,\n\nb_2:{url_safe}\n"
    assert parse_keys(text) == [("a", key), ("b_2", key)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one key"),
        ("k1", "entry 1 is not kid:base64key"),
        ("k1:", "entry 1 is not kid:base64key"),
        (f"k.1:{base64.b64encode(bytes(32)).decode()}", "letters, digits"),
        ("k1:!!!not-base64!!!", "not base64"),
        (f"k1:{base64.b64encode(bytes(16)).decode()}", "32 bytes, not 16"),
        (f"k1:{base64.b64encode(bytes(32)).decode()},k1:{'B' * 43}=", "used twice"),
    ],
)
def test_a_wrong_key_list_is_refused_naming_the_variable_not_the_key(
    monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    for name in list(os.environ):
        if name.startswith("GATEHOUSE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEHOUSE_ENCRYPTION_KEYS", text or " ")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith("GATEHOUSE_ENCRYPTION_KEYS: "), caught.value
    assert message in str(caught.value)
    key_part = text.rpartition(":")[2]
    if len(key_part) > 8:
        assert key_part not in str(caught.value)


def test_keys_are_read_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keys = tmp_path / "encryption.keys"
    keys.write_text(f"{entry('new')}\n{entry('old')}\n")
    monkeypatch.setenv("GATEHOUSE_ENCRYPTION_KEYS_FILE", str(keys))
    get_settings.cache_clear()
    try:
        configured = load_settings().encryption.encryption_keys
    finally:
        get_settings.cache_clear()
    assert configured is not None
    assert KeyRing.from_text(configured.get_secret_value()).kids == ("new", "old")
    assert "new:" not in repr(configured)


async def test_the_embedded_default_generates_its_keys_once(
    tmp_path: Path, signing_key_pem: str
) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db", tmp_path, signing_key_pem)
    path = tmp_path / KEY_FILE
    assert not path.exists()

    first = Runtime.create(settings)
    written = path.read_text()
    second = Runtime.create(settings)
    await first.close()
    await second.close()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == written  # reused, not rewritten
    assert first.encryption.kids == second.encryption.kids
    (kid,) = first.encryption.kids
    token = first.encryption.encrypt(SECRET, context=CONTEXT)
    assert second.encryption.decrypt_text(token, context=CONTEXT) == SECRET
    # The file is in the variable's format: it can become GATEHOUSE_ENCRYPTION_KEYS_FILE.
    assert parse_keys(written)[0][0] == kid


def test_a_broken_key_file_is_a_clear_error(tmp_path: Path, signing_key_pem: str) -> None:
    (tmp_path / KEY_FILE).write_text("k1:c2hvcnQ=\n")
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db", tmp_path, signing_key_pem)
    with pytest.raises(
        ConfigError, match=r"encryption\.keys: entry 1 \(k1\): the key must be 32 bytes, not 5"
    ):
        Runtime.create(settings)
