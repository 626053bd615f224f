"""Hypothesis-generated DBC layouts and payloads decode exactly as cantools decodes them."""

from __future__ import annotations

from typing import Any

import numpy as np
from cantools.database.can import Database, Message, Signal
from cantools.database.conversion import BaseConversion
from cantools.database.errors import Error as CantoolsError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.decoder import BatchDecoder
from edge_agent.decoder.layout import bit_positions
from edge_agent.frames import FrameBatch, FrameFlag

from .oracle import compare, steer_multiplexers

SCALES = st.one_of(
    st.sampled_from([1, 1.0, 2, 3, -1, 0.5, 0.1, 0.01, 1e-7, 0.05, 1 / 3, -0.25, 1000, 0.3]),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False).filter(
        lambda x: x != 0
    ),
)
OFFSETS = st.one_of(
    st.sampled_from([0, 0.0, -40, 40, 0.5, -273.15, 1e3, -1, 2**40]),
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False),
)


@st.composite
def messages(draw: st.DrawFn, protocol: str | None = None) -> Message:
    length = draw(st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 12, 16, 20, 24, 32, 48, 64]))
    occupied: set[tuple[int, int]] = set()
    signals: list[Signal] = []
    multiplexers: list[Signal] = []
    want_mux = draw(st.integers(0, 2)) == 0
    for index in range(draw(st.integers(1, 10))):
        is_float = draw(st.integers(0, 9)) == 0 and not (want_mux and index == 0)
        bits = (
            draw(st.sampled_from([32, 64]))
            if is_float
            else draw(st.one_of(st.integers(1, 16), st.integers(17, 64)))
        )
        if want_mux and index == 0:
            bits = draw(st.integers(1, 8))
        little = draw(st.booleans())
        start = draw(st.integers(0, length * 8 - 1))
        if want_mux and index == 0:  # the multiplexer where it always fits
            bits, little, start = min(bits, length * 8), True, 0
        positions = bit_positions(start, bits, little)
        if any(byte >= length for byte, _ in positions) or occupied & set(positions):
            continue
        is_mux = (want_mux and index == 0) or (
            not is_float and bits <= 4 and len(multiplexers) == 1 and draw(st.integers(0, 5)) == 0
        )
        parent = (
            draw(st.sampled_from(multiplexers))
            if multiplexers and not (is_mux and not signals) and draw(st.integers(0, 3)) > 0
            else None
        )
        if is_mux:
            scale: float = 1
            offset: float = 0
        else:
            scale, offset = draw(SCALES), draw(OFFSETS)
        mux_ids = None
        if parent is not None:
            mux_ids = sorted(
                draw(st.sets(st.integers(0, 2**parent.length - 1), min_size=1, max_size=4))
            )
        occupied |= set(positions)
        signal = Signal(
            name=f"S{index}",
            start=start,
            length=bits,
            byte_order="little_endian" if little else "big_endian",
            is_signed=False if is_mux else draw(st.booleans()),
            conversion=BaseConversion.factory(scale=scale, offset=offset, is_float=is_float),
            is_multiplexer=is_mux,
            multiplexer_ids=mux_ids,
            multiplexer_signal=parent.name if parent is not None else None,
        )
        signals.append(signal)
        if is_mux:
            multiplexers.append(signal)
    extended = protocol == "j1939" or draw(st.booleans())
    frame_id = draw(st.integers(0, 2**29 - 1 if extended else 2**11 - 1))
    try:
        return Message(
            frame_id=frame_id,
            name="M",
            length=length,
            signals=signals,
            is_extended_frame=extended,
            is_fd=length > 8,
            strict=True,
            protocol=protocol,
        )
    except CantoolsError:
        return draw(messages(protocol))


def _payloads(message: Message, seed: int, count: int = 16) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for variant in range(count):
        length = message.length
        if variant % 5 == 3:
            length = int(rng.integers(0, length + 1))
        elif variant % 5 == 4:
            length = int(rng.integers(length, 65))
        payload = bytearray(rng.integers(0, 256, length, dtype=np.uint8).tobytes())
        if variant % 7 == 0:
            payload = bytearray(b"\xff" * length)
        elif variant % 7 == 1:
            payload = bytearray(length)
        steer_multiplexers(message, payload, rng)
        out.append(bytes(payload))
    return out


def _flags(message: Message) -> int:
    return (FrameFlag.EXTENDED if message.is_extended_frame else 0) | (
        FrameFlag.FD if message.is_fd else 0
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=messages(), seed=st.integers(0, 2**32 - 1))
def test_generated_layouts_decode_like_cantools(message: Message, seed: int) -> None:
    db = Database(messages=[message], strict=False)
    frames = [(message, message.frame_id, _flags(message), p) for p in _payloads(message, seed)]
    compare(db, frames)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    message=messages("j1939"),
    seed=st.integers(0, 2**32 - 1),
    priority=st.integers(0, 7),
    source=st.integers(0, 255),
    destination=st.integers(0, 255),
)
def test_j1939_matches_by_parameter_group_number(
    message: Message, seed: int, priority: int, source: int, destination: int
) -> None:
    """Priority and source address never matter; nor does the destination of a PDU1 PGN."""
    frame_id = (message.frame_id & ~(0x7 << 26) & ~0xFF) | (priority << 26) | source
    if (frame_id >> 16) & 0xFF < 240:
        frame_id = (frame_id & ~0xFF00) | (destination << 8)
    db = Database(messages=[message], strict=False)
    frames = [(message, frame_id, _flags(message), p) for p in _payloads(message, seed, 6)]
    compare(db, frames)


def test_j1939_other_pgn_is_unknown() -> None:
    message = Message(
        frame_id=0x18FEF100,
        name="CCVS",
        length=8,
        is_extended_frame=True,
        protocol="j1939",
        signals=[
            Signal("Speed", 8, 16, conversion=BaseConversion.factory(scale=1 / 256, offset=0))
        ],
    )
    decoder = BatchDecoder(Database(messages=[message]))
    batch = FrameBatch.from_rows(
        [
            (0.0, 0x0CFEF117, FrameFlag.EXTENDED, bytes(8)),  # same PGN, other priority and SA
            (0.1, 0x18FEF200, FrameFlag.EXTENDED, bytes(8)),  # another PGN
            (0.2, 0x18FEF100, 0, bytes(8)),  # a standard frame never matches an extended id
        ]
    )
    result = decoder.decode(batch)
    assert list(result.frame_messages) == [0, -1, -1]
    assert result.stats.unknown == 2


def _db(*messages: Any) -> Database:
    return Database(messages=list(messages))
