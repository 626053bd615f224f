"""TOML text to a document, with a syntax error's line and column as fields.

``tomllib`` puts the position only into its message ("... (at line 3, column 7)"); the
project's file formats (signal maps, scenario files, the agent configuration) each report
errors as ``path:line:column: reason`` in their own exception, so they share this one parse.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

__all__ = ["TomlSyntaxError", "loads"]

_POSITION_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


class TomlSyntaxError(ValueError):
    """Text that is not valid TOML; ``line`` and ``column`` count from 1 where known."""

    def __init__(self, reason: str, line: int | None, column: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.column = column


def loads(text: str) -> dict[str, Any]:
    """``tomllib.loads``, raising `TomlSyntaxError` with the position taken out of the message."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        reason = str(exc)
        position = _POSITION_RE.search(reason)
        if position is None:
            raise TomlSyntaxError(reason, None, None) from None
        line, column = int(position.group(1)), int(position.group(2))
        raise TomlSyntaxError(reason[: position.start()], line, column) from None
