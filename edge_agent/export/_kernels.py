"""numba kernels that format decoded samples as CSV text, a buffer at a time."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from ._ryu import write_float, write_int

_JIT: dict[str, Any] = {"nogil": True, "cache": True, "boundscheck": False}

# How a signal's value is written.
VALUE_FLOAT = 0  # repr() of the float
VALUE_RAW_INT = 1  # the raw integer (identity conversion of an integer signal)
VALUE_INT = 2  # the value as an integer (integer conversion)
VALUE_RAW_UINT = 3  # the raw integer read as unsigned 64-bit
VALUE_MAPPED_FLOAT = 4  # value * map scale + map offset, as a float
VALUE_SKIP = 5  # not written (not in the signal map)


@numba.njit(**_JIT)
def _write_value(
    kind: int,
    value: float,
    raw: np.int64,
    out: Any,
    at: int,
) -> int:
    if kind in (VALUE_MAPPED_FLOAT, VALUE_FLOAT):
        return write_float(value, out, at)
    if kind == VALUE_RAW_INT:
        return write_int(raw, out, at)
    if kind == VALUE_RAW_UINT and raw < 0:
        high = np.uint64(raw) // np.uint64(10)  # 20-digit unsigned: split the last digit
        at = write_int(np.int64(high), out, at)
        out[at] = np.uint8(48 + np.uint64(raw) % np.uint64(10))
        return at + 1
    if kind == VALUE_RAW_UINT:
        return write_int(raw, out, at)
    return write_int(np.int64(value), out, at)


@intrinsic
def _copy8(typingctx: Any, src: Any, src_at: Any, dst: Any, dst_at: Any) -> Any:
    """Copy 8 bytes from ``src[src_at:]`` to ``dst[dst_at:]``: one unaligned load and store."""
    signature = types.void(src, src_at, dst, dst_at)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        source = context.make_array(sig.args[0])(context, builder, args[0])
        target = context.make_array(sig.args[2])(context, builder, args[2])
        word = ir.IntType(64).as_pointer()
        value = builder.load(builder.bitcast(builder.gep(source.data, [args[1]]), word), align=1)
        builder.store(value, builder.bitcast(builder.gep(target.data, [args[3]]), word), align=1)
        return context.get_dummy_value()

    return signature, codegen


@numba.njit(**_JIT)
def _copy(src: Any, start: int, end: int, out: Any, at: int) -> int:
    """Copy ``src[start:end]`` to ``out[at:]`` eight bytes at a time; return the new end.

    It reads up to 7 bytes past ``end`` and writes up to 7 past the copy: every source keeps
    8 bytes of padding, and every copy is followed by more of the same row.
    """
    i = start
    while i < end:
        _copy8(src, i, out, at)  # type: ignore[call-arg]
        i += 8
        at += 8
    return at - (i - end)


@numba.njit(**_JIT)
def format_long(
    lo: int,
    hi: int,
    frame_msg: Any,
    frame_slot: Any,
    timestamps: Any,
    ids: Any,
    msg_sig_start: Any,
    msg_sig_count: Any,
    msg_frames: Any,
    present: Any,
    values: Any,
    raw: Any,
    names: Any,
    name_start: Any,
    value_kind: Any,
    map_scale: Any,
    map_offset: Any,
    out: Any,
    at: int,
) -> int:
    """Rows ``timestamp,frame_id,message,signal,value`` of frames ``lo`` to ``hi``.

    ``names`` holds ``message,signal,`` for every signal (``name_start`` its offsets).
    The caller makes room; returns the end of what was written.
    """
    head = np.empty(96, np.uint8)
    row = lo
    while row < hi:
        m = frame_msg[row]
        if m < 0:
            row += 1
            continue
        head_len = write_float(timestamps[row], head, 0)
        head[head_len] = 44  # ','
        head_len = write_int(np.int64(ids[row]), head, head_len + 1)
        head[head_len] = 44
        head_len += 1
        slot = frame_slot[row]
        stride = msg_frames[m]
        first = msg_sig_start[m]
        for k in range(msg_sig_count[m]):
            at_slot = slot + k * stride
            if not present[at_slot]:
                continue
            s = first + k
            kind = value_kind[s]
            if kind == VALUE_SKIP:
                continue
            value = values[at_slot]
            if kind == VALUE_MAPPED_FLOAT:
                value = value * map_scale[s] + map_offset[s]
            at = _copy(head, 0, head_len, out, at)
            at = _copy(names, name_start[s], name_start[s + 1], out, at)
            at = _write_value(kind, value, raw[at_slot], out, at)
            out[at] = 10  # '\n'
            at += 1
        row += 1
    return at


@numba.njit(**_JIT)
def format_wide(
    lo: int,
    hi: int,
    frame_msg: Any,
    frame_slot: Any,
    timestamps: Any,
    ids: Any,
    msg_sig_start: Any,
    msg_sig_count: Any,
    msg_frames: Any,
    n_columns: int,
    signal_column: Any,
    present: Any,
    values: Any,
    raw: Any,
    msg_names: Any,
    msg_name_start: Any,
    value_kind: Any,
    map_scale: Any,
    map_offset: Any,
    out: Any,
    at: int,
) -> int:
    """Rows ``timestamp,frame_id,message,<one column per signal>`` of frames ``lo`` to ``hi``.

    ``signal_column`` gives each signal's column (-1: not written).  The caller makes room;
    returns the end of what was written.
    """
    row = lo
    column_signal = np.full(max(n_columns, 1), -1, np.int64)
    column_slot = np.zeros(max(n_columns, 1), np.int64)
    while row < hi:
        m = frame_msg[row]
        if m < 0:
            row += 1
            continue
        at = write_float(timestamps[row], out, at)
        out[at] = 44
        at = write_int(np.int64(ids[row]), out, at + 1)
        out[at] = 44
        at = _copy(msg_names, msg_name_start[m], msg_name_start[m + 1], out, at + 1)
        first = msg_sig_start[m]
        slot = frame_slot[row]
        stride = msg_frames[m]
        for k in range(msg_sig_count[m]):
            column = signal_column[first + k]
            if column >= 0 and present[slot + k * stride]:
                column_signal[column] = first + k
                column_slot[column] = slot + k * stride
        for column in range(n_columns):
            out[at] = 44
            at += 1
            s = column_signal[column]
            if s >= 0:
                kind = value_kind[s]
                value = values[column_slot[column]]
                if kind == VALUE_MAPPED_FLOAT:
                    value = value * map_scale[s] + map_offset[s]
                at = _write_value(kind, value, raw[column_slot[column]], out, at)
                column_signal[column] = -1
        out[at] = 10
        at += 1
        row += 1
    return at


@numba.njit(**{**_JIT, "parallel": True})
def format_long_ranges(
    starts: Any,
    ends: Any,
    region: int,
    used: Any,
    frame_msg: Any,
    frame_slot: Any,
    timestamps: Any,
    ids: Any,
    msg_sig_start: Any,
    msg_sig_count: Any,
    msg_frames: Any,
    present: Any,
    values: Any,
    raw: Any,
    names: Any,
    name_start: Any,
    value_kind: Any,
    map_scale: Any,
    map_offset: Any,
    out: Any,
) -> None:
    """Frame ranges formatted in parallel, range i into ``out[i * region:]``."""
    for i in numba.prange(len(starts)):
        used[i] = (
            format_long(
                starts[i],
                ends[i],
                frame_msg,
                frame_slot,
                timestamps,
                ids,
                msg_sig_start,
                msg_sig_count,
                msg_frames,
                present,
                values,
                raw,
                names,
                name_start,
                value_kind,
                map_scale,
                map_offset,
                out,
                i * region,
            )
            - i * region
        )


@numba.njit(**{**_JIT, "parallel": True})
def format_wide_ranges(
    starts: Any,
    ends: Any,
    region: int,
    used: Any,
    frame_msg: Any,
    frame_slot: Any,
    timestamps: Any,
    ids: Any,
    msg_sig_start: Any,
    msg_sig_count: Any,
    msg_frames: Any,
    n_columns: int,
    signal_column: Any,
    present: Any,
    values: Any,
    raw: Any,
    msg_names: Any,
    msg_name_start: Any,
    value_kind: Any,
    map_scale: Any,
    map_offset: Any,
    out: Any,
) -> None:
    """Frame ranges formatted in parallel, range i into ``out[i * region:]``."""
    for i in numba.prange(len(starts)):
        used[i] = (
            format_wide(
                starts[i],
                ends[i],
                frame_msg,
                frame_slot,
                timestamps,
                ids,
                msg_sig_start,
                msg_sig_count,
                msg_frames,
                n_columns,
                signal_column,
                present,
                values,
                raw,
                msg_names,
                msg_name_start,
                value_kind,
                map_scale,
                map_offset,
                out,
                i * region,
            )
            - i * region
        )
