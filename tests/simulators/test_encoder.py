"""The vectorised encoder against cantools' Message.encode, and round trips through the decoder."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbc import demo_catalogue
from edge_agent.frames import FrameBatch
from simulators import FrameEncoder

from ._helpers import decoder

DB = demo_catalogue().database
ENCODER = FrameEncoder(DB)


def _branch_signals(message: Any, mux: int | None) -> list[Any]:
    out = []
    for s in message.signals:
        if s.multiplexer_ids is None or (mux is not None and mux in s.multiplexer_ids):
            out.append(s)
    return out


@st.composite
def _message_values(draw: st.DrawFn) -> tuple[Any, dict[str, float]]:
    message = draw(st.sampled_from(DB.messages))
    mux = None
    values: dict[str, float] = {}
    if message.is_multiplexed():
        mux = draw(st.integers(0, 32))
        values["DtcSlot"] = mux
    for s in _branch_signals(message, mux):
        if s.name in values:
            continue
        low, high = float(s.minimum), float(s.maximum)
        if s.is_float:
            values[s.name] = draw(st.floats(low, high, width=32))
        elif s.scale == 1 and s.offset == int(s.offset):
            values[s.name] = draw(st.integers(int(low), int(high)))
        else:
            values[s.name] = draw(st.floats(low, high, allow_nan=False))
    return message, values


@settings(max_examples=300, deadline=None)
@given(_message_values())
def test_encode_matches_cantools(case: tuple[Any, dict[str, float]]) -> None:
    message, values = case
    expected = message.encode(values, strict=True, padding=False)
    got = ENCODER.message(message.name).encode(values, 1)
    assert bytes(got[0]) == bytes(expected), (message.name, values)


def test_out_of_range_values_are_clamped_like_the_range_ends() -> None:
    codec = ENCODER.message("ESP_VehicleSpeed")
    message = DB.get_message_by_name("ESP_VehicleSpeed")
    got = codec.encode({"VehicleSpeed": np.array([-5.0, 1e9, np.nan])}, 3)
    low = message.encode(
        {
            "VehicleSpeed": 0,
            "VehicleSpeedValid": 0,
            "Standstill": 0,
            "SpeedCounter": 0,
            "SpeedChecksum": 0,
        }
    )
    high = message.encode(
        {
            "VehicleSpeed": 655.35,
            "VehicleSpeedValid": 0,
            "Standstill": 0,
            "SpeedCounter": 0,
            "SpeedChecksum": 0,
        }
    )
    assert [bytes(r) for r in got] == [low, high, low]


@pytest.mark.parametrize("name", [m.name for m in DB.messages])
def test_decoded_values_are_within_one_quantisation_step(name: str) -> None:
    rng = np.random.default_rng(5)
    message = DB.get_message_by_name(name)
    codec = ENCODER.message(name)
    n = 200
    mux = rng.integers(0, 3, n) if message.is_multiplexed() else None
    values: dict[str, Any] = {}
    for s in message.signals:
        values[s.name] = rng.uniform(s.minimum or 0.0, s.maximum or 0.0, n)
    if mux is not None:
        values["DtcSlot"] = mux
    data = codec.encode(values, n)
    flags = (1 if message.is_extended_frame else 0) | (0x12 if message.is_fd else 0)
    frames = FrameBatch.from_rows(
        [(i * 0.01, message.frame_id, flags, bytes(row)) for i, row in enumerate(data)]
    )
    decoded = decoder().decode(frames)
    for s in message.signals:
        column = decoded.signal(f"{name}.{s.name}")
        expect = np.asarray(values[s.name])[column.rows]
        step = 1e-6 * max(1.0, abs(s.maximum or 0.0)) if s.is_float else abs(s.scale)
        assert np.all(np.abs(column.values - expect) <= step * 0.5 + 1e-9), s.name
