"""The OpenAPI document of the API, written to docs/api.openapi.json.

    python -m cloud_ingest.api.openapi [PATH]

A test fails when the committed document differs from the application's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .app import create_app
from .settings import Settings

__all__ = ["document", "main"]


def document() -> dict[str, Any]:
    """The application's OpenAPI document (no database needed to build it)."""
    doc: dict[str, Any] = create_app(Settings(database_url="postgresql://unused")).openapi()
    return doc


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else Path("docs/api.openapi.json")
    path.write_text(json.dumps(document(), indent=2, sort_keys=True) + "\n", "utf-8")
    sys.stderr.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
