"""numba kernels of the batch decoder.

Three passes over a batch, each a plain loop over arrays, in chunks or tiles that run on
every core (or, for the agent's micro-batches, on the calling thread):

1. ``lookup``: each frame's message index (a direct table for standard ids, binary search
   over the sorted extended ids, then over J1939 parameter group numbers), or UNKNOWN /
   SKIPPED, and per chunk the frames of each message;
2. ``assign``: a counting sort that lists each message's frames together (their rows,
   lengths and, for simple messages, the payload's 64-bit words side by side) and gives each
   decoded frame its slots: one column per signal of its message, so that a signal's samples
   are contiguous.  Frames of the messages that are not simple are decoded here, frame by
   frame, while their payload is in the cache (converted multiplexers, integer conversions
   beyond float64's 53 bits);
3. ``decode_simple``: every other message (most of a vehicle's traffic), signal by signal
   over a tile of one message's frames: each signal is read from two adjacent words as from
   one 128-bit number, its layout stays in registers and the loop has no branches.

Each slot gets a raw integer, a physical value and whether the signal is present
(multiplexed out or truncated signals are not).  Float signals get their raw bits here and
their values from a vectorised NumPy pass in ``decoder.py`` (a bit-cast is cheap in NumPy,
awkward in a numba loop), except float multiplexers, rare enough to convert in the loop.
The kernels read the flat tables made by ``_tables.compile_database`` and index with
unsigned integers where it matters (numba adds a negative-index check to every signed
index).  Compiled on first use and cached on disk.
"""

from __future__ import annotations

import os
import types
from typing import Any

import numba
import numpy as np

# The parallel kernels run on numba's OpenMP threads, which by default keep spinning for a
# while after each parallel region: a core taken from the threads that read logs and write
# files beside them (13 % of a decode run's CPU time was spent so).  Passive threads sleep
# at once.  Read by the OpenMP runtime when it starts, at the first parallel kernel; a
# value set in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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


@numba.njit(**_INLINE)
def _load_le(data: Any, row: np.uint64, b0: int) -> np.uint64:
    """Eight payload bytes from ``b0`` as a little-endian word (one load once compiled)."""
    word = np.uint64(0)
    for j in range(8):
        word |= np.uint64(data[row, np.uint64(b0 + j)]) << np.uint64(8 * j)
    return word


