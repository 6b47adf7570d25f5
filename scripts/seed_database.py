"""Seed the development database: `python scripts/seed_database.py --env development`.

The same as `gatehouse seed`; kept at the path the architecture document names.
"""

from __future__ import annotations

import sys

from gatehouse.cli.main import app

if __name__ == "__main__":
    app(["seed", *sys.argv[1:]])
