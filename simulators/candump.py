"""A fast can-utils ``candump -l`` writer: a `FrameBatch` in, log lines out, vectorised.

Lines are written exactly as candump writes them: ``(1700000000.012345) can0 0A0#0011...``,
three hex digits for a standard id and eight for an extended one, ``##`` and a flags digit
(BRS 1, ESI 2) before a CAN FD payload, upper-case hex. Frames of one shape (id width,
payload length, FD or not, digits of the seconds) have lines of one length, so each shape is
formatted as a 2-D character array and scattered into the output in frame order.
"""

from __future__ import annotations

import functools
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from edge_agent.frames import FrameBatch, FrameFlag

from ._types import U8Array

__all__ = ["format_candump", "write_candump"]


@functools.cache
def _hex() -> U8Array:
    return np.frombuffer(b"0123456789ABCDEF", np.uint8).copy()


def _digits(values: npt.NDArray[np.int64], count: int) -> U8Array:
    out = np.empty((len(values), count), np.uint8)
    for k in range(count):
        out[:, count - 1 - k] = (values // 10**k) % 10 + 48
    return out


def format_candump(batch: FrameBatch, channel: str | None = None) -> bytes:
    """The candump lines of ``batch``; ``channel`` overrides the batch's channel names."""
    n = len(batch)
    if n == 0:
        return b""
    names = batch.channel_names
    if channel is None and len(set(names)) > 1:
        raise ValueError("format_candump() writes one channel; pass channel= for several")
    name = (channel if channel is not None else (names[0] if names else "can0")).encode()
    micros = np.rint(batch.timestamps * 1e6).astype(np.int64)
    seconds, fraction = np.divmod(micros, 1_000_000)
    sec_digits = np.maximum(1, np.floor(np.log10(np.maximum(seconds, 1))).astype(np.int64) + 1)
    extended = (batch.flags & FrameFlag.EXTENDED) != 0
    fd = (batch.flags & FrameFlag.FD) != 0
    lengths = batch.lengths.astype(np.int64)
    id_width = np.where(extended, 8, 3)
    line_len = 1 + sec_digits + 1 + 6 + 2 + len(name) + 1 + id_width + 1 + 2 * fd + 2 * lengths + 1
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(line_len, out=offsets[1:])
    out = np.empty(int(offsets[-1]), np.uint8)
    key = sec_digits * 1_000_000 + id_width * 10_000 + fd * 1000 + lengths
    hexd = _hex()
    for value in np.unique(key):
        rows = np.flatnonzero(key == value)
        nd, w, is_fd, length = (
            int(sec_digits[rows[0]]),
            int(id_width[rows[0]]),
            bool(fd[rows[0]]),
            int(lengths[rows[0]]),
        )
        cols = [np.full((len(rows), 1), ord("("), np.uint8), _digits(seconds[rows], nd)]
        cols += [np.full((len(rows), 1), ord("."), np.uint8), _digits(fraction[rows], 6)]
        head = b") " + name + b" "
        cols.append(np.broadcast_to(np.frombuffer(head, np.uint8), (len(rows), len(head))))
        ids = batch.ids[rows].astype(np.int64)
        cols.append(np.stack([hexd[(ids >> (4 * (w - 1 - j))) & 0xF] for j in range(w)], 1))
        cols.append(np.full((len(rows), 1), ord("#"), np.uint8))
        if is_fd:
            flags = batch.flags[rows]
            fd_flags = ((flags & FrameFlag.BRS) != 0) * 1 + ((flags & FrameFlag.ESI) != 0) * 2
            cols.append(np.full((len(rows), 1), ord("#"), np.uint8))
            cols.append(hexd[fd_flags][:, None])
        payload = batch.data[rows, :length]
        nibbles = np.empty((len(rows), 2 * length), np.uint8)
        nibbles[:, 0::2] = hexd[payload >> 4]
        nibbles[:, 1::2] = hexd[payload & 0xF]
        cols.append(nibbles)
        cols.append(np.full((len(rows), 1), ord("\n"), np.uint8))
        lines = np.concatenate(cols, axis=1)
        width = lines.shape[1]
        positions = offsets[rows][:, None] + np.arange(width)
        out[positions] = lines
    return out.tobytes()


def write_candump(stream: BinaryIO, batch: FrameBatch, channel: str | None = None) -> int:
    """Write ``batch`` to a binary stream as candump lines; returns the bytes written."""
    text = format_candump(batch, channel)
    stream.write(text)
    return len(text)
