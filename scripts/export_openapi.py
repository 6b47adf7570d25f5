"""Write Gatehouse's OpenAPI document to web/openapi.json, the source of the web apps'
typed API client (web/src/api/schema.d.ts, generated from it by `npm run api`).

    python scripts/export_openapi.py          # write the file
    python scripts/export_openapi.py --check  # exit 1 if it is out of date

Both files are committed; `make lint` fails when either drifts from the API, so run
`make api-client` after changing a route or a schema.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gatehouse.app import create_app
from gatehouse.config import Settings

TARGET = Path(__file__).resolve().parent.parent / "web" / "openapi.json"


def document() -> str:
    # Default settings: the document does not depend on the deployment's values.
    app = create_app(Settings())
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Write the API's OpenAPI document.")
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    parser.add_argument("--target", type=Path, default=TARGET)
    args = parser.parse_args(argv)
    text = document()
    if args.check:
        current = args.target.read_text(encoding="utf-8") if args.target.is_file() else None
        if current != text:
            print(
                f"out of date: {args.target} (run `make api-client`)",
                file=sys.stderr,
            )
            return 1
        return 0
    args.target.write_text(text, encoding="utf-8")
    print(args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
