"""Write the JSON Schema of every event to docs/events/schemas/<event_type>.json.

    python scripts/export_event_schemas.py          # write the files
    python scripts/export_event_schemas.py --check  # exit 1 if they are out of date

The files are committed; tests/events/test_schemas.py fails when they drift from
`gatehouse.events.schemas`, so run this after changing an event.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gatehouse.events.schemas import schema_documents

TARGET = Path(__file__).resolve().parent.parent / "docs" / "events" / "schemas"


def stale(target: Path) -> list[str]:
    """Files that differ from the generated ones, are missing, or are left over."""
    wanted = schema_documents()
    present = {path.name for path in target.glob("*.json")} if target.is_dir() else set()
    wrong = [
        name
        for name, text in wanted.items()
        if name not in present or (target / name).read_text(encoding="utf-8") != text
    ]
    return sorted(wrong + sorted(present - wanted.keys()))


def export(target: Path) -> list[str]:
    target.mkdir(parents=True, exist_ok=True)
    wanted = schema_documents()
    for name, text in wanted.items():
        (target / name).write_text(text, encoding="utf-8")
    for path in target.glob("*.json"):
        if path.name not in wanted:
            path.unlink()
    return sorted(wanted)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Write the JSON Schema of every event.")
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    parser.add_argument("--target", type=Path, default=TARGET)
    args = parser.parse_args(argv)
    if args.check:
        problems = stale(args.target)
        for name in problems:
            print(f"out of date: {args.target / name}", file=sys.stderr)
        return 1 if problems else 0
    for name in export(args.target):
        print(args.target / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