def _lookup(
    ids: Any,
    flags: Any,
    lengths: Any,
    small_ids: Any,
    keys: Any,
    key_msg: Any,
    pgn_keys: Any,
    pgn_msg: Any,
    msg_length: Any,
    chunk: int,
    out_msg: Any,
    out_counts: Any,
) -> None:
    """Each frame's message index, or UNKNOWN / SKIPPED, in chunks of ``chunk`` frames.

    ``out_counts[c]`` gets chunk c's frames per message, then its unknown frames and its
    truncated frames (shorter than their message's DBC length).
    """
    n = len(ids)
    n_msg = len(msg_length)
    for c in numba.prange((n + chunk - 1) // chunk):
        counts = out_counts[c]
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            row = np.uint64(i)
            flag = flags[row]
            if flag & (_FLAG_REMOTE | _FLAG_ERROR):
                out_msg[row] = SKIPPED
                continue
            frame_id = np.int64(ids[row])
            if not flag & _FLAG_EXTENDED:
                m = small_ids[np.uint64(frame_id)] if frame_id < 2048 else UNKNOWN
            else:
                pos = _find(keys, frame_id + _EXTENDED_KEY)
                if pos >= 0:
                    m = key_msg[pos]
                elif len(pgn_keys) > 0:
                    pos = _find(pgn_keys, _pgn(frame_id))
                    m = pgn_msg[pos] if pos >= 0 else UNKNOWN
                else:
                    m = UNKNOWN
            out_msg[row] = m
            if m >= 0:
                counts[np.uint64(m)] += 1
                if lengths[row] < msg_length[np.uint64(m)]:
                    counts[np.uint64(n_msg + 1)] += 1
            else:
                counts[np.uint64(n_msg)] += 1


def _assign(
    frame_msg: Any,
    lengths: Any,
    data: Any,
    msg_frames: Any,
    msg_slot0: Any,
    msg_row0: Any,
    msg_simple: Any,
    msg_words: Any,
    msg_word0: Any,
    chunk_row0: Any,
    chunk: int,
    msg_sig_start: Any,
    msg_sig_count: Any,
    msg_has_mux: Any,
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
    seg_byte: Any,
    seg_shift: Any,
    seg_bits: Any,
    seg_out: Any,
    mux_values: Any,
    choice_keys: Any,
    max_signals: int,
    out_slot: Any,
    out_rows: Any,
    out_words: Any,
    out_lengths: Any,
    out_raw: Any,
    out_value: Any,
    out_present: Any,
    out_counts: Any,
) -> None:
    """Give each decoded frame its slots and its entry in the message-grouped order; decode
    the frames of messages that are not simple.

    ``chunk_row0[c, m]`` is chunk c's first entry for message m (prefix sums by the caller).
    Each entry e gets the frame's row (``out_rows``) and its length; for a simple message
    also its payload's first ``msg_words[m]`` 64-bit words, little endian (``out_words``,
    from ``msg_word0[m]`` on), so that ``decode_simple`` reads one message's frames from
    contiguous memory.  The other messages' frames are decoded here,
    in frame order, while their payload is in the cache.  ``out_counts[c]`` gets chunk c's
    (samples of those frames, integer products left as NaN for the exact Python pass).
    """
    n = len(frame_msg)
    width = data.shape[1]
    for c in numba.prange((n + chunk - 1) // chunk):
        following = chunk_row0[c].copy()
        mux_number = np.zeros(max(max_signals, 1), np.int64)
        samples = 0
        inexact = 0
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            row = np.uint64(i)
            m = frame_msg[row]
            if m < 0:
                out_slot[row] = -1
                continue
            mu = np.uint64(m)
            e = following[mu]
            following[mu] = e + 1
            slot = msg_slot0[mu] + (e - msg_row0[mu])
            out_slot[row] = slot
            eu = np.uint64(e)
            out_rows[eu] = i
            out_lengths[eu] = lengths[row]
            if msg_simple[mu]:
                n_words = np.int64(msg_words[mu])
                at = msg_word0[mu] + (e - msg_row0[mu]) * n_words
                for w in range(n_words):
                    out_words[np.uint64(at + w)] = _load_word(data, row, 8 * w, width)
                continue
            # not a simple message: decode it here, while its payload is in the cache
            word_le = _load_le(data, row, 0)
            word_be = _swap(word_le)
            length = np.int64(lengths[row])
            count = np.int64(msg_sig_count[mu])
            stride = msg_frames[mu]
            first = np.int64(msg_sig_start[mu])
            has_mux = msg_has_mux[mu]
            for k in range(count):
                s = np.uint64(first + k)
                out = np.uint64(slot + k * stride)
                if sig_need_bytes[s] > length:  # not fully inside the received bytes
                    out_present[out] = False
                    continue
                if has_mux and sig_parent[s] >= 0:
                    parent = np.uint64(sig_parent[s])
                    if not _selected(
                        out_present[np.uint64(slot + sig_parent[s] * stride)],
                        mux_number[parent],
                        mux_values,
                        sig_mux_start[s],
                        sig_mux_count[s],
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
                        w_be = _swap(w_le)
                    if sig_little[s]:
                        shift = sig_lsb[s] - 8 * b0
                        raw = (w_le >> np.uint64(shift)) & sig_mask[s]
                    else:
                        shift = 63 - (sig_lsb[s] - 8 * b0)
                        raw = (w_be >> np.uint64(shift)) & sig_mask[s]
                else:
                    raw = np.uint64(0)
                    for g in range(sig_seg_start[s], sig_seg_start[s] + sig_seg_count[s]):
                        gu = np.uint64(g)
                        part = (
                            np.uint64(data[row, np.uint64(seg_byte[gu])])
                            >> np.uint64(seg_shift[gu])
                        ) & ((np.uint64(1) << np.uint64(seg_bits[gu])) - np.uint64(1))
                        raw |= part << np.uint64(seg_out[gu])
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
                    mux_number[np.uint64(k)] = _mux_number(
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
        out_counts[c, 0] = samples
        out_counts[c, 1] = inexact


@numba.njit(**_INLINE)
def _load_word(data: Any, row: np.uint64, b0: int, width: int) -> np.uint64:
    """Eight payload bytes from ``b0`` as a little-endian word; bytes past the batch's
    width read as zero."""
    if b0 + 8 <= width:
        return _load_le(data, row, b0)
    word = np.uint64(0)
    for j in range(max(width - b0, 0)):
        word |= np.uint64(data[row, np.uint64(b0 + j)]) << np.uint64(8 * j)
    return word


@numba.njit(**_INLINE)
def _swap(word: np.uint64) -> np.uint64:
    """The eight bytes of ``word`` in reverse order (one bswap once compiled)."""
    out = np.uint64(0)
    for j in range(8):
        out |= ((word >> np.uint64(8 * j)) & np.uint64(0xFF)) << np.uint64(56 - 8 * j)
    return out


@numba.njit(**_JIT)
def _tile_message(msg_tile0: Any, tile: int) -> int:
    """The message whose tiles include ``tile`` (``msg_tile0``: prefix sums, one more entry
    than messages)."""
    lo, hi = 0, len(msg_tile0) - 1
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if msg_tile0[mid] <= tile:
            lo = mid
        else:
            hi = mid
    return lo


def _decode_simple(
    msg_tile0: Any,
    msg_tile_frames: Any,
    msg_frames: Any,
    msg_row0: Any,
    msg_slot0: Any,
    msg_simple: Any,
    msg_words: Any,
    msg_word0: Any,
    msg_sig_start: Any,
    msg_sig_count: Any,
    words: Any,
    word_lengths: Any,
    sig_need_bytes: Any,
    sig_little: Any,
    sig_word_lo: Any,
    sig_word_hi: Any,
    sig_shift: Any,
    sig_mask: Any,
    sig_sext: Any,
    sig_scale: Any,
    sig_offset: Any,
    sig_parent: Any,
    sig_mux_start: Any,
    sig_mux_count: Any,
    mux_values: Any,
    out_raw: Any,
    out_value: Any,
    out_present: Any,
    out_tile_samples: Any,
) -> None:
    """Decode the frames of simple messages (every conversion exact in float64 or a float,
    multiplexers selecting by raw value), a tile of one message's frames at a time.

    Within a tile the loop runs signal by signal over the frames' words, so each signal's
    layout and conversion stay in registers and the inner loop has no branches.
    """
    for t in numba.prange(msg_tile0[-1]):
        m = _tile_message(msg_tile0, t)
        mu = np.uint64(m)
        if not msg_simple[mu]:
            continue
        e0 = msg_row0[mu] + (t - msg_tile0[mu]) * msg_tile_frames[mu]
        e1 = min(msg_row0[mu] + msg_frames[mu], e0 + msg_tile_frames[mu])
        count = np.int64(msg_sig_count[mu])
        first = np.int64(msg_sig_start[mu])
        stride = msg_frames[mu]
        n_words = np.int64(msg_words[mu])
        # entry e's slot of signal k: columns + k * stride + e; its word w:
        # words[word_base + e * n_words + w]
        columns = msg_slot0[mu] - msg_row0[mu]
        word_base = msg_word0[mu] - msg_row0[mu] * n_words
        samples = 0
        for k in range(count):
            s = np.uint64(first + k)
            shift = np.uint64(sig_shift[s])
            up = np.uint64(63) - shift
            mask = sig_mask[s]
            sext = np.uint64(sig_sext[s])
            scale = sig_scale[s]
            offset = sig_offset[s]
            need = sig_need_bytes[s]
            little = sig_little[s]
            column = columns + k * stride
            at_lo = word_base + sig_word_lo[s]
            at_hi = word_base + sig_word_hi[s]
            for e in range(e0, e1):
                eu = np.uint64(e)
                lo = words[np.uint64(at_lo + e * n_words)]
                hi = words[np.uint64(at_hi + e * n_words)]
                if not little:
                    lo = _swap(lo)
                    hi = _swap(hi)
                raw = ((lo >> shift) | ((hi << np.uint64(1)) << up)) & mask
                signed_raw = np.int64(raw << sext) >> np.int64(sext)
                out = np.uint64(column + e)
                present = need <= word_lengths[eu]
                out_raw[out] = signed_raw
                out_value[out] = np.float64(signed_raw) * scale + offset
                out_present[out] = present
                samples += present
            parent = sig_parent[s]
            if parent >= 0:
                samples -= _select_column(
                    column,
                    columns + parent * stride,
                    e0,
                    e1,
                    mux_values,
                    sig_mux_start[s],
                    sig_mux_start[s] + sig_mux_count[s],
                    out_raw,
                    out_present,
                )
        out_tile_samples[t] = samples


@numba.njit(**_INLINE)
def _select_column(
    column: int,
    parent: int,
    e0: int,
    e1: int,
    mux_values: Any,
    v0: int,
    v1: int,
    raw: Any,
    present: Any,
) -> int:
    """Clear a multiplexed signal's ``present`` slots, entries e0 to e1, where its branch is
    not selected: its parent multiplexer absent or with none of ``mux_values[v0:v1]``.
    Returns the samples it removed."""
    removed = 0
    for e in range(e0, e1):
        selector = raw[np.uint64(parent + e)]
        selected = False
        for v in range(v0, v1):
            selected |= selector == mux_values[np.uint64(v)]
        at = np.uint64(column + e)
        was = present[at]
        keep = was & selected & present[np.uint64(parent + e)]
        removed += was ^ keep
        present[at] = keep
    return removed


def _renamed(function: Any, name: str) -> Any:
    """A copy of ``function`` under another name, so that numba caches it apart."""
    copy = types.FunctionType(function.__code__, function.__globals__, name)
    copy.__qualname__ = name
    copy.__doc__ = function.__doc__
    return copy


def _both(function: Any) -> tuple[Any, Any]:
    """``function`` compiled twice: over every core, and on the calling thread only."""
    name = function.__name__.lstrip("_")
    return (
        numba.njit(**_PARALLEL)(_renamed(function, name)),
        numba.njit(**_JIT)(_renamed(function, name + "_serial")),
    )


# Each pass twice: over both cores for large batches, and on the calling thread only for
# the agent's small micro-batches, where starting the thread pool would cost more than it
# saves and its memory counts on a small gateway.
lookup, lookup_serial = _both(_lookup)
assign, assign_serial = _both(_assign)
decode_simple, decode_simple_serial = _both(_decode_simple)


@numba.njit(**_INLINE)
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


@numba.njit(**_INLINE)
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


@numba.njit(**_INLINE)
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
    msg_frames: Any,
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
        stride = msg_frames[m]
        first = msg_sig_start[m]
        for k in range(msg_sig_count[m]):
            if present[slot + k * stride]:
                out_row[n] = row
                out_signal[n] = first + k
                out_slot[n] = slot + k * stride
                n += 1
    return n
