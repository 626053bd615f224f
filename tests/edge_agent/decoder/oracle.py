"""cantools as the reference decoder, and comparison helpers for the differential tests."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
from cantools.database.errors import DecodeError

from edge_agent.decoder import BatchDecoder, DecodedBatch
from edge_agent.decoder.layout import bit_positions
from edge_agent.frames import FrameBatch, FrameFlag


def same_float(a: float, b: float) -> bool:
    """Bit-identical, or both NaN."""
    if math.isnan(a) and math.isnan(b):
        return True
    return struct.pack("<d", a) == struct.pack("<d", b)


def cantools_decode(message: Any, payload: bytes) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(physical, raw) values as cantools decodes them, or None where cantools refuses."""
    try:
        values = message.decode(payload, decode_choices=False, allow_truncated=True)
        raw = message.decode(payload, decode_choices=False, scaling=False, allow_truncated=True)
    except DecodeError:
        return None
    return values, raw


def ours_by_row(decoder: BatchDecoder, result: DecodedBatch) -> list[dict[str, tuple[int, float]]]:
    per_row: list[dict[str, tuple[int, float]]] = [{} for _ in result.frame_messages]
    samples = result.long_form()
    for i in range(len(samples)):
        info = decoder.signals[int(samples.signals[i])]
        per_row[int(samples.rows[i])][info.name] = (int(samples.raw[i]), float(samples.values[i]))
    # The per-signal columns hold the same samples.
    for name, column in result.columns().items():
        for row, raw, value in zip(column.rows, column.raw, column.values, strict=True):
            assert per_row[int(row)][name.split(".", 1)[1]] == (int(raw), float(value)) or (
                math.isnan(value) and math.isnan(per_row[int(row)][name.split(".", 1)[1]][1])
            )
    return per_row


def set_raw(payload: bytearray, signal: Any, raw: int) -> None:
    """Write ``raw`` into ``signal``'s bits (to steer multiplexers to valid branches)."""
    little = signal.byte_order == "little_endian"
    for bit, (byte, pos) in enumerate(bit_positions(signal.start, signal.length, little)):
        if byte >= len(payload):
            continue
        if (raw >> bit) & 1:
            payload[byte] |= 1 << pos
        else:
            payload[byte] &= ~(1 << pos) & 0xFF


def steer_multiplexers(message: Any, payload: bytearray, rng: np.random.Generator) -> None:
    """Mostly pick valid multiplexer values, so that muxed branches get exercised."""
    for signal in message.signals:
        if not signal.is_multiplexer or rng.random() < 0.15:
            continue
        ids = sorted(
            {
                i
                for s in message.signals
                if s.multiplexer_signal == signal.name
                for i in (s.multiplexer_ids or [])
            }
        )
        if ids and signal.conversion.scale == 1 and signal.conversion.offset == 0:
            set_raw(payload, signal, int(rng.choice(ids)))


def compare(db: Any, frames: list[tuple[Any, int, int, bytes]]) -> tuple[int, int]:
    """Decode (message, frame id, flags, payload) frames both ways; assert equality.

    Returns how many signal values were compared and how many frames cantools refused.
    """
    decoder = BatchDecoder(db)
    batch = FrameBatch.from_rows(
        [(float(i), fid, flags, data) for i, (_, fid, flags, data) in enumerate(frames)]
    )
    result = decoder.decode(batch)
    ours = ours_by_row(decoder, result)
    compared = refused = 0
    for row, (message, fid, flags, data) in enumerate(frames):
        expected = cantools_decode(message, data)
        got = ours[row]
        assert result.frame_messages[row] >= 0, f"{message.name} (0x{fid:x}) not matched"
        if expected is None:
            refused += 1  # e.g. a multiplexer value without a branch
            continue
        values, raw = expected
        where = f"{message.name} 0x{fid:x} flags={flags} data={data.hex()}"
        assert set(got) == set(values), f"{where}: {sorted(got)} != {sorted(values)}"
        for name, value in values.items():
            got_raw, got_value = got[name]
            assert same_float(got_value, float(value)), (
                f"{where} {name}: {got_value!r} != cantools {value!r}"
            )
            signal = message.get_signal_by_name(name)
            if not signal.is_float:
                assert got_raw == int(raw[name]) or (
                    not signal.is_signed and got_raw + (1 << 64) == int(raw[name])
                ), f"{where} {name}: raw {got_raw} != cantools {raw[name]}"
            compared += 1
    return compared, refused


def flags_for(message: Any) -> int:
    return (FrameFlag.EXTENDED if message.is_extended_frame else 0) | (
        FrameFlag.FD if message.is_fd else 0
    )
