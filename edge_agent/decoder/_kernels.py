"""numba kernels of the batch decoder: message lookup, then signal extraction.

They read the flat tables made by ``_tables.compile_database``; the meaning of every array is
documented there.  Compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

_JIT: dict[str, Any] = {"nogil": True, "cache": True, "boundscheck": False}

# Per-frame status written by ``lookup``.
UNKNOWN = -1  # no message of the database has this id
SKIPPED = -2  # remote or error frame: no data to decode

_FLAG_EXTENDED = 0x01
_FLAG_REMOTE = 0x04
_FLAG_ERROR = 0x08
_EXTENDED_KEY = np.int64(1 << 32)


@numba.njit(**_JIT)
def _find(keys: Any, key: np.int64) -> int:
    lo, hi = 0, len(keys)
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(keys) and keys[lo] == key:
        return lo
    return -1


@numba.njit(**_JIT)
def _pgn(frame_id: np.int64) -> np.int64:
    """J1939 parameter group number of a 29-bit id (PDU1: destination not part of it)."""
    pdu_format = (frame_id >> 16) & 0xFF
    pgn = (frame_id >> 8) & 0x3FFFF
    if pdu_format < 240:
        pgn &= 0x3FF00
    return pgn


@numba.njit(**_JIT)
def lookup(
    ids: Any,
    flags: Any,
    keys: Any,
    key_msg: Any,
    pgn_keys: Any,
    pgn_msg: Any,
    msg_sig_count: Any,
    out_msg: Any,
) -> np.int64:
    """Write each frame's message index (or UNKNOWN/SKIPPED); return an output size bound."""
    bound = np.int64(0)
    for i in range(len(ids)):
        flag = flags[i]
        if flag & (_FLAG_REMOTE | _FLAG_ERROR):
            out_msg[i] = SKIPPED
            continue
        key = np.int64(ids[i])
        extended = flag & _FLAG_EXTENDED
        if extended:
            key += _EXTENDED_KEY
        pos = _find(keys, key)
        if pos >= 0:
            m = key_msg[pos]
        elif extended and len(pgn_keys) > 0:
            pos = _find(pgn_keys, _pgn(np.int64(ids[i])))
            m = pgn_msg[pos] if pos >= 0 else UNKNOWN
        else:
            m = UNKNOWN
        out_msg[i] = m
        if m >= 0:
            bound += msg_sig_count[m]
    return bound


