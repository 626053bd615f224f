"""The numba float formatter writes exactly what Python's repr writes."""

from __future__ import annotations

import math
import struct
from typing import Any

import numba
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.export import _ryu


@numba.njit(cache=True)
def _format_all(values: Any, out: Any) -> int:
    at = 0
    for value in values:
        at = _ryu.write_float(value, out, at)
        out[at] = 10
        at += 1
    return at


@numba.njit(cache=True)
def _format_ints(values: Any, out: Any) -> int:
    at = 0
    for value in values:
        at = _ryu.write_int(value, out, at)
        out[at] = 10
        at += 1
    return at


def _reprs(values: list[float]) -> list[str]:
    array = np.array(values, np.float64)
    out = np.empty(len(values) * 48 + 48, np.uint8)
    end = _format_all(array, out)
    return bytes(out[:end]).decode().split("\n")[:-1]


SPECIAL = [
    0.0,
    -0.0,
    math.nan,
    math.inf,
    -math.inf,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    0.1,
    0.2,
    0.30000000000000004,
    1.0,
    12.0,
    1e15,
    1e16,
    9007199254740993.0,
    123456789012345.67,
    0.0001,
    0.00001,
    1.5e-05,
    1e22,
    1e23,
    2.0**63,
    1700000000.123456,
    1700000000.000001,
    -40.0,
    -39.99,
    1234.5,
]


def test_special_values() -> None:
    assert _reprs(SPECIAL) == [repr(v) for v in SPECIAL]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=50))
def test_any_double(values: list[float]) -> None:
    assert _reprs(values) == [repr(v) for v in values]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=50))
def test_whole_numbers(values: list[int]) -> None:
    """Whole numbers below 10**16 take a path of their own; above it repr turns to 1e+16."""
    floats = [float(v) for v in values] + [float(v) * 1e-6 for v in values]
    assert _reprs(floats) == [repr(v) for v in floats]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=50))
def test_any_bit_pattern(patterns: list[int]) -> None:
    values = [struct.unpack("<d", struct.pack("<Q", p))[0] for p in patterns]
    assert _reprs(values) == [repr(v) for v in values]


@settings(max_examples=500, deadline=None)
@given(
    raw=st.lists(st.integers(-(2**31), 2**31), min_size=1, max_size=50),
    scale=st.sampled_from([0.1, 0.01, 0.001, 1e-7, 0.05, 0.25, 1 / 3, 3.0]),
    offset=st.sampled_from([0.0, -40.0, -273.15, 0.5, 1e3]),
)
def test_scaled_can_values(raw: list[int], scale: float, offset: float) -> None:
    """The values a decoder produces: raw * scale + offset."""
    values = [r * scale + offset for r in raw]
    assert _reprs(values) == [repr(v) for v in values]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=50))
def test_integers(values: list[int]) -> None:
    out = np.empty(len(values) * 24, np.uint8)
    end = _format_ints(np.array(values, np.int64), out)
    assert bytes(out[:end]).decode().split("\n")[:-1] == [str(v) for v in values]


@numba.njit(cache=True)
def _format_decimal(number: int, places: int, value: float, out: Any) -> int:
    return int(_ryu.write_decimal(number, places, value, out, 0))


@settings(max_examples=1500, deadline=None)
@given(
    number=st.integers(-(2**52), 2**52),
    places=st.integers(0, 7),
    ulps=st.sampled_from([0, 0, 0, 1, -1]),
)
def test_decimal_numbers(number: int, places: int, ulps: int) -> None:
    """number / 10**places as repr writes it, or -1 when the value is not that decimal's
    double (or repr would not write it positionally): never a wrong text."""
    value = number / 10**places
    if ulps:
        value = math.nextafter(value, math.copysign(math.inf, ulps))
    out = np.zeros(64, np.uint8)
    end = _format_decimal(number, places, value, out)
    if end < 0:
        assert ulps or number == 0 or abs(number) >= 2**51 or abs(value) < 1e-4
    else:
        assert bytes(out[:end]).decode() == repr(value)


@numba.njit(cache=True)
def _format_stamp(value: float, out: Any) -> int:
    seconds, micros = _ryu.split_micros(value)
    if seconds < 0:
        return -1
    at = _ryu.write_uint(np.uint64(seconds), out, 0)
    out[at] = 46
    return int(_ryu.write_fraction(micros, 6, out, at + 1))


@settings(max_examples=1500, deadline=None)
@given(
    seconds=st.integers(0, 2**31),
    micros=st.integers(0, 999_999),
    ulps=st.sampled_from([0, 0, 0, 1, -1]),
)
def test_log_timestamps(seconds: int, micros: int, ulps: int) -> None:
    """Timestamps of whole microseconds take the short path and come out as repr writes
    them; anything else is refused."""
    value = float(f"{seconds}.{micros:06d}")
    if ulps:
        value = math.nextafter(value, math.copysign(math.inf, ulps))
    out = np.zeros(64, np.uint8)
    end = _format_stamp(value, out)
    if end < 0:
        assert ulps or value < 1.0
    else:
        assert bytes(out[:end]).decode() == repr(value)
