"""Unsigned LEB128 varints and zigzag, one value at a time and vectorised with NumPy.

A varint holds 7 bits per byte, least significant group first; the top bit of each byte says
that another byte follows. Values are at most 64 bits, so at most 10 bytes, and the tenth byte
may only be 0 or 1. Only the shortest encoding is valid (no trailing ``0x80 ... 0x00``
padding), so every value has one encoding. Zigzag maps signed to unsigned integers so that
small magnitudes get short varints: 0, -1, 1, -2, ... become 0, 1, 2, 3, ...

Errors are raised as `VarintError` carrying the byte offset; the codec turns them into
`MalformedPayloadError` with the section they were found in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAX_BYTES = 10  # a 64-bit value needs at most 10 groups of 7 bits

_U64 = np.uint64
_EMPTY_U64: npt.NDArray[np.uint64] = np.zeros(0, np.uint64)
_THRESHOLDS = np.array([1 << (7 * k) for k in range(1, MAX_BYTES)], np.uint64)


class VarintError(Exception):
    """A varint cannot be read: ``offset`` is the byte where it starts."""

    def __init__(self, problem: str, offset: int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.offset = offset


# -- one value --------------------------------------------------------------------------


def encode_uint(value: int) -> bytes:
    """The varint of one non-negative integer below 2**64."""
    if not 0 <= value < 1 << 64:
        raise ValueError(f"{value} does not fit an unsigned 64-bit varint")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_sint(value: int) -> bytes:
    """The zigzag varint of one integer in the int64 range."""
    if not -(1 << 63) <= value < 1 << 63:
        raise ValueError(f"{value} does not fit a signed 64-bit varint")
    return encode_uint((value << 1) ^ (value >> 63) if value < 0 else value << 1)


def read_uint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The varint at ``data[pos:]`` and the offset after it."""
    value = 0
    for k in range(MAX_BYTES):
        if pos + k >= len(data):
            raise VarintError("truncated varint", pos)
        byte = data[pos + k]
        if k == MAX_BYTES - 1 and byte > 1:
            raise VarintError("varint exceeds 64 bits", pos)
        value |= (byte & 0x7F) << (7 * k)
        if byte < 0x80:
            if byte == 0 and k > 0:
                raise VarintError("varint is not in its shortest form", pos)
            return value, pos + k + 1
    raise VarintError(f"varint longer than {MAX_BYTES} bytes", pos)


def read_sint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The zigzag varint at ``data[pos:]`` and the offset after it."""
    value, pos = read_uint(data, pos)
    return (value >> 1) ^ -(value & 1), pos


# -- arrays ---------------------------------------------------------------------------------


def zigzag(values: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """Zigzag of int64 values, as uint64."""
    out: npt.NDArray[np.uint64] = (values.view(_U64) << _U64(1)) ^ (values >> 63).view(_U64)
    return out


def unzigzag(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """The int64 values of zigzag-coded uint64 values, computed in place of ``values``."""
    sign = (values & _U64(1)).view(np.int64)
    np.negative(sign, out=sign)
    values >>= _U64(1)
    values ^= sign.view(_U64)
    return values.view(np.int64)


def encode_array(values: npt.NDArray[np.uint64]) -> bytes:
    """The varints of ``values``, one after the other."""
    n = len(values)
    if n == 0:
        return b""
    sizes = 1 + (values[:, None] >= _THRESHOLDS[None, :]).sum(axis=1)
    width = int(sizes.max())
    if width == 1:
        return values.astype(np.uint8).tobytes()
    groups = np.empty((n, width), np.uint8)
    for k in range(width):
        more = np.where(sizes > k + 1, 0x80, 0).astype(np.uint8)
        groups[:, k] = ((values >> _U64(7 * k)) & _U64(0x7F)).astype(np.uint8) | more
    out: bytes = groups[np.arange(width)[None, :] < sizes[:, None]].tobytes()
    return out


def varint_ends(data: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """Offsets of the bytes that could end a varint (top bit clear), for `read_array`."""
    ends: npt.NDArray[np.int64] = np.flatnonzero(data < 0x80).astype(np.int64)
    return ends


@dataclass(frozen=True, slots=True, eq=False)
class Block:
    """Varints read by `read_array`: their values, and where each one starts."""

    values: npt.NDArray[np.uint64]
    first: int  # offset of the first varint
    stops: npt.NDArray[np.int64]  # offset of each varint's last byte
    end: int  # offset after the last varint

    def offset(self, k: int) -> int:
        """Where varint ``k`` starts."""
        return self.first if k == 0 else int(self.stops[k - 1]) + 1


def read_array(
    data: npt.NDArray[np.uint8], ends: npt.NDArray[np.int64], pos: int, count: int
) -> Block:
    """``count`` varints from ``data[pos:]``; ``ends`` is `varint_ends` of ``data``.

    Raises `VarintError` at the first bad varint.
    """
    if count == 0:
        return Block(_EMPTY_U64, pos, np.zeros(0, np.int64), pos)
    first = int(np.searchsorted(ends, pos))
    if first + count > len(ends):
        found = len(ends) - first
        start = pos if found == 0 else int(ends[first + found - 1]) + 1
        raise VarintError(f"truncated: {count} varints expected, {found} found", start)
    stops = ends[first : first + count]
    end = int(stops[-1]) + 1
    chunk = data[pos:end]
    if end - pos == count:  # every varint is one byte
        return Block(chunk.astype(np.uint64), pos, stops, end)
    starts = np.empty(count, np.int64)
    starts[0] = pos
    starts[1:] = stops[:-1] + 1
    sizes = stops - starts + 1
    bad = (sizes > MAX_BYTES) | ((sizes > 1) & (data[stops] == 0))
    bad |= (sizes == MAX_BYTES) & (data[stops] > 1)
    if bad.any():
        i = int(np.argmax(bad))
        size, last = int(sizes[i]), int(data[stops[i]])
        if size > MAX_BYTES:
            problem = f"varint longer than {MAX_BYTES} bytes"
        elif size == MAX_BYTES and last > 1:
            problem = "varint exceeds 64 bits"
        else:
            problem = "varint is not in its shortest form"
        raise VarintError(problem, int(starts[i]))
    position = np.arange(len(chunk), dtype=np.int64) - np.repeat(starts - pos, sizes)
    parts = (chunk & 0x7F).astype(np.uint64) << (7 * position).astype(np.uint64)
    values: npt.NDArray[np.uint64] = np.add.reduceat(parts, starts - pos)
    return Block(values, pos, stops, end)
