"""Unit behaviour of the batch decoder beyond the differential tests."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from cantools.database.can import Database, Message, Signal
from cantools.database.conversion import BaseConversion

from edge_agent.decoder import BatchDecoder, DecoderError
from edge_agent.frames import FrameBatch, FrameFlag


def _decoder(*signals: Signal, length: int = 8, frame_id: int = 0x100) -> BatchDecoder:
    return BatchDecoder(
        Database(
            messages=[Message(frame_id=frame_id, name="M", length=length, signals=list(signals))]
        )
    )


def test_huge_integer_conversion_is_exact() -> None:
    """raw * 3 + 5 beyond int64 is computed with Python integers, as cantools does."""
    signal = Signal("Big", 0, 64, conversion=BaseConversion.factory(scale=3, offset=5))
    raw = 2**64 - 12345
    decoder = _decoder(signal)
    result = decoder.decode(FrameBatch.from_rows([(0.0, 0x100, 0, raw.to_bytes(8, "little"))]))
    assert result.values[0] == float(raw * 3 + 5)
    assert int(result.raw[0]) + 2**64 == raw
    assert result.signal("M.Big").values[0] == float(raw * 3 + 5)


def test_integer_scale_with_float_offset_multiplies_exactly() -> None:
    """Python computes raw * 3 exactly before adding 0.5; so must the decoder."""
    signal = Signal("P", 0, 54, conversion=BaseConversion.factory(scale=3, offset=0.5))
    raw = 11190454901533422207 & (2**54 - 1)
    result = _decoder(signal).decode(
        FrameBatch.from_rows([(0.0, 0x100, 0, raw.to_bytes(8, "little"))])
    )
    assert result.values[0] == raw * 3 + 0.5
    big = Signal("Q", 0, 64, conversion=BaseConversion.factory(scale=3, offset=0.5))
    raw = 2**64 - 99
    result = _decoder(big).decode(
        FrameBatch.from_rows([(0.0, 0x100, 0, raw.to_bytes(8, "little"))])
    )
    assert result.values[0] == raw * 3 + 0.5


def test_negative_zero_float_survives_identity() -> None:
    signal = Signal("F", 0, 64, conversion=BaseConversion.factory(is_float=True))
    result = _decoder(signal).decode(
        FrameBatch.from_rows([(0.0, 0x100, 0, struct.pack("<d", -0.0))])
    )
    assert struct.pack("<d", result.values[0]) == struct.pack("<d", -0.0)


def test_remote_error_unknown_and_truncated_frames_are_counted() -> None:
    decoder = _decoder(Signal("A", 0, 8), Signal("B", 56, 8))
    batch = FrameBatch.from_rows(
        [
            (0.0, 0x100, 0, bytes(range(8))),
            (0.1, 0x100, FrameFlag.REMOTE, b""),
            (0.2, 0x100, FrameFlag.ERROR, bytes(8)),
            (0.3, 0x101, 0, bytes(8)),
            (0.4, 0x100, 0, bytes([9, 9, 9])),  # B (byte 7) is missing
        ]
    )
    result = decoder.decode(batch)
    assert result.stats.frames == 5
    assert result.stats.decoded == 2
    assert result.stats.skipped == 2
    assert result.stats.unknown == 1
    assert result.stats.truncated == 1
    assert result.stats.samples == 3
    samples = result.long_form()
    assert list(samples.rows) == [0, 0, 4]
    assert list(samples.values) == [0.0, 7.0, 9.0]
    assert [decoder.signals[s].full_name for s in samples.signals] == ["M.A", "M.B", "M.A"]
    assert list(result.signal("M.A").timestamps) == [0.0, 0.4]
    assert list(result.signal("M.B").timestamps) == [0.0]
    assert list(result.frame_messages) == [0, -2, -2, -1, 0]


def test_columns_group_by_signal_in_frame_order() -> None:
    decoder = _decoder(Signal("A", 0, 8), Signal("B", 8, 8, is_signed=True))
    batch = FrameBatch.from_rows(
        [(float(i), 0x100, 0, bytes([i, 256 - i, 0, 0, 0, 0, 0, 0])) for i in range(1, 5)]
    )
    columns = decoder.decode(batch).columns()
    assert sorted(columns) == ["M.A", "M.B"]
    assert list(columns["M.A"].values) == [1.0, 2.0, 3.0, 4.0]
    assert list(columns["M.B"].raw) == [-1, -2, -3, -4]
    assert list(columns["M.B"].timestamps) == [1.0, 2.0, 3.0, 4.0]
    single = decoder.decode(batch).signal("M.B")
    assert np.array_equal(single.rows, columns["M.B"].rows)
    with pytest.raises(KeyError):
        decoder.decode(batch).signal("M.C")


def test_unknown_signal_name_is_named() -> None:
    with pytest.raises(DecoderError, match=r"no signal 'M\.Nope' in the database"):
        _decoder(Signal("A", 0, 8)).signal_info("M.Nope")


def test_length_beyond_data_width_is_refused() -> None:
    batch = FrameBatch(
        timestamps=np.zeros(1),
        ids=np.array([0x100], np.uint32),
        flags=np.zeros(1, np.uint8),
        lengths=np.array([12], np.uint8),
        data=np.zeros((1, 8), np.uint8),
        channels=np.full(1, -1, np.int16),
    )
    with pytest.raises(DecoderError, match=r"frame length \(12\) exceeds"):
        _decoder(Signal("A", 0, 8)).decode(batch)


def test_empty_batch() -> None:
    result = _decoder(Signal("A", 0, 8)).decode(FrameBatch.empty())
    assert len(result) == 0
    assert result.stats.frames == 0
    assert result.columns() == {}
    assert len(result.long_form()) == 0


def test_choices_are_available_but_not_applied() -> None:
    choices: Any = {0: "P", 1: "R", 2: "N", 3: "D"}
    signal = Signal("Gear", 0, 4, conversion=BaseConversion.factory(choices=choices))
    decoder = _decoder(signal)
    assert decoder.signal_info("M.Gear").choices == {0: "P", 1: "R", 2: "N", 3: "D"}
    result = decoder.decode(FrameBatch.from_rows([(0.0, 0x100, 0, bytes([3] + [0] * 7))]))
    assert list(result.signal("M.Gear").values) == [3.0]


def test_reuse_decodes_the_same_into_kept_buffers() -> None:
    decoder = _decoder(Signal("A", 0, 8), Signal("B", 8, 16, is_signed=True))
    first = FrameBatch.from_rows(
        [(float(i), 0x100, 0, bytes([i, i, 0x80] + [0] * 5)) for i in range(50)]
    )
    second = FrameBatch.from_rows(
        [(float(i), 0x100, 0, bytes([i + 1, 0, 0] + [0] * 5)) for i in range(20)]
    )
    fresh = [decoder.decode(b).long_form() for b in (first, second)]
    kept = decoder.decode(first, reuse=True)
    assert np.array_equal(kept.long_form().values, fresh[0].values)
    again = decoder.decode(second, reuse=True)
    assert np.shares_memory(again.values, kept.values)
    assert np.array_equal(again.long_form().values, fresh[1].values)
    assert np.array_equal(again.long_form().raw, fresh[1].raw)


def test_serial_kernel_decodes_like_the_parallel_one() -> None:
    from dbc import demo_catalogue
    from simulators import TrafficGenerator, VehicleConfig, simulate

    database = demo_catalogue().database
    drive = simulate(VehicleConfig(duration=60, seed=9))
    frames = TrafficGenerator(drive.trace, database).all_frames()
    parallel = BatchDecoder(database).decode(frames)
    serial = BatchDecoder(database, parallel=False).decode(frames)
    assert serial.stats == parallel.stats
    assert np.array_equal(serial.present, parallel.present)
    present = parallel.present  # slots without a sample hold whatever the buffer held
    assert np.array_equal(serial.raw[present], parallel.raw[present])
    assert np.array_equal(serial.values[present], parallel.values[present], equal_nan=True)


def test_warm_up_loads_every_kernel_a_batch_needs() -> None:
    """After `warm_up`, decoding a drive's frames loads no kernel (no pause on the first
    frames of a live bus); a fresh interpreter, since kernels are loaded once per process."""
    import subprocess
    import sys
    from pathlib import Path

    script = """
import numba
from edge_agent.decoder import BatchDecoder, _kernels
from tests.edge_agent._drive import catalogue, urban_frames
frames = urban_frames()
decoder = BatchDecoder(catalogue().database, parallel=False)
decoder.warm_up()
def loaded():
    return {n: len(f.signatures) for n, f in vars(_kernels).items()
            if isinstance(f, numba.core.registry.CPUDispatcher)}
before = loaded()
decoder.decode(frames, reuse=True)
decoder.decode(frames)
print(before == loaded(), sum(before.values()))
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    ).stdout.split()
    assert out[0] == "True"
    assert int(out[1]) > 0


def test_warm_up_takes_a_message_longer_than_a_frame() -> None:
    """A DBC may declare a message longer than any CAN frame (a J1939 transfer): warming up
    sends it a 64-byte frame rather than failing, and a later frame still decodes."""
    decoder = _decoder(Signal("A", 0, 8), length=300)
    decoder.warm_up()
    result = decoder.decode(FrameBatch.from_rows([(0.0, 0x100, 0, bytes([7]) * 8)]))
    assert result.stats.decoded == 1
    assert result.signal("M.A").values.tolist() == [7.0]
