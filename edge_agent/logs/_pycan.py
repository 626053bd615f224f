"""Vector ASC, PCAN TRC and Vector BLF through python-can's readers, past bad lines.

python-can's readers stop at the first line they cannot parse.  Here each keeps going:

* **ASC**: python-can's ``ASCReader`` runs unchanged over a line-counting view of the file,
  so its header state (number base, trigger-block start time) is its own.  Its two per-line
  frame parsers are wrapped: a line they fail on is reported and skipped (the wrapper returns
  ``None``, which python-can's loop already passes over) and the loop goes on with the next
  line.  A frame line with fewer data bytes than its DLC promises (a cut-off line, which
  python-can would read as a shorter frame) is reported too.  Lines python-can does not take
  for frames (comments, statistics, chip states, J1939 transport) are passed over silently as
  python-can does.
* **TRC**: python-can's ``TRCReader`` reads the header (file version, columns, start time)
  and picks its per-version column parser; the per-line step (split into columns, then
  parse) is done here with every failure reported, where python-can logs a warning for some
  and stops at others.  A line whose data is shorter than its DLC is reported.
* **BLF**: the file header is read by python-can's ``BLFReader``; the log containers and the
  objects inside them are walked here, and each CAN object is handed on its own to
  python-can's object parser, so every field keeps python-can's meaning.  A region that is
  not an object, a container that does not decompress, an object too short for its type and
  a file that ends inside a container are reported (with the file offset of the container or
  region) and skipped, resynchronising on the next ``LOBJ`` signature; everything readable
  around them is read.

In every format a frame longer than 64 bytes or with an id beyond 29 bits is reported and
skipped.  Text is decoded as UTF-8 with undecodable bytes replaced, so stray bytes spoil
only their own line.  A corrupt or cut-off gzip stream is reported once, and what was
decompressed before it is read.

These readers use private methods of python-can 4.x readers (``_process_classic_can_frame``,
``_process_fd_can_frame``, ``_parse_cols``, ``_parse_data``); the corpus tests pin their
behaviour.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, TextIO, cast

import numpy as np
from can.io import blf
from can.io.asc import ASCReader
from can.io.trc import TRCFileVersion, TRCReader
from can.message import Message
from can.util import dlc2len

from ..frames import FrameBatch, FrameFlag
from ._report import Tally

if TYPE_CHECKING:
    from ._source import Source

__all__ = ["MessageBatcher", "iter_asc", "iter_blf", "iter_trc"]

_MAX_OBJECT = 64 << 20  # larger object sizes are taken for corruption
_MAX_HEADER = 1 << 16  # and larger file header sizes
_CAN_OBJECTS = frozenset(
    {blf.CAN_MESSAGE, blf.CAN_MESSAGE2, blf.CAN_ERROR_EXT, blf.CAN_FD_MESSAGE,
     blf.CAN_FD_MESSAGE_64}
)  # fmt: skip


class Lines:
    """The text lines of a source as python-can reads them, numbered as they go by."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self.number = 0
        self.text = ""

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        line = self._source.text_line()
        if not line:
            raise StopIteration
        self.number += 1
        self.text = line
        return line

    def close(self) -> None:
        """python-can closes its file when done; the source is closed by its owner."""

    def bad(self, tally: Tally, reason: str) -> None:
        tally.add(self.number, reason, self.text.rstrip("\r\n"))


def _invalid(msg: Message) -> str | None:
    """Why ``msg`` does not fit a :class:`FrameBatch` row, if it does not."""
    length = msg.dlc if msg.is_remote_frame else len(msg.data)
    if not 0 <= length <= 64:
        return f"frame length {length} is not 0 to 64 bytes"
    if not 0 <= msg.arbitration_id <= 0x1FFFFFFF:
        return f"CAN id {msg.arbitration_id:#x} exceeds 29 bits"
    return None


class _ASCReader(ASCReader):
    def __init__(self, lines: Lines, tally: Tally) -> None:
        super().__init__(cast("TextIO", lines))
        self._lines = lines
        self._tally = tally

    def _checked(self, parse: Callable[[], Message], fd: bool) -> Message | None:
        try:
            msg = parse()
        except Exception as exc:  # anything python-can's parser trips over
            self._lines.bad(self._tally, f"cannot parse frame: {exc}")
            return None
        problem = _invalid(msg)
        if not (problem or msg.is_remote_frame or msg.is_error_frame):
            want = msg.dlc if fd else min(8, msg.dlc)
            if len(msg.data) < want:
                problem = f"{len(msg.data)} data bytes where the DLC promises {want}"
        if problem:
            self._lines.bad(self._tally, problem)
            return None
        return msg

    def _process_classic_can_frame(  # type: ignore[override]
        self, line: str, msg_kwargs: dict[str, Any]
    ) -> Message | None:
        parse = super()._process_classic_can_frame
        return self._checked(lambda: parse(line, msg_kwargs), fd=False)

    def _process_fd_can_frame(  # type: ignore[override]
        self, line: str, msg_kwargs: dict[str, Any]
    ) -> Message | None:
        parse = super()._process_fd_can_frame
        return self._checked(lambda: parse(line, msg_kwargs), fd=True)


