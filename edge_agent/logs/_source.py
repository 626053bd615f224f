"""An opened log file: its bytes, decompressed if need be, with read errors sorted out.

A corrupt or cut-off gzip stream is a bad region, not a failure: whatever was decompressed
before it is kept, the damage goes to the tally, and the file then reads as ended.  Any
other ``OSError`` while reading makes the file unreadable.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from pathlib import Path

from ._errors import UnreadableLogError
from ._report import Tally

__all__ = ["Source"]

_PIECE = 1 << 20


class Source(io.BufferedIOBase):
    """The (decompressed) bytes of ``path``; counts its offset and allows pushing bytes back."""

    def __init__(self, path: Path, *, compressed: bool, tally: Tally) -> None:
        super().__init__()
        self.path = path
        self._tally = tally
        try:
            raw = path.open("rb")
        except FileNotFoundError as exc:
            raise UnreadableLogError(path, "no such file") from exc
        except IsADirectoryError as exc:
            raise UnreadableLogError(path, "is a directory") from exc
        except OSError as exc:
            raise UnreadableLogError(path, f"cannot open: {exc.strerror or exc}") from exc
        self._raw = raw
        self.bytes_total = os.fstat(raw.fileno()).st_size
        self._stream: io.BufferedReader | gzip.GzipFile = raw
        if compressed:
            try:
                magic = raw.read(2)
                raw.seek(0)
            except OSError as exc:
                raw.close()
                raise UnreadableLogError(path, f"cannot read: {exc.strerror or exc}") from exc
            if magic != b"\x1f\x8b":
                raw.close()
                raise UnreadableLogError(path, "not a gzip file")
            self._stream = gzip.GzipFile(fileobj=raw, mode="rb")
        self._pushback = b""
        self._ended = False
        self._text: io.TextIOWrapper | None = None
        self.offset = 0  # bytes handed out by read/read1, less those pushed back

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def bytes_read(self) -> int:
        """Bytes of the file on disk consumed so far."""
        if self._raw.closed:
            return self.bytes_total
        return min(self._raw.tell(), self.bytes_total)

    def readable(self) -> bool:
        return True

    def read1(self, size: int | None = -1, /) -> bytes:
        if self._pushback:
            size = len(self._pushback) if size is None or size < 0 else size
            data, self._pushback = self._pushback[:size], self._pushback[size:]
            self.offset += len(data)
            return data
        if self._ended:
            return b""
        try:
            data = self._stream.read1(_PIECE if size is None or size < 0 else size)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            self._ended = True
            self._tally.add(
                None, f"compressed data ends early or is corrupt: {exc}", "", self.offset
            )
            return b""
        except OSError as exc:
            raise UnreadableLogError(self.path, f"cannot read: {exc.strerror or exc}") from exc
        self.offset += len(data)
        return data

    def read(self, size: int | None = -1, /) -> bytes:
        """Up to ``size`` bytes (all with ``-1``), gathered piecewise so damage loses little."""
        parts: list[bytes] = []
        want = -1 if size is None or size < 0 else size
        got = 0
        while want < 0 or got < want:
            piece = self.read1(_PIECE if want < 0 else min(_PIECE, want - got))
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)

    def unread(self, data: bytes) -> None:
        """Put ``data`` back in front of what comes next."""
        self._pushback = data + self._pushback
        self.offset -= len(data)

    def text_line(self) -> str:
        """The next line of the file as text (UTF-8, undecodable bytes replaced); ``""`` at end."""
        if self._text is None:
            self._text = io.TextIOWrapper(self, encoding="utf-8", errors="replace")
        return self._text.readline()

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
            self._raw.close()
        super().close()