@numba.njit(**_JIT)
def decode(
    frame_msg: Any,
    lengths: Any,
    data: Any,
    msg_length: Any,
    msg_sig_start: Any,
    msg_sig_count: Any,
    sig_seg_start: Any,
    sig_seg_count: Any,
    sig_need_bytes: Any,
    sig_length: Any,
    sig_signed: Any,
    sig_float_bits: Any,
    sig_conv: Any,
    sig_scale: Any,
    sig_offset: Any,
    sig_iscale: Any,
    sig_ioffset: Any,
    sig_parent: Any,
    sig_mux_start: Any,
    sig_mux_count: Any,
    sig_choice_start: Any,
    sig_choice_count: Any,
    seg_byte: Any,
    seg_shift: Any,
    seg_bits: Any,
    seg_out: Any,
    mux_values: Any,
    choice_keys: Any,
    max_signals: int,
    out_row: Any,
    out_sig: Any,
    out_raw: Any,
    out_value: Any,
) -> Any:
    """Decode every frame with a known message into the long output arrays.

    Returns (samples written, frames decoded, frames shorter than their message).
    """
    present = np.zeros(max(max_signals, 1), np.bool_)
    mux_number = np.zeros(max(max_signals, 1), np.int64)
    bits32 = np.zeros(1, np.uint32)
    float32 = bits32.view(np.float32)
    bits64 = np.zeros(1, np.uint64)
    float64 = bits64.view(np.float64)
    n = np.int64(0)
    decoded = np.int64(0)
    truncated = np.int64(0)
    for row in range(len(frame_msg)):
        m = frame_msg[row]
        if m < 0:
            continue
        decoded += 1
        length = np.int64(lengths[row])
        if length < msg_length[m]:
            truncated += 1
        first = msg_sig_start[m]
        for k in range(msg_sig_count[m]):
            s = first + k
            present[k] = False
            if sig_need_bytes[s] > length:
                continue  # not fully inside the received bytes
            parent = sig_parent[s]
            if parent >= 0:
                if not present[parent]:
                    continue
                selector = mux_number[parent]
                found = False
                for v in range(sig_mux_start[s], sig_mux_start[s] + sig_mux_count[s]):
                    if mux_values[v] == selector:
                        found = True
                        break
                if not found:
                    continue
            raw = np.uint64(0)
            for g in range(sig_seg_start[s], sig_seg_start[s] + sig_seg_count[s]):
                part = (np.uint64(data[row, seg_byte[g]]) >> np.uint64(seg_shift[g])) & (
                    (np.uint64(1) << np.uint64(seg_bits[g])) - np.uint64(1)
                )
                raw |= part << np.uint64(seg_out[g])
            nbits = sig_length[s]
            if sig_signed[s] and nbits < 64 and (raw >> np.uint64(nbits - 1)) & np.uint64(1):
                raw |= ~((np.uint64(1) << np.uint64(nbits)) - np.uint64(1))
            float_bits = sig_float_bits[s]
            if float_bits == 32:
                bits32[0] = np.uint32(raw & np.uint64(0xFFFFFFFF))
                base = np.float64(float32[0])
            elif float_bits == 64:
                bits64[0] = raw
                base = float64[0]
            elif sig_signed[s]:
                base = np.float64(np.int64(raw))
            else:
                base = np.float64(raw)
            conv = sig_conv[s]
            if conv == 0:
                value = base
            elif conv == 1:
                value = _integer_linear(raw, sig_signed[s], sig_iscale[s], sig_ioffset[s])
            elif conv == 3:
                value = _integer_linear(raw, sig_signed[s], sig_iscale[s], 0) + sig_offset[s]
            else:
                value = base * sig_scale[s] + sig_offset[s]
            present[k] = True
            if sig_choice_count[s] > 0 and _has_choice(
                choice_keys, sig_choice_start[s], sig_choice_count[s], raw
            ):
                mux_number[k] = np.int64(raw) if sig_signed[s] else _as_int(raw)
            elif conv == 0 and float_bits == 0:
                mux_number[k] = np.int64(raw)
            else:
                mux_number[k] = _trunc(value)
            out_row[n] = row
            out_sig[n] = s
            out_raw[n] = np.int64(raw)
            out_value[n] = value
            n += 1
    return n, decoded, truncated


@numba.njit(**_JIT)
def _as_int(raw: np.uint64) -> np.int64:
    return np.int64(raw)


@numba.njit(**_JIT)
def _trunc(value: float) -> np.int64:
    if value != value or value > 9.2e18 or value < -9.2e18:
        return np.int64(-(2**62))  # matches no multiplexer value
    return np.int64(value)


@numba.njit(**_JIT)
def _has_choice(keys: Any, start: int, count: int, raw: np.uint64) -> bool:
    key = np.int64(raw)
    for c in range(start, start + count):  # noqa: SIM110 (numba compiles loops, not any())
        if keys[c] == key:
            return True
    return False


@numba.njit(**_JIT)
def _integer_linear(raw: np.uint64, signed: bool, iscale: np.int64, ioffset: np.int64) -> float:
    """raw * scale + offset with integers, exact like Python's, when it fits in int64.

    Otherwise NaN, which an integer conversion never yields: the caller redoes those rows
    with Python's unbounded integers.
    """
    limit = np.int64(1) << np.int64(62)
    if signed or raw < np.uint64(limit):
        value = np.int64(raw)
    else:
        return np.nan
    magnitude = iscale if iscale >= 0 else -iscale
    if magnitude == 0:
        return np.float64(ioffset)
    absolute = value if value >= 0 else -value
    if absolute <= limit // magnitude and -limit < ioffset < limit:
        return np.float64(value * iscale + ioffset)
    return np.nan
