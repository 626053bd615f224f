"""numba kernels of the batch decoder.

Three passes over a batch, each a plain loop over arrays:

1. ``lookup``: each frame's message index (binary search over the sorted id keys, then over
   J1939 parameter group numbers), or UNKNOWN / SKIPPED;
2. ``assign``: a counting sort that gives each decoded frame a block of slots, one per signal
   of its message, grouped by message so that a signal's samples form a strided column;
3. ``decode``: the signals of every frame into its slots (raw integer, physical value, and
   whether the signal is present: multiplexed out or truncated signals are not).

Float signals get their raw bits here and their values from a vectorised NumPy pass in
``decoder.py`` (a bit-cast is cheap in NumPy, awkward in a numba loop), except float
multiplexers, rare enough to convert in the loop.  They read the flat tables made by
``_tables.compile_database``.  Compiled on first use and cached on disk.
"""

from __future__ import annotations

import types
from typing import Any

import numba
import numpy as np

_JIT: dict[str, Any] = {"nogil": True, "cache": True, "boundscheck": False}
_PARALLEL: dict[str, Any] = {**_JIT, "parallel": True}
# Small helpers of the hot loop: inlined by numba itself, so that they are inlined also
# when the kernels come from the on-disk cache.
_INLINE: dict[str, Any] = {**_JIT, "inline": "always"}

UNKNOWN = -1  # no message of the database has this id
SKIPPED = -2  # remote or error frame: no data to decode

_FLAG_EXTENDED = 0x01
_FLAG_REMOTE = 0x04
_FLAG_ERROR = 0x08
_EXTENDED_KEY = np.int64(1 << 32)
_NO_MUX = np.int64(-(2**62))  # a multiplexer value that selects nothing


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
    """J1939 parameter group number of a 29-bit id (PDU1: the destination is not part)."""
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
    out_msg: Any,
    out_frames: Any,
) -> int:
    """Each frame's message index, or UNKNOWN / SKIPPED; frames per message into
    ``out_frames``; returns the number of unknown frames."""
    unknown = 0
    small = np.full(2048, -1, np.int32)  # standard ids: a direct table
    for pos in range(len(keys)):
        if keys[pos] < 2048:
            small[keys[pos]] = key_msg[pos]
    for i in range(len(ids)):
        flag = flags[i]
        if flag & (_FLAG_REMOTE | _FLAG_ERROR):
            out_msg[i] = SKIPPED
            continue
        frame_id = np.int64(ids[i])
        if not flag & _FLAG_EXTENDED:
            m = small[frame_id] if frame_id < 2048 else UNKNOWN
        else:
            pos = _find(keys, frame_id + _EXTENDED_KEY)
            if pos >= 0:
                m = key_msg[pos]
            elif len(pgn_keys) > 0:
                pos = _find(pgn_keys, _pgn(frame_id))
                m = pgn_msg[pos] if pos >= 0 else UNKNOWN
            else:
                m = UNKNOWN
        out_msg[i] = m
        if m >= 0:
            out_frames[m] += 1
        else:
            unknown += 1
    return unknown


@numba.njit(**_JIT)
def assign(
    frame_msg: Any,
    msg_sig_count: Any,
    msg_frames: Any,
    msg_slot0: Any,
    msg_row0: Any,
    out_slot: Any,
    out_rows: Any,
) -> None:
    """Give each decoded frame its slots; list frame rows grouped by message.

    ``msg_frames``, ``msg_slot0`` and ``msg_row0`` are per message: frame count, first slot
    and first entry in ``out_rows`` (exclusive prefix sums, computed by the caller).
    """
    seen = np.zeros(len(msg_frames), np.int64)
    for row in range(len(frame_msg)):
        m = frame_msg[row]
        if m < 0:
            out_slot[row] = -1
            continue
        k = seen[m]
        seen[m] = k + 1
        out_slot[row] = msg_slot0[m] + k * msg_sig_count[m]
        out_rows[msg_row0[m] + k] = row


@numba.njit(**_INLINE)
def _load_le(data: Any, row: int, b0: int) -> np.uint64:
    """Eight payload bytes from ``b0`` as a little-endian word (one load once compiled)."""
    word = np.uint64(0)
    for j in range(8):
        word |= np.uint64(data[row, b0 + j]) << np.uint64(8 * j)
    return word


