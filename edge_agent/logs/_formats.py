"""Log formats and how a file's suffix selects one."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from ._errors import UnsupportedFormatError

__all__ = ["LogFormat", "detect_format"]


class LogFormat(StrEnum):
    """The formats read, by their suffix."""

    CANDUMP = ".log"  # can-utils ``candump -l`` / ``-L``
    ASC = ".asc"  # Vector ASCII
    BLF = ".blf"  # Vector binary logging format
    TRC = ".trc"  # PEAK PCAN trace


def detect_format(path: Path) -> tuple[LogFormat, bool]:
    """The format named by ``path``'s suffix, and whether the file is gzip-compressed.

    :raises UnsupportedFormatError: for any other suffix.
    """
    name = path.name.lower()
    compressed = name.endswith(".gz")
    stem = name.removesuffix(".gz")
    for fmt in LogFormat:
        if stem.endswith(fmt.value) and len(stem) > len(fmt.value):
            return fmt, compressed
    known = ", ".join(f.value for f in LogFormat)
    raise UnsupportedFormatError(
        path, f"unknown log format (suffix must be one of {known}, optionally followed by .gz)"
    )