class _TRCReader(TRCReader):
    def __init__(self, lines: Lines, tally: Tally) -> None:
        super().__init__(cast("TextIO", lines))
        self._lines = lines
        self._tally = tally

    def _parse_line(self, line: str) -> Message | None:
        if not line.strip() or line.startswith(";"):
            return None  # an empty file's "first line" after its header
        try:
            msg = self._parse_cols(tuple(line.split(maxsplit=self._num_columns)))
        except Exception as exc:  # anything python-can's parser trips over
            self._lines.bad(self._tally, f"cannot parse frame: {exc}")
            return None
        if msg is None:
            return None
        problem = _invalid(msg)
        if not problem and self.file_version >= TRCFileVersion.V2_0 and not msg.is_remote_frame:
            want = dlc2len(msg.dlc)
            if len(msg.data) < want:
                problem = f"{len(msg.data)} data bytes where the DLC promises {want}"
        if problem:
            self._lines.bad(self._tally, problem)
            return None
        return msg


def iter_asc(source: Source, tally: Tally) -> Iterator[Message]:
    """The frames of an ASC file, bad lines reported to ``tally``."""
    lines = Lines(source)
    yield from _ASCReader(lines, tally)


def iter_trc(source: Source, tally: Tally) -> Iterator[Message]:
    """The frames of a TRC file, bad lines reported to ``tally``.

    :raises ValueError, NotImplementedError: from python-can when the header is unusable.
    """
    lines = Lines(source)
    yield from _TRCReader(lines, tally)


def iter_blf(source: Source, tally: Tally) -> Iterator[Message]:
    """The frames of a BLF file, corrupt regions reported to ``tally``.

    :raises blf.BLFParseError, struct.error, ValueError: when the file header is not a BLF
        header.
    """
    start = source.read(8)
    source.unread(start)
    if len(start) == 8:
        size = struct.unpack_from("<L", start, 4)[0]
        if not blf.FILE_HEADER_STRUCT.size <= size <= _MAX_HEADER:
            raise ValueError(f"file header size {size} is implausible")
    reader = blf.BLFReader(cast("Any", source))  # reads the file header
    tail = b""
    while True:
        at = source.offset
        head = source.read(blf.OBJ_HEADER_BASE_STRUCT.size)
        if not head:
            return
        if len(head) < blf.OBJ_HEADER_BASE_STRUCT.size:
            tally.add(None, "file ends inside an object header", head.hex(" "), at)
            return
        signature, _, _, size, kind = blf.OBJ_HEADER_BASE_STRUCT.unpack(head)
        if signature != b"LOBJ" or not len(head) <= size <= _MAX_OBJECT:
            skipped = _resync(source, head)
            if skipped > 3 or head[:skipped].strip(b"\0"):
                tally.add(None, f"no object here; skipped {skipped} bytes", head.hex(" "), at)
            continue
        body = source.read(size - len(head))
        source.read(size % 4)  # padding, as python-can skips it
        if kind != blf.LOG_CONTAINER:
            continue
        if len(body) < blf.LOG_CONTAINER_STRUCT.size:
            tally.add(None, "file ends inside a log container header", body.hex(" "), at)
            return
        data = _unpack_container(body, at, tally)
        if data is None:
            tail = b""
            continue
        if len(body) < size - len(head):
            tally.add(None, "file ends inside this log container", f"{len(body)} bytes", at)
        tail = yield from _objects(reader, tail + data, at, tally)


def _resync(source: Source, head: bytes) -> int:
    """Skip to the next ``LOBJ`` signature after ``head``'s first byte; bytes skipped."""
    window = head[1:]
    skipped = 1
    while True:
        found = window.find(b"LOBJ")
        if found >= 0:
            source.unread(window[found:])
            return skipped + found
        more = source.read(1 << 16)
        if not more:
            return skipped + len(window)
        skipped += len(window) - 3
        window = window[-3:] + more


def _unpack_container(body: bytes, at: int, tally: Tally) -> bytes | None:
    method, _ = blf.LOG_CONTAINER_STRUCT.unpack_from(body)
    payload = body[blf.LOG_CONTAINER_STRUCT.size :]
    if method == blf.NO_COMPRESSION:
        return payload
    if method == blf.ZLIB_DEFLATE:
        try:
            return zlib.decompressobj().decompress(payload)
        except zlib.error as exc:
            tally.add(None, f"log container does not decompress: {exc}", f"{len(body)} bytes", at)
            return None
    tally.add(None, f"log container with unknown compression method {method}", "", at)
    return None