@numba.njit(**_INLINE)
def _load_be(data: Any, row: int, b0: int) -> np.uint64:
    """Eight payload bytes from ``b0`` as a big-endian word (a load and a byte swap)."""
    word = np.uint64(0)
    for j in range(8):
        word |= np.uint64(data[row, b0 + j]) << np.uint64(56 - 8 * j)
    return word


def _decode(
    frame_msg: Any,
    frame_slot: Any,
    lengths: Any,
    data: Any,
    msg_sig_start: Any,
    msg_sig_count: Any,
    msg_has_mux: Any,
    msg_simple: Any,
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
    sig_is_mux: Any,
    sig_lo: Any,
    sig_window: Any,
    sig_little: Any,
    sig_lsb: Any,
    sig_mask: Any,
    sig_shift0: Any,
    sig_sext: Any,
    seg_byte: Any,
    seg_shift: Any,
    seg_bits: Any,
    seg_out: Any,
    mux_values: Any,
    choice_keys: Any,
    max_signals: int,
    chunk: int,
    msg_length: Any,
    out_raw: Any,
    out_value: Any,
    out_present: Any,
    out_counts: Any,
) -> None:
    """Decode every frame with a known message into its slots, in parallel chunks.

    ``out_counts[c]`` gets chunk c's (truncated frames, samples, integer products left
    as NaN for the exact Python pass).
    """
    n = len(frame_msg)
    width = data.shape[1]
    for c in numba.prange((n + chunk - 1) // chunk):
        mux_number = np.zeros(max(max_signals, 1), np.int64)
        truncated = 0
        samples = 0
        inexact = 0
        for row in range(c * chunk, min(n, (c + 1) * chunk)):
            m = frame_msg[row]
            if m < 0:
                continue
            length = np.int64(lengths[row])
            if length < msg_length[m]:
                truncated += 1
            first = msg_sig_start[m]
            slot = frame_slot[row]
            has_mux = msg_has_mux[m]
            word_le = _load_le(data, row, 0)
            word_be = _load_be(data, row, 0)
            if msg_simple[m]:
                # The common case: classic-CAN layouts, no multiplexing, float64 arithmetic
                # exact.  Branch-free but for the truncation check.
                for k in range(msg_sig_count[m]):
                    s = first + k
                    out = slot + k
                    if sig_need_bytes[s] > length:
                        out_present[out] = False
                        continue
                    word = word_le if sig_little[s] else word_be
                    raw = (word >> np.uint64(sig_shift0[s])) & sig_mask[s]
                    sext = np.uint64(sig_sext[s])
                    signed_raw = np.int64(raw << sext) >> np.int64(sext)
                    out_raw[out] = signed_raw
                    out_value[out] = np.float64(signed_raw) * sig_scale[s] + sig_offset[s]
                    out_present[out] = True
                    samples += 1
                continue
            for k in range(msg_sig_count[m]):
                s = first + k
                out = slot + k
                if sig_need_bytes[s] > length:  # not fully inside the received bytes
                    out_present[out] = False
                    continue
                if (
                    has_mux
                    and sig_parent[s] >= 0
                    and not _selected(
                        out_present[slot + sig_parent[s]],
                        mux_number[sig_parent[s]],
                        mux_values,
                        sig_mux_start[s],
                        sig_mux_count[s],
                    )
                ):
                    out_present[out] = False
                    continue
                if sig_window[s]:
                    lo = sig_lo[s]
                    if sig_need_bytes[s] <= 8:
                        b0 = 0
                        w_le, w_be = word_le, word_be
                    else:
                        b0 = lo if lo + 8 <= width else width - 8
                        w_le = _load_le(data, row, b0)
                        w_be = _load_be(data, row, b0)
                    if sig_little[s]:
                        shift = sig_lsb[s] - 8 * b0
                        raw = (w_le >> np.uint64(shift)) & sig_mask[s]
                    else:
                        shift = 63 - (sig_lsb[s] - 8 * b0)
                        raw = (w_be >> np.uint64(shift)) & sig_mask[s]
                else:
                    raw = np.uint64(0)
                    for g in range(sig_seg_start[s], sig_seg_start[s] + sig_seg_count[s]):
                        part = (np.uint64(data[row, seg_byte[g]]) >> np.uint64(seg_shift[g])) & (
                            (np.uint64(1) << np.uint64(seg_bits[g])) - np.uint64(1)
                        )
                        raw |= part << np.uint64(seg_out[g])
                signed = sig_signed[s]
                if signed and (raw >> np.uint64(sig_length[s] - 1)) & np.uint64(1):
                    raw |= ~sig_mask[s]
                conv = sig_conv[s]
                if conv == 2:
                    base = np.float64(np.int64(raw)) if signed else np.float64(raw)
                    value = base * sig_scale[s] + sig_offset[s]
                elif conv == 0:
                    value = np.float64(np.int64(raw)) if signed else np.float64(raw)
                elif conv == 1:
                    value = _integer_linear(raw, signed, sig_iscale[s], sig_ioffset[s])
                    inexact += value != value
                elif conv == 3:
                    value = _integer_linear(raw, signed, sig_iscale[s], 0) + sig_offset[s]
                    inexact += value != value
                else:
                    value = 0.0  # float signals: converted by the NumPy pass
                out_raw[out] = np.int64(raw)
                out_value[out] = value
                out_present[out] = True
                samples += 1
                if has_mux and sig_is_mux[s]:
                    mux_number[k] = _mux_number(
                        raw,
                        signed,
                        sig_float_bits[s],
                        conv,
                        value,
                        sig_scale[s],
                        sig_offset[s],
                        choice_keys,
                        sig_choice_start[s],
                        sig_choice_count[s],
                    )
        out_counts[c, 0] = truncated
        out_counts[c, 1] = samples
        out_counts[c, 2] = inexact


def _renamed(function: Any, name: str) -> Any:
    """A copy of ``function`` under another name, so that numba caches it apart."""
    copy = types.FunctionType(function.__code__, function.__globals__, name)
    copy.__qualname__ = name
    copy.__doc__ = function.__doc__
    return copy


# The same loop twice: over both cores for large batches (``decode``), and on the calling
# thread only (``decode_serial``) for the agent's small micro-batches, where starting the
# thread pool would cost more than it saves and its memory counts on a small gateway.
decode = numba.njit(**_PARALLEL)(_renamed(_decode, "decode"))
decode_serial = numba.njit(**_JIT)(_renamed(_decode, "decode_serial"))


@numba.njit(**_JIT)
def _selected(
    parent_present: bool, selector: np.int64, mux_values: Any, start: int, count: int
) -> bool:
    """Whether a multiplexed signal's branch is the one its multiplexer selects."""
    if not parent_present:
        return False
    for v in range(start, start + count):  # noqa: SIM110 (numba compiles loops, not any())
        if mux_values[v] == selector:
            return True
    return False


@numba.njit(**_JIT)
def _mux_number(
    raw: np.uint64,
    signed: bool,
    float_bits: int,
    conv: int,
    value: float,
    scale: float,
    offset: float,
    choice_keys: Any,
    choice_start: int,
    choice_count: int,
) -> np.int64:
    """The multiplexer value cantools selects with: the raw value when it names a choice,
    else the physical value truncated to an integer."""
    key = np.int64(raw)
    for c in range(choice_start, choice_start + choice_count):
        if choice_keys[c] == key:
            return key
    if float_bits == 32:
        value = np.float64(np.array([np.uint32(raw & np.uint64(0xFFFFFFFF))]).view(np.float32)[0])
        if conv != 0:
            value = value * scale + offset
    elif float_bits == 64:
        value = np.array([raw]).view(np.float64)[0]
        if conv != 0:
            value = value * scale + offset
    elif conv == 0:
        return key
    if value != value or value > 9.2e18 or value < -9.2e18:
        return _NO_MUX
    return np.int64(value)


@numba.njit(**_JIT)
def _integer_linear(raw: np.uint64, signed: bool, iscale: np.int64, ioffset: np.int64) -> float:
    """raw * scale + offset with integers, exact like Python's, when it fits in int64.

    Otherwise NaN, which an integer conversion never yields: the caller redoes those slots
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


@numba.njit(**_JIT)
def long_form(
    frame_msg: Any,
    frame_slot: Any,
    msg_sig_start: Any,
    msg_sig_count: Any,
    present: Any,
    out_row: Any,
    out_signal: Any,
    out_slot: Any,
) -> int:
    """The present samples in frame order: (frame row, signal index, slot) per sample."""
    n = 0
    for row in range(len(frame_msg)):
        m = frame_msg[row]
        if m < 0:
            continue
        slot = frame_slot[row]
        first = msg_sig_start[m]
        for k in range(msg_sig_count[m]):
            if present[slot + k]:
                out_row[n] = row
                out_signal[n] = first + k
                out_slot[n] = slot + k
                n += 1
    return n
