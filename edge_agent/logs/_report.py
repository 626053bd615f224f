"""What a read found: frame and bad-line counts, the first bad lines, and progress."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ._formats import LogFormat

__all__ = ["BadLine", "Progress", "ReadReport"]

log = logging.getLogger(__name__)

#: Longest text kept for a bad line.
TEXT_LIMIT = 120


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line (in a binary log, a region) that was skipped.

    ``line`` is the 1-based line number in a text log and ``None`` in a binary one;
    ``offset`` is the byte offset in the (uncompressed) file of a binary log's bad region and
    ``None`` in a text log.  ``text`` is the line, or a description of the region, shortened
    to at most :data:`TEXT_LIMIT` characters.
    """

    line: int | None
    reason: str
    text: str
    offset: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else f"offset {self.offset}"
        return f"{where}: {self.reason}: {self.text!r}"


@dataclass(frozen=True, slots=True)
class ReadReport:
    """The outcome of reading (part of) one log file.

    ``bad_line_count`` is exact; ``bad_lines`` holds only the first few of them.
    """

    path: Path
    format: LogFormat
    frames: int
    bad_line_count: int
    bad_lines: tuple[BadLine, ...]

    @property
    def ok(self) -> bool:
        """True when no line was skipped."""
        return self.bad_line_count == 0

    def __str__(self) -> str:
        text = f"{self.path}: {self.frames} frames, {self.bad_line_count} bad lines"
        shown = "".join(f"\n  {bad}" for bad in self.bad_lines)
        more = self.bad_line_count - len(self.bad_lines)
        return text + shown + (f"\n  ... and {more} more" if more else "")


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a read has got: bytes of the file on disk consumed, of ``bytes_total``.

    For a ``.gz`` file both count compressed bytes.
    """

    bytes_read: int
    bytes_total: int
    frames: int

    @property
    def fraction(self) -> float:
        """``bytes_read / bytes_total`` in ``[0, 1]`` (1 for an empty file)."""
        if self.bytes_total <= 0:
            return 1.0
        return min(1.0, self.bytes_read / self.bytes_total)


def shorten(text: str) -> str:
    """``text`` cut to :data:`TEXT_LIMIT` characters, marked with an ellipsis when cut."""
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "\u2026"


class Tally:
    """Counts bad lines exactly and keeps the first ``limit`` of them (mutable; internal)."""

    __slots__ = ("count", "first", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.first: list[BadLine] = []

    def add(self, line: int | None, reason: str, text: str, offset: int | None = None) -> None:
        self.count += 1
        log.debug("skipped line %s offset %s: %s", line, offset, reason)
        if len(self.first) < self.limit:
            self.first.append(BadLine(line, reason, shorten(text), offset))
