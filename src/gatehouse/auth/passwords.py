"""Password hashing (bcrypt, off the event loop) and the password policy."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import bcrypt

from gatehouse.config import AuthSettings

BCRYPT_MAX_BYTES = 72
_COST = re.compile(r"^\$2[aby]\$(\d{2})\$")
# How much nicer the hashing threads are than the event loop: when a hash and the loop
# both want the CPU, the loop gets about nine tenths of it, so a login storm slows the
# logins before the requests that need no hash (benchmarks/README.md, the storm).
HASH_THREAD_NICE = 10


def _yield_to_the_event_loop() -> None:
    # Without per-thread priorities (not Linux), the threads run at the process's own.
    with contextlib.suppress(AttributeError, OSError):
        thread = threading.get_native_id()
        # Relative to what the thread was born with (the loop's own), capped at 19.
        nice = min(19, os.getpriority(os.PRIO_PROCESS, thread) + HASH_THREAD_NICE)
        os.setpriority(os.PRIO_PROCESS, thread, nice)


class PasswordHasher:
    """bcrypt in a bounded pool of threads of its own, at a lower priority than the event
    loop, so a login storm cannot starve other requests."""

    def __init__(self, rounds: int, threads: int) -> None:
        self.rounds = rounds
        self._pool = ThreadPoolExecutor(
            threads, thread_name_prefix="gatehouse-bcrypt", initializer=_yield_to_the_event_loop
        )
        # Verified against when the email is unknown, so both branches cost one bcrypt.
        self._dummy = bcrypt.hashpw(b"gatehouse-dummy-password", bcrypt.gensalt(rounds))

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self.rounds)
        loop = asyncio.get_running_loop()
        hashed = await loop.run_in_executor(self._pool, bcrypt.hashpw, password.encode(), salt)
        return hashed.decode()

    async def verify(self, password: str, hashed: str | None) -> bool:
        """Check a password; with no hash (unknown user), or a password bcrypt cannot
        take (over 72 bytes, or a NUL), spend the same time and fail."""
        secret = password.encode()
        usable = len(secret) <= BCRYPT_MAX_BYTES and b"\x00" not in secret
        target = hashed.encode() if hashed and usable else self._dummy
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(
            self._pool, bcrypt.checkpw, secret if usable else b"x", target
        )
        return ok and usable and hashed is not None

    def close(self) -> None:
        """Let the idle hashing threads go (the runtime that owns this hasher is closing);
        a hash queued but not started is dropped."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def needs_rehash(self, hashed: str) -> bool:
        match = _COST.match(hashed)
        return match is None or int(match.group(1)) != self.rounds


@lru_cache(maxsize=4)
def _common_passwords(size: int) -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # lazy: large lists, read on first use

    return frozenset(FREQUENCY_LISTS["passwords"][:size])


def password_problems(
    password: str, settings: AuthSettings, *, email: str | None = None, name: str | None = None
) -> list[str]:
    """Why a new password is refused: an empty list means it is accepted."""
    problems = []
    if len(password) < settings.password_min_length:
        problems.append(f"Password must be at least {settings.password_min_length} characters")
    if len(password.encode()) > BCRYPT_MAX_BYTES:
        problems.append(f"Password must be at most {BCRYPT_MAX_BYTES} bytes (UTF-8)")
    if "\x00" in password:
        problems.append("Password must not contain NUL characters")
    if problems:
        return problems
    lowered = password.lower()
    if lowered in _common_passwords(settings.password_common_list_size):
        problems.append("Password is too common; choose one that is harder to guess")
    for identifier in _identifiers(email, name):
        if identifier in lowered or lowered in identifier:
            problems.append("Password must not contain your email address or name")
            break
    return problems


def _identifiers(email: str | None, name: str | None) -> list[str]:
    parts = []
    if email:
        local = email.split("@", 1)[0].lower()
        parts.append(local)
        parts.extend(re.split(r"[._+\-]", local))
    if name:
        parts.append(name.lower().replace(" ", ""))
        parts.extend(name.lower().split())
    # Short fragments (a 2-letter first name) would refuse too many good passwords.
    return [part for part in dict.fromkeys(parts) if len(part) >= 4]
