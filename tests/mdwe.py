"""Run a command as systemd's `MemoryDenyWriteExecute=yes` runs it: no memory that is
writable and executable, no mapping made executable later.

    python -m tests.mdwe <program> [arguments]

The kernel's own switch (PR_SET_MDWE, Linux 6.3 and later) is set, then the program is
executed in this process; it keeps the switch, and so do its children (a worker's pool
processes). On an older kernel the program runs without it:
tests/deploy/test_systemd.py says so, loudly.
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1
# The processes under test run with it: they are what the units start.
MDWE = [sys.executable, "-m", "tests.mdwe"]


def deny_write_execute() -> bool:
    """Set the switch for this process and its children; False if the kernel lacks it."""
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) == 0)


def main() -> None:
    deny_write_execute()
    os.execv(sys.argv[1], sys.argv[1:])  # noqa: S606  (this process becomes the program)


if __name__ == "__main__":
    main()
