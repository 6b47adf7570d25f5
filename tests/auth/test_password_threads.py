"""bcrypt runs in threads of its own, below the event loop's CPU priority: when a hash
and the loop both want a core, the loop wins most of it, so a login storm slows the
logins before the requests that need no hash (benchmarks/README.md, the storm)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from gatehouse.auth.passwords import HASH_THREAD_NICE, PasswordHasher

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities: Linux")


def nice_of(thread: threading.Thread) -> int:
    assert thread.native_id is not None
    return os.getpriority(os.PRIO_PROCESS, thread.native_id)


async def test_hashes_run_in_their_own_threads_below_the_event_loops_priority() -> None:
    before = set(threading.enumerate())
    hasher = PasswordHasher(rounds=4, threads=2)
    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    hashed = await hasher.hash("harbour violet quartz 58")
    assert await hasher.verify("harbour violet quartz 58", hashed)
    assert not await hasher.verify("harbour violet quartz 59", hashed)

    ours = [t for t in set(threading.enumerate()) - before if t.name.startswith("gatehouse-bcrypt")]
    assert ours
    expected = min(19, loop_nice + HASH_THREAD_NICE)
    assert {nice_of(thread) for thread in ours} == {expected}
    # The loop's own thread, and so every other request, keeps its priority.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_nice
    # Closed with its runtime, the hasher lets its threads go.
    hasher.close()
    for thread in ours:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in ours)