def _objects(
    reader: blf.BLFReader, data: bytes, at: int, tally: Tally
) -> Generator[Message, None, bytes]:
    """The frames of the objects in a container's ``data``; returns the incomplete tail.

    Objects are found as python-can finds them (the next ``LOBJ`` within 8 bytes of the end
    of the previous object); ``at`` is the container's file offset, for reports.
    """
    pos = 0
    n = len(data)
    while True:
        found = data.find(b"LOBJ", pos, pos + 8)
        if found < 0:
            if pos + 8 > n:
                return data[pos:]
            found = data.find(b"LOBJ", pos + 8)
            skipped = (n if found < 0 else found) - pos
            tally.add(
                None,
                f"no object at byte {pos} of the container's data; skipped {skipped} bytes",
                data[pos : pos + 32].hex(" "),
                at,
            )
            if found < 0:
                return b""
        pos = found
        if n - pos < blf.OBJ_HEADER_BASE_STRUCT.size:
            return data[pos:]
        _, _, version, size, kind = blf.OBJ_HEADER_BASE_STRUCT.unpack_from(data, pos)
        if not blf.OBJ_HEADER_BASE_STRUCT.size <= size <= _MAX_OBJECT:
            tally.add(None, f"object size {size} is impossible", data[pos : pos + 32].hex(" "), at)
            pos += 4
            continue
        if pos + size > n:
            return data[pos:]
        if kind in _CAN_OBJECTS:
            msg = _decode(reader, data[pos : pos + size], version, tally, at, pos)
            if msg is not None:
                yield msg
        pos += size


def _decode(
    reader: blf.BLFReader, obj: bytes, version: int, tally: Tally, at: int, pos: int
) -> Message | None:
    problem: str | None
    if version not in (1, 2):
        problem = f"unknown object header version {version}"
    else:
        frames = cast("Generator[Message, None, None]", reader._parse_data(obj))
        try:
            msg = next(frames, None)
        except (struct.error, blf.BLFParseError, ValueError) as exc:
            problem = f"object too short or corrupt: {exc}"
        else:
            if msg is None:
                return None
            problem = _invalid(msg)
            if problem is None:
                return msg
        finally:
            frames.close()
    tally.add(None, f"object at byte {pos} of the container's data: {problem}",
              obj[:32].hex(" "), at)  # fmt: skip
    return None


def message_flags(msg: Message) -> int:
    """The :class:`FrameFlag` bits of a python-can message."""
    return (
        (FrameFlag.EXTENDED if msg.is_extended_id else 0)
        | (FrameFlag.FD if msg.is_fd else 0)
        | (FrameFlag.REMOTE if msg.is_remote_frame else 0)
        | (FrameFlag.ERROR if msg.is_error_frame else 0)
        | (FrameFlag.BRS if msg.bitrate_switch else 0)
        | (FrameFlag.ESI if msg.error_state_indicator else 0)
        | (FrameFlag.RX if msg.is_rx else 0)
    )


class MessageBatcher:
    """Collects python-can messages into batches of ``chunk_frames`` rows.

    A remote frame's length is its DLC as python-can gives it (the requested length), with
    no payload; a data frame's length is the number of data bytes python-can read.  Channel
    names are numbered in order of first appearance and kept across batches.
    """

    def __init__(self, chunk_frames: int) -> None:
        self.chunk_frames = chunk_frames
        self._names: dict[str, int] = {}
        self._clear()

    def _clear(self) -> None:
        self._ts: list[float] = []
        self._ids: list[int] = []
        self._flags: list[int] = []
        self._lens: list[int] = []
        self._data: list[bytes] = []
        self._chans: list[int] = []

    def add(self, msg: Message) -> FrameBatch | None:
        """Add one message; returns a batch when one is full."""
        self._ts.append(msg.timestamp)
        self._ids.append(msg.arbitration_id)
        self._flags.append(message_flags(msg))
        if msg.is_remote_frame:
            self._lens.append(msg.dlc)
            self._data.append(b"")
        else:
            self._lens.append(len(msg.data))
            self._data.append(bytes(msg.data))
        if msg.channel is None:
            self._chans.append(-1)
        else:
            self._chans.append(self._names.setdefault(str(msg.channel), len(self._names)))
        return self.take() if len(self._ts) >= self.chunk_frames else None

    def take(self) -> FrameBatch | None:
        """The messages collected so far as a batch (``None`` if there are none)."""
        if not self._ts:
            return None
        width = max(8, *self._lens)
        data = b"".join(d.ljust(width, b"\0") for d in self._data)
        batch = FrameBatch(
            timestamps=np.array(self._ts, np.float64),
            ids=np.array(self._ids, np.uint32),
            flags=np.array(self._flags, np.uint8),
            lengths=np.array(self._lens, np.uint8),
            data=np.frombuffer(data, np.uint8).reshape(len(self._ts), width).copy(),
            channels=np.array(self._chans, np.int16),
            channel_names=tuple(self._names),
        )
        self._clear()
        return batch
