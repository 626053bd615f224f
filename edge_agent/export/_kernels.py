"""numba kernels that format decoded samples as CSV text, a buffer at a time.

A batch is formatted in two passes.  ``format_values`` walks each signal's column (the
decoder keeps a message's samples signal by signal) and leaves each sample's value text in
a slot of ``TEXT_ENTRY`` bytes; the text of a raw value already seen is copied from a
per-signal table instead of being formatted again.  ``format_long`` / ``format_wide`` then
write the rows in frame order, copying those texts.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from ._ryu import split_micros, write_decimal, write_float, write_fraction, write_int, write_uint

_JIT: dict[str, Any] = {"nogil": True, "cache": True, "boundscheck": False}

# How a signal's value is written.
VALUE_FLOAT = 0  # repr() of the float
VALUE_RAW_INT = 1  # the raw integer (identity conversion of an integer signal)
VALUE_INT = 2  # the value as an integer (integer conversion)
VALUE_RAW_UINT = 3  # the raw integer read as unsigned 64-bit
VALUE_MAPPED_FLOAT = 4  # value * map scale + map offset, as a float
VALUE_SKIP = 5  # not written (not in the signal map)

TEXT_ENTRY = 32  # bytes of one sample's value text: up to 24 characters; its length last
TABLE_ENTRY = 16  # bytes of one remembered text of a raw value: up to 15 characters, length
TEXT_ABSENT = 0  # length of a sample the frame does not carry (or that is not written)
_TABLE_LONG = 255  # the raw value's text is longer than 15 characters: formatted each time

_TEXT_LENGTH = np.uint64(TEXT_ENTRY - 1)
_TABLE_LENGTH = np.uint64(TABLE_ENTRY - 1)
_AHEAD = np.uint64(4 * TEXT_ENTRY)  # bytes of texts fetched ahead along a column
_TABLE_AHEAD = 8  # samples whose table entries are fetched ahead along a column


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


@intrinsic
def _prefetch(typingctx: Any, array: Any, index: Any) -> Any:
    """Ask the CPU to bring ``array[index]`` into its caches (a hint: never faults)."""
    signature = types.void(array, index)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        data = context.make_array(sig.args[0])(context, builder, args[0])
        pointer = builder.bitcast(builder.gep(data.data, [args[1]]), ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        function = builder.module.declare_intrinsic(
            "llvm.prefetch", fnty=ir.FunctionType(ir.VoidType(), [pointer.type, i32, i32, i32])
        )
        # read, keep in all cache levels, data cache
        builder.call(function, [pointer, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return signature, codegen


@numba.njit(**_JIT)
def _value_text(
    s: int,
    kind: int,
    value: float,
    raw: np.int64,
    map_scale: Any,
    map_offset: Any,
    out: Any,
    at: int,
) -> int:
    """Write the value of a sample of signal ``s``; return the new end."""
    if kind == VALUE_MAPPED_FLOAT:
        value = value * map_scale[s] + map_offset[s]
    return _write_value(kind, value, raw, out, at)


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
def format_values(
    first_signal: int,
    end_signal: int,
    sig_message: Any,
    msg_sig_start: Any,
    message_slot0: Any,
    message_frames: Any,
    present: Any,
    values: Any,
    raw: Any,
    value_kind: Any,
    map_scale: Any,
    map_offset: Any,
    decimal_scale: Any,
    decimal_offset: Any,
    decimal_places: Any,
    table_base: Any,
    table_mask: Any,
    table: Any,
    texts: Any,
) -> None:
    """The value text of every slot of signals ``first_signal`` to ``end_signal`` (their
    columns) into ``texts[slot * TEXT_ENTRY:]``.

    A float-valued signal whose scale and offset are decimals has them as integers
    ``decimal_scale[s]`` (0: none) and ``decimal_offset[s]`` over ``10**decimal_places[s]``.
    A signal of at most 16 raw bits whose text depends on its raw value alone has a table
    of ``TABLE_ENTRY``-byte entries from entry ``table_base[s]`` (-1: none); entry
    ``raw & table_mask[s]`` holds the text once that raw value has been seen (callers
    running this in parallel give each signal to one call: a table has one writer).
    """
    for s in range(first_signal, end_signal):
        m = sig_message[s]
        frames = message_frames[m]
        start = message_slot0[m] + (s - msg_sig_start[m]) * frames
        kind = value_kind[s]
        base = table_base[s]
        scratch = np.empty(64, np.uint8)
        end = start + frames
        for slot in range(start, end):
            if base >= 0 and slot + _TABLE_AHEAD < end:  # raw values far apart in the table
                ahead = np.uint64(
                    base + np.int64(np.uint64(raw[slot + _TABLE_AHEAD]) & table_mask[s])
                )
                _prefetch(table, ahead * np.uint64(TABLE_ENTRY))  # type: ignore[call-arg]
            at = np.uint64(slot) * np.uint64(TEXT_ENTRY)
            if kind == VALUE_SKIP or not present[slot]:
                texts[at + _TEXT_LENGTH] = TEXT_ABSENT
                continue
            if base >= 0:
                entry = np.uint64(base + np.int64(np.uint64(raw[slot]) & table_mask[s]))
                entry *= np.uint64(TABLE_ENTRY)
                n = table[entry + _TABLE_LENGTH]
                if n == TEXT_ABSENT:  # not seen yet: remember its text (or that it is long)
                    n = _value_text(
                        s, kind, values[slot], raw[slot], map_scale, map_offset, scratch, 0
                    )
                    if n >= TABLE_ENTRY:
                        n = _TABLE_LONG
                    _copy8(scratch, 0, table, entry)  # type: ignore[call-arg]
                    _copy8(scratch, 8, table, entry + np.uint64(8))
                    table[entry + _TABLE_LENGTH] = n
                if n != _TABLE_LONG:
                    _copy8(table, entry, texts, at)  # type: ignore[call-arg]
                    _copy8(table, entry + np.uint64(8), texts, at + np.uint64(8))
                    texts[at + _TEXT_LENGTH] = n
                    continue
            n = -1
            if decimal_scale[s] != 0:
                n = write_decimal(
                    raw[slot] * decimal_scale[s] + decimal_offset[s],
                    decimal_places[s],
                    values[slot],
                    scratch,
                    0,
                )
            if n < 0:
                n = _value_text(s, kind, values[slot], raw[slot], map_scale, map_offset, scratch, 0)
            _copy8(scratch, 0, texts, at)  # type: ignore[call-arg]
            _copy8(scratch, 8, texts, at + np.uint64(8))
            _copy8(scratch, 16, texts, at + np.uint64(16))
            texts[at + _TEXT_LENGTH] = n


@numba.njit(**_JIT)
def _stamp(value: float, stamp: Any, whole: Any) -> int:
    """Write ``repr(value)`` of a timestamp at ``stamp[0:]``; return its length.

    ``whole`` remembers the whole seconds ``stamp`` starts with (``whole[0]``, -1 for
    none) and their length with the point (``whole[1]``): frames of one second share them.
    """
    seconds, micros = split_micros(value)
    if seconds < 0:
        whole[0] = -1
        return write_float(value, stamp, 0)
    if seconds != whole[0]:
        whole[0] = seconds
        whole[1] = write_uint(np.uint64(seconds), stamp, 0) + 1
        stamp[whole[1] - 1] = 46  # '.'
    return write_fraction(micros, 6, stamp, whole[1])


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
    texts: Any,
    names: Any,
    name_start: Any,
    out: Any,
    at: int,
) -> int:
    """Rows ``timestamp,frame_id,message,signal,value`` of frames ``lo`` to ``hi``.

    ``texts`` is what ``format_values`` made of the batch; ``names`` holds
    ``message,signal,`` for every signal (``name_start`` its offsets).  The caller makes
    room; returns the end of what was written.
    """
    head = np.empty(96, np.uint8)
    whole_seconds, whole_len = -1, 0  # what ``head`` starts with (as ``_stamp`` keeps it)
    row = lo
    while row < hi:
        m = frame_msg[row]
        if m < 0:
            row += 1
            continue
        seconds, micros = split_micros(timestamps[row])
        if seconds < 0:
            whole_seconds = -1
            head_len = write_float(timestamps[row], head, 0)
        else:
            if seconds != whole_seconds:
                whole_seconds = seconds
                whole_len = write_uint(np.uint64(seconds), head, 0) + 1
                head[whole_len - 1] = 46  # '.'
            head_len = write_fraction(micros, 6, head, whole_len)
        head[head_len] = 44  # ','
        head_len = write_int(np.int64(ids[row]), head, head_len + 1)
        head[head_len] = 44
        head_len += 1
        slot = frame_slot[row]
        stride = msg_frames[m]
        first = msg_sig_start[m]
        for k in range(msg_sig_count[m]):
            at_slot = slot + k * stride
            entry = np.uint64(at_slot) * np.uint64(TEXT_ENTRY)
            # A message's frames are far apart in the log: fetch down its columns ahead.
            _prefetch(texts, entry + _AHEAD)  # type: ignore[call-arg]
            n = texts[entry + _TEXT_LENGTH]
            if n == TEXT_ABSENT:
                continue
            s = first + k
            at = _copy(head, 0, head_len, out, at)
            at = _copy(names, name_start[s], name_start[s + 1], out, at)
            _copy8(texts, entry, out, at)
            _copy8(texts, entry + np.uint64(8), out, at + 8)
            _copy8(texts, entry + np.uint64(16), out, at + 16)
            at += np.int64(n)
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
    texts: Any,
    msg_names: Any,
    msg_name_start: Any,
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
    stamp = np.empty(64, np.uint8)
    whole = np.array([-1, 0], np.int64)
    while row < hi:
        m = frame_msg[row]
        if m < 0:
            row += 1
            continue
        at = _copy(stamp, 0, _stamp(timestamps[row], stamp, whole), out, at)
        out[at] = 44
        at = write_int(np.int64(ids[row]), out, at + 1)
        out[at] = 44
        at = _copy(msg_names, msg_name_start[m], msg_name_start[m + 1], out, at + 1)
        first = msg_sig_start[m]
        slot = frame_slot[row]
        stride = msg_frames[m]
        for k in range(msg_sig_count[m]):
            at_slot = slot + k * stride
            entry = np.uint64(at_slot) * np.uint64(TEXT_ENTRY)
            _prefetch(texts, entry + _AHEAD)  # type: ignore[call-arg]
            column = signal_column[first + k]
            if column >= 0 and texts[entry + _TEXT_LENGTH] != TEXT_ABSENT:
                column_signal[column] = first + k
                column_slot[column] = at_slot
        for column in range(n_columns):
            out[at] = 44
            at += 1
            s = column_signal[column]
            if s >= 0:
                entry = np.uint64(column_slot[column]) * np.uint64(TEXT_ENTRY)
                _copy8(texts, entry, out, at)  # type: ignore[call-arg]
                _copy8(texts, entry + np.uint64(8), out, at + 8)
                _copy8(texts, entry + np.uint64(16), out, at + 16)
                at += np.int64(texts[entry + _TEXT_LENGTH])
                column_signal[column] = -1
        out[at] = 10
        at += 1
        row += 1
    return at
