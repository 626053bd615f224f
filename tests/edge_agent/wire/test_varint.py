"""Varints and zigzag: the vectorised coders agree with the one-value coders."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.wire._varint import (
    VarintError,
    encode_array,
    encode_sint,
    encode_uint,
    read_array,
    read_sint,
    read_uint,
    unzigzag,
    varint_ends,
    zigzag,
)

U64 = st.integers(0, 2**64 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)


@given(st.lists(U64, max_size=50), st.binary(max_size=3))
def test_arrays_agree_with_single_values(values: list[int], prefix: bytes) -> None:
    encoded = encode_array(np.array(values, np.uint64))
    assert encoded == b"".join(encode_uint(v) for v in values)
    data = np.frombuffer(prefix + b"\x00" + encoded + b"\x7f", np.uint8)
    block = read_array(data, varint_ends(data), len(prefix) + 1, len(values))
    assert block.values.tolist() == values and block.end == len(data) - 1
    pos = len(prefix) + 1
    for k, value in enumerate(values):
        assert block.offset(k) == pos
        assert read_uint(data.tobytes(), pos)[0] == value
        pos = read_uint(data.tobytes(), pos)[1]


@given(st.lists(I64, max_size=50))
def test_zigzag(values: list[int]) -> None:
    array = np.array(values, np.int64)
    coded = zigzag(array)
    assert coded.tolist() == [read_uint(encode_sint(v), 0)[0] for v in values]
    assert unzigzag(coded.copy()).tolist() == values
    assert [read_sint(encode_sint(v), 0)[0] for v in values] == values


def test_small_values_are_one_byte() -> None:
    assert zigzag(np.array([0, -1, 1, -2, 63, -64], np.int64)).tolist() == [0, 1, 2, 3, 126, 127]
    assert encode_uint(127) == b"\x7f" and encode_uint(128) == b"\x80\x01"
    assert encode_uint(2**64 - 1) == b"\xff" * 9 + b"\x01"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "truncated varint"),
        (b"\x80", "truncated varint"),
        (b"\x80\x00", "not in its shortest form"),
        (b"\xff" * 9 + b"\x02", "exceeds 64 bits"),
    ],
)
def test_bad_single_varints(data: bytes, problem: str) -> None:
    with pytest.raises(VarintError, match=problem):
        read_uint(data, 0)


@pytest.mark.parametrize(
    ("data", "count", "problem", "offset"),
    [
        (b"\x01\x80", 2, "truncated: 2 varints expected, 1 found", 1),
        (b"\x01\x80\x00", 2, "not in its shortest form", 1),
        (b"\x01" + b"\xff" * 10 + b"\x00", 2, "longer than 10 bytes", 1),
        (b"\x01" + b"\xff" * 9 + b"\x02", 2, "exceeds 64 bits", 1),
    ],
)
def test_bad_varint_arrays(data: bytes, count: int, problem: str, offset: int) -> None:
    array = np.frombuffer(data, np.uint8)
    with pytest.raises(VarintError, match=problem) as caught:
        read_array(array, varint_ends(array), 0, count)
    assert caught.value.offset == offset


def test_out_of_range_single_values() -> None:
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        encode_uint(2**64)
    with pytest.raises(ValueError, match="signed 64-bit"):
        encode_sint(2**63)
