"""A vectorised reader for can-utils ``candump -l`` logs: bytes in, :class:`FrameBatch` out.

A line looks like ``(1436509052.249713) vcan0 044#2A366C2BBA``, optionally followed by a
direction field ``R`` or ``T`` (newer can-utils).  Every field is read the way python-can's
``CanutilsLogReader`` reads it, so the two agree frame by frame:

* the timestamp is the text between the parentheses, read as a decimal number (the value
  equals Python's ``float()`` of that text: short numbers are converted in compiled code by
  one correctly rounded division, longer ones by ``float()`` itself);
* an id of more than three hex digits is extended; the id is masked to 29 bits;
* ``#`` followed by ``#`` and a flags digit is CAN FD (bit 0 is BRS, bit 1 is ESI);
* ``R`` (optionally with a decimal length) is a remote frame, whose requested length is kept
  in ``lengths`` with no payload;
* the direction field ``T`` clears :attr:`FrameFlag.RX`; without a field a frame is received;
* an id with ``CAN_ERR_FLAG`` is an error frame, kept as python-can keeps one: id 0, no
  payload, no channel, extended and received.

Where python-can would stop or misread, a line is *bad*: it is skipped, counted and reported
with its number and a reason, and reading goes on with the next line.  Besides every line
python-can rejects, bad lines are those python-can reads into something candump never
writes: an odd number of payload hex digits (python-can reads the last digit as a byte of
its own), a classic payload of more than 8 bytes or an FD payload of more than 64, a pair
such as ``+1`` in the payload, an id of more than 8 hex digits (or with ``0x`` or ``_``), a
timestamp that is not a plain decimal in parentheses (python-can's ``float()`` also takes
``1e3``, ``inf`` or ``1_0``, and it never checks the parentheses), a remote length above 64,
and a channel name with bytes that are not printable ASCII.

Two deliberate differences on lines python-can reads: an id with ``CAN_ERR_FLAG`` is an
error frame whatever its error class (python-can also wants the ``CAN_ERR_BUSERROR`` bit and
otherwise reads a data frame whose id is the error class), and a hex flags digit ``A``-``F``
after ``##`` is read for its BRS and ESI bits (python-can stops there).  An all-digit channel
name such as ``0`` stays text in ``channel_names``, where python-can makes it an int.

Each line is read in one pass over its bytes by compiled code, in the form candump writes;
a line in any other form, or a bad one, is read again field by field by a careful parser
that decides.  Python only cuts the input into blocks at line ends, converts long
timestamps, drains bad-line records and hands out batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from ..frames import FrameBatch, FrameFlag
from ._report import Tally

__all__ = ["LONG_LINE", "REASONS", "iter_candump"]

#: A line longer than this many bytes is reported and skipped without being parsed.
LONG_LINE = 1 << 20

_NAME_CAP = 4096  # distinct channel names
_NAME_LEN = 64  # longest channel name
_BAD_CAP = 1024  # bad lines recorded per scanner call
_SLOW_CAP = 1 << 16  # timestamps left to Python per scanner call

#: Reason codes of the scanner and their texts.
REASONS: dict[int, str] = {
    1: "too few fields (truncated line?)",
    2: "too many fields (space in the payload?)",
    3: "unexpected fourth field (only a space and a direction R or T may follow the frame)",
    4: "timestamp is not a decimal number in parentheses",
    5: "channel name has bytes that are not printable ASCII",
    6: f"channel name longer than {_NAME_LEN} bytes",
    7: f"more than {_NAME_CAP} channel names",
    8: "no '#' between CAN id and payload",
    9: "CAN id is not 1 to 8 hex digits",
    10: "CAN FD frame without a flags digit after '##'",
    11: "remote frame length is not a decimal number from 0 to 64",
    12: "odd number of hex digits in payload",
    13: "payload has a character that is not a hex digit",
    14: "classic CAN payload longer than 8 bytes",
    15: "CAN FD payload longer than 64 bytes",
    16: f"line longer than {LONG_LINE} bytes",
}


_POW10 = np.array([10.0**k for k in range(23)], np.float64)  # all exact in float64
_MAX_EXACT = 1 << 53
# Byte classes: hex digit values (-1 for others), and the whitespace str.split() splits on
# (ASCII, without the newline that ends a line).
_HEX = np.full(256, -1, np.int8)
for _c, _v in zip(b"0123456789abcdefABCDEF", [*range(16), *range(10, 16)], strict=True):
    _HEX[_c] = _v
_WS = np.zeros(256, np.bool_)
_WS[[9, 11, 12, 13, 32]] = True

_EXT = int(FrameFlag.EXTENDED)
_FD = int(FrameFlag.FD)
_REMOTE = int(FrameFlag.REMOTE)
_ERROR = int(FrameFlag.ERROR)
_BRS = int(FrameFlag.BRS)
_ESI = int(FrameFlag.ESI)
_RX = int(FrameFlag.RX)
_CAN_ERR_FLAG = 0x20000000
_ID_MASK = 0x1FFFFFFF

_Out = tuple[Any, Any, Any, Any, Any, Any]  # timestamps, ids, flags, lengths, data, channels
_WIDER = -2  # status of a frame whose payload does not fit the data buffer


def _channel_py(
    buf: Any, s: int, e: int, names: Any, name_lens: Any, n_names: int, hint: int
) -> tuple[int, int]:
    """Index of the channel name ``buf[s:e]`` (added if new; ``hint`` is tried first).

    Returns ``(index, n_names)``; index ``-1`` when the table is full.
    """
    length = e - s
    for k in range(-1, n_names):
        idx = hint if k < 0 else k
        if idx < 0 or idx >= n_names or name_lens[idx] != length:
            continue
        same = True
        for j in range(length):
            if names[idx, j] != buf[s + j]:
                same = False
                break
        if same:
            return idx, n_names
    if n_names == names.shape[0]:
        return -1, n_names
    for j in range(length):
        names[n_names, j] = buf[s + j]
    name_lens[n_names] = length
    return n_names, n_names + 1


_channel: Callable[..., tuple[int, int]] = njit(cache=True, inline="always")(_channel_py)


def _store_py(out: _Out, row: int, ts: float, can_id: int, fl: int, n: int, chan: int) -> None:
    """Write one frame's columns (a data frame's payload is already in ``data``)."""
    tss, ids, flags, lens, data, chans = out
    tss[row] = ts
    if can_id & _CAN_ERR_FLAG:  # kept as python-can keeps an error frame
        ids[row] = 0
        flags[row] = _ERROR | _EXT | _RX
        lens[row] = 0
        chans[row] = -1
        for j in range(0 if fl & _REMOTE else n):
            data[row, j] = 0
    else:
        ids[row] = can_id & _ID_MASK
        flags[row] = fl
        lens[row] = n
        chans[row] = chan


_store: Callable[..., None] = njit(cache=True, inline="always")(_store_py)


def _reference_py(
    buf: Any,
    a: int,
    b: int,
    row: int,
    out: _Out,
    names: Any,
    name_lens: Any,
    n_names: int,
    tok: Any,
) -> tuple[int, int, int, int]:
    """Parse the line ``buf[a:b]`` field by field, as python-can splits and reads it.

    The careful path, for every line the fast path of :func:`_scan` does not take.  Writes
    row ``row`` if the line is good.  Returns ``(status, n_names, ts_start, ts_stop)``:
    status -1 for an empty line, 0 for a frame, ``_WIDER`` for a frame whose payload does
    not fit ``data``, else a :data:`REASONS` code; ``ts_start`` >= 0 marks a timestamp to
    convert in Python (``buf[ts_start:ts_stop]``).
    """
    while a < b and _WS[buf[a]]:
        a += 1
    while b > a and _WS[buf[b - 1]]:
        b -= 1
    if a == b:
        return -1, n_names, -1, -1
    ntok = 0
    i = a
    while i < b and ntok < 5:
        tok[ntok, 0] = i
        while i < b and not _WS[buf[i]]:
            i += 1
        tok[ntok, 1] = i
        ntok += 1
        while i < b and _WS[buf[i]]:
            i += 1
    rx = True
    if ntok < 3:
        return 1, n_names, -1, -1
    if ntok == 5 or (ntok == 4 and tok[3, 1] - tok[3, 0] != 1):
        return 2, n_names, -1, -1
    if ntok == 4:
        d = buf[tok[3, 0]] | 0x20
        if buf[tok[3, 0] - 1] != 32 or (d != 116 and d != 114):  # a space, then r or t
            return 3, n_names, -1, -1
        rx = d == 114
    # Timestamp: "(" [sign] digits [. digits] ")".
    s = tok[0, 0]
    e = tok[0, 1]
    if e - s < 3 or buf[s] != 40 or buf[e - 1] != 41:
        return 4, n_names, -1, -1
    i = s + 1
    neg = buf[i] == 45
    if neg or buf[i] == 43:
        i += 1
    mant = 0
    ndig = 0
    nfrac = 0
    dot = False
    while i < e - 1:
        c = buf[i]
        if 48 <= c <= 57:
            if ndig < 18:
                mant = mant * 10 + (c - 48)
            ndig += 1
            if dot:
                nfrac += 1
        elif c == 46 and not dot:
            dot = True
        else:
            return 4, n_names, -1, -1
        i += 1
    if ndig == 0:
        return 4, n_names, -1, -1
    ts_start = -1
    tsv = 0.0
    if ndig <= 18 and mant <= _MAX_EXACT and nfrac <= 22:
        tsv = mant / _POW10[nfrac]
        if neg:
            tsv = -tsv
    else:
        ts_start = s + 1
    # Channel.
    s = tok[1, 0]
    e = tok[1, 1]
    if e - s > names.shape[1]:
        return 6, n_names, -1, -1
    for i in range(s, e):
        if buf[i] < 33 or buf[i] > 126:
            return 5, n_names, -1, -1
    # Frame: id "#" ["#" flags] (hex pairs | "R" [length]).
    s = tok[2, 0]
    e = tok[2, 1]
    h = s
    while h < e and buf[h] != 35:
        h += 1
    if h == e:
        return 8, n_names, -1, -1
    if h - s < 1 or h - s > 8:
        return 9, n_names, -1, -1
    can_id = 0
    for i in range(s, h):
        v = _HEX[buf[i]]
        if v < 0:
            return 9, n_names, -1, -1
        can_id = can_id * 16 + v
    fl = _EXT if h - s > 3 else 0
    if rx:
        fl |= _RX
    p = h + 1
    if p < e and buf[p] == 35:
        fl |= _FD
        v = _HEX[buf[p + 1]] if p + 1 < e else -1
        if v < 0:
            return 10, n_names, -1, -1
        if v & 1:
            fl |= _BRS
        if v & 2:
            fl |= _ESI
        p += 2
    n = 0
    if p < e and (buf[p] | 0x20) == 114:  # r
        fl |= _REMOTE
        if e - p - 1 > 2:
            return 11, n_names, -1, -1
        for i in range(p + 1, e):
            if buf[i] < 48 or buf[i] > 57:
                return 11, n_names, -1, -1
            n = n * 10 + (buf[i] - 48)
        if n > 64:
            return 11, n_names, -1, -1
    else:
        for i in range(p, e):
            if _HEX[buf[i]] < 0:
                return 13, n_names, -1, -1
        if (e - p) % 2:
            return 12, n_names, -1, -1
        n = (e - p) // 2
        if n > (64 if fl & _FD else 8):
            return 15 if fl & _FD else 14, n_names, -1, -1
        if n > out[4].shape[1]:
            return _WIDER, n_names, -1, -1
    chan, n_names = _channel(buf, tok[1, 0], tok[1, 1], names, name_lens, n_names, -1)
    if chan < 0:
        return 7, n_names, -1, -1
    if not fl & _REMOTE:
        data = out[4]
        for j in range(n):
            data[row, j] = _HEX[buf[p + 2 * j]] * 16 + _HEX[buf[p + 2 * j + 1]]
    _store(out, row, tsv, can_id, fl, n, chan)
    return 0, n_names, ts_start, tok[0, 1] - 1


_reference: Callable[..., tuple[int, int, int, int]] = njit(cache=True)(_reference_py)


def _scan_py(
    buf: Any,
    pos: int,
    end: int,
    line_no: int,
    row: int,
    out: _Out,
    slow: Any,
    bad: Any,
    names: Any,
    name_lens: Any,
    n_names: int,
    tok: Any,
) -> tuple[int, int, int, int, int, int, bool]:
    """Parse the lines of ``buf[pos:end]`` into ``out``, rows from ``row`` on.

    Stops at ``end``, when ``out``, ``slow`` or ``bad`` is full, or before a frame whose
    payload is wider than ``data``.  ``slow`` receives ``(row, start, stop)`` of timestamps
    to convert in Python; ``bad`` receives ``(line, reason, start, stop)``.  Returns
    ``(pos, row, n_slow, n_bad, line_no, n_names, wider)``, ``wider`` when ``data`` must
    grow before the line at ``pos`` can be read.

    Each line is first read in one pass over its bytes, in the form candump writes; a line
    in any other form (or a bad one) goes to :func:`_reference_py`, which decides.  The fast
    path takes only lines the reference takes, and stores the same values.
    """
    data = out[4]
    width = data.shape[1]
    cap = len(out[0])
    bad_cap = bad.shape[0]
    slow_cap = slow.shape[0]
    n_slow = 0
    n_bad = 0
    chan = -1
    while pos < end and row < cap:
        line_no += 1
        i = pos
        k = 0  # payload bytes written to the row so far
        fast = False
        while True:  # the fast path, left by "break"
            if buf[i] != 40:
                break
            i += 1
            mant = 0
            ndig = 0
            nfrac = 0
            dot = False
            while i < end:
                c = buf[i]
                if 48 <= c <= 57:
                    mant = mant * 10 + (c - 48)
                    ndig += 1
                    nfrac += dot
                elif c == 46 and not dot:
                    dot = True
                else:
                    break
                i += 1
            if i >= end or buf[i] != 41 or ndig == 0 or ndig > 18:
                break
            if mant > _MAX_EXACT or nfrac > 22:
                break
            i += 1
            if i >= end or not _WS[buf[i]]:
                break
            while i < end and _WS[buf[i]]:
                i += 1
            s = i
            while i < end and 33 <= buf[i] <= 126:
                i += 1
            if i == s or i - s > names.shape[1] or i >= end or not _WS[buf[i]]:
                break
            chan, n_names = _channel(buf, s, i, names, name_lens, n_names, chan)
            if chan < 0:
                break
            while i < end and _WS[buf[i]]:
                i += 1
            s = i
            can_id = 0
            while i < end and _HEX[buf[i]] >= 0:
                can_id = can_id * 16 + _HEX[buf[i]]
                i += 1
            if i == s or i - s > 8 or i >= end or buf[i] != 35:
                break
            fl = _EXT if i - s > 3 else 0
            i += 1
            if i < end and buf[i] == 35:
                if i + 1 >= end or _HEX[buf[i + 1]] < 0:
                    break
                v = _HEX[buf[i + 1]]
                fl |= _FD | (_BRS if v & 1 else 0) | (_ESI if v & 2 else 0)
                i += 2
            limit = min(64 if fl & _FD else 8, width)
            ok = True
            while i < end and _HEX[buf[i]] >= 0:
                if i + 1 >= end or _HEX[buf[i + 1]] < 0 or k == limit:
                    ok = False
                    break
                data[row, k] = _HEX[buf[i]] * 16 + _HEX[buf[i + 1]]
                k += 1
                i += 2
            if not ok or (i < end and buf[i] != 10 and not _WS[buf[i]]):
                break
            while i < end and _WS[buf[i]]:
                i += 1
            fl |= _RX
            if i < end and buf[i] != 10:
                d = buf[i] | 0x20
                if buf[i - 1] != 32 or (d != 116 and d != 114):  # a space, then r or t
                    break
                if d == 116:
                    fl &= ~_RX
                i += 1
                while i < end and _WS[buf[i]]:
                    i += 1
                if i < end and buf[i] != 10:
                    break
            _store(out, row, mant / _POW10[nfrac], can_id, fl, k, chan)
            fast = True
            break
        if fast:
            row += 1
            pos = i + 1
            continue
        # The careful path: undo what the fast path wrote, find the line's end, decide.
        for j in range(k):
            data[row, j] = 0
        eol = i
        while eol < end and buf[eol] != 10:
            eol += 1
        status, n_names, ts_start, ts_stop = _reference(
            buf, pos, eol, row, out, names, name_lens, n_names, tok
        )
        if status == _WIDER:
            return pos, row, n_slow, n_bad, line_no - 1, n_names, True
        if status == 0:
            if ts_start >= 0:
                slow[n_slow, 0] = row
                slow[n_slow, 1] = ts_start
                slow[n_slow, 2] = ts_stop
                n_slow += 1
            row += 1
        elif status > 0:
            bad[n_bad, 0] = line_no
            bad[n_bad, 1] = status
            bad[n_bad, 2] = pos
            bad[n_bad, 3] = eol
            n_bad += 1
        pos = eol + 1
        if n_bad == bad_cap or n_slow == slow_cap:
            break
    return min(pos, end), row, n_slow, n_bad, line_no, n_names, False


_scan: Callable[..., tuple[int, int, int, int, int, int, bool]] = njit(cache=True, nogil=True)(
    _scan_py
)


class _Output:
    """Reusable column buffers for one batch of up to ``cap`` frames.

    Payloads start 8 bytes wide and widen to 64 at the first CAN FD frame that needs it.
    """

    def __init__(self, cap: int) -> None:
        self.ts = np.zeros(cap, np.float64)
        self.ids = np.zeros(cap, np.uint32)
        self.flags = np.zeros(cap, np.uint8)
        self.lens = np.zeros(cap, np.uint8)
        self.data = np.zeros((cap, 8), np.uint8)
        self.chans = np.zeros(cap, np.int16)
        self.slow = np.zeros((min(cap, _SLOW_CAP), 3), np.int64)
        self.rows = 0

    def widen(self) -> None:
        data = np.zeros((len(self.ts), 64), np.uint8)
        data[: self.rows, :8] = self.data[: self.rows]
        self.data = data

    def columns(self) -> tuple[Any, Any, Any, Any, Any, Any]:
        return (self.ts, self.ids, self.flags, self.lens, self.data, self.chans)

    def take(self, channel_names: tuple[str, ...]) -> FrameBatch:
        """The filled rows as a batch of their own; the buffers are cleared for reuse."""
        n = self.rows
        width = max(8, int(self.lens[:n].max(initial=0)))
        batch = FrameBatch(
            timestamps=self.ts[:n].copy(),
            ids=self.ids[:n].copy(),
            flags=self.flags[:n].copy(),
            lengths=self.lens[:n].copy(),
            data=self.data[:n, :width].copy(),
            channels=self.chans[:n].copy(),
            channel_names=channel_names,
        )
        self.data[:n, :width] = 0
        self.rows = 0
        return batch


class _Scanner:
    """Feeds blocks of bytes through the compiled scanner; keeps state between blocks."""

    def __init__(self, chunk_frames: int, tally: Tally) -> None:
        self.out = _Output(chunk_frames)
        self.tally = tally
        self.line_no = 0
        self.names = np.zeros((_NAME_CAP, _NAME_LEN), np.uint8)
        self.name_lens = np.zeros(_NAME_CAP, np.int64)
        self.n_names = 0
        self.channel_names: tuple[str, ...] = ()
        self.bad = np.zeros((_BAD_CAP, 4), np.int64)
        self.tok = np.zeros((5, 2), np.int64)

    def scan(self, buf: npt.NDArray[np.uint8], end: int) -> Iterator[FrameBatch]:
        """Parse the complete lines in ``buf[:end]``, yielding every batch that fills up."""
        out = self.out
        pos = 0
        while pos < end:
            pos, out.rows, n_slow, n_bad, self.line_no, n_names, wider = _scan(
                buf, pos, end, self.line_no, out.rows, out.columns(), out.slow, self.bad,
                self.names, self.name_lens, self.n_names, self.tok,
            )  # fmt: skip
            for row, start, stop in out.slow[:n_slow].tolist():
                out.ts[row] = float(buf[start:stop].tobytes())
            for line, reason, start, stop in self.bad[:n_bad].tolist():
                text = buf[start:stop].tobytes().decode("utf-8", "backslashreplace")
                self.tally.add(line, REASONS[reason], text.rstrip("\r"))
            if n_names != self.n_names:
                self.n_names = n_names
                self.channel_names = tuple(
                    self.names[k, : self.name_lens[k]].tobytes().decode("ascii")
                    for k in range(n_names)
                )
            if wider:
                out.widen()
            if out.rows == len(out.ts):
                yield out.take(self.channel_names)

    def long_line(self, head: bytes) -> None:
        self.line_no += 1
        self.tally.add(self.line_no, REASONS[16], head[:200].decode("utf-8", "backslashreplace"))

    def rest(self) -> Iterator[FrameBatch]:
        if self.out.rows:
            yield self.out.take(self.channel_names)


def iter_candump(
    blocks: Iterable[bytes], tally: Tally, *, chunk_frames: int = 1_000_000
) -> Iterator[FrameBatch]:
    """Batches of at most ``chunk_frames`` frames from the candump text in ``blocks``.

    ``blocks`` may cut lines anywhere; bad lines go to ``tally``.  Pure: no I/O.
    """
    scanner = _Scanner(chunk_frames, tally)
    pending = b""
    skipping = False  # inside a line longer than LONG_LINE
    for block in blocks:
        if skipping:
            cut = block.find(b"\n")
            if cut < 0:
                continue
            block = block[cut + 1 :]
            skipping = False
        buf = pending + block if pending else block
        end = buf.rfind(b"\n") + 1
        if end == 0 and len(buf) > LONG_LINE:
            scanner.long_line(buf)
            pending, skipping = b"", True
            continue
        pending = buf[end:]
        if end:
            yield from scanner.scan(np.frombuffer(buf, np.uint8), end)
        if len(pending) > LONG_LINE:
            scanner.long_line(pending)
            pending, skipping = b"", True
    if pending:
        yield from scanner.scan(np.frombuffer(pending, np.uint8), len(pending))
    yield from scanner.rest()
