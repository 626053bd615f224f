"""Shared helpers: schemas and batches for wire tests, built by hand or by Hypothesis."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from edge_agent.wire import Capture, Series, SignalSpec, TelemetryBatch, WireSchema
from edge_agent.wire._varint import encode_sint, encode_uint

CATALOGUE_ID = "0123456789abcdef"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def spec(number: int, kind: str = "int", length: int = 16, signed: bool = False) -> SignalSpec:
    return SignalSpec(
        number=number,
        vss=f"Vehicle.Private.Test.S{number:03d}",
        message="M",
        signal=f"S{number:03d}",
        kind=kind,  # type: ignore[arg-type]
        is_signed=signed,
        length=length,
        scale=1.0,
        offset=0.0,
        vss_scale=1.0,
        vss_offset=0.0,
        unit=None,
        choices={},
    )


def schema(*specs: tuple[str, int, bool], catalogue_id: str = CATALOGUE_ID) -> WireSchema:
    """A schema of (kind, length, signed) signals, numbered in order."""
    return WireSchema(
        catalogue_id,
        [spec(i, kind, length, signed) for i, (kind, length, signed) in enumerate(specs)],
    )


# An int16 signed, a uint8, a float32 (signed, as the demo's), a float64, a uint64, a 1-bit.
MIXED = schema(
    ("int", 16, True),
    ("int", 8, False),
    ("float32", 32, True),
    ("float64", 64, False),
    ("int", 64, False),
    ("int", 1, False),
)


def series(signal: int, times: list[int], raw: list[int]) -> Series:
    return Series(signal, np.array(times, np.int64), np.array(raw, np.int64))


def batch(*items: Series, sequence: int = 0, capture: Capture | None = None) -> TelemetryBatch:
    return TelemetryBatch(CATALOGUE_ID, sequence, items, capture)


def assert_same(a: TelemetryBatch, b: TelemetryBatch) -> None:
    """Batches equal sample for sample (Series compare arrays, so they have no ==)."""
    assert (a.catalogue_id, a.sequence, a.capture) == (b.catalogue_id, b.sequence, b.capture)
    assert [s.signal for s in a.series] == [s.signal for s in b.series]
    for x, y in zip(a.series, b.series, strict=True):
        assert y.times_ms.dtype == np.int64 and y.raw.dtype == np.int64
        np.testing.assert_array_equal(x.times_ms, y.times_ms)
        np.testing.assert_array_equal(x.raw, y.raw)


def telemetry(
    body: bytes,
    *,
    sequence: int = 0,
    base: int = 0,
    flags: int = 0,
    catalogue_id: str = CATALOGUE_ID,
    tail: bytes = b"",
) -> bytes:
    """A telemetry payload assembled by hand, as docs/wire-format.md describes it."""
    return (
        bytes((1, 1, flags))
        + bytes.fromhex(catalogue_id)
        + encode_uint(sequence)
        + encode_sint(base)
        + tail
        + body
    )


def uints(*values: int) -> bytes:
    return b"".join(encode_uint(v) for v in values)


def sints(*values: int) -> bytes:
    return b"".join(encode_sint(v) for v in values)


# -- Hypothesis ---------------------------------------------------------------------------

KINDS = st.one_of(
    st.tuples(st.just("int"), st.integers(1, 64), st.booleans()),
    st.tuples(st.just("float32"), st.just(32), st.booleans()),
    st.tuples(st.just("float64"), st.just(64), st.booleans()),
)

schemas = st.lists(KINDS, min_size=1, max_size=8).map(lambda specs: schema(*specs))

_realistic_times = st.tuples(
    st.integers(1_600_000_000_000, 1_800_000_000_000),
    st.lists(st.sampled_from([0, 9, 10, 10, 10, 11, 20, 100, 1000]), max_size=60),
).map(lambda p: [int(t) for t in np.cumsum([p[0], *p[1]], dtype=np.int64)])
_any_times = st.lists(st.integers(INT64_MIN, INT64_MAX), max_size=30).map(sorted)
times_lists: st.SearchStrategy[list[int]] = st.one_of(_realistic_times, _any_times, st.just([]))


def raw_values(s: SignalSpec) -> st.SearchStrategy[int]:
    return st.integers(s.raw_min, s.raw_max)


@st.composite
def batches(draw: st.DrawFn, schema: WireSchema) -> TelemetryBatch:
    numbers = draw(st.permutations(range(len(schema.signals))))
    chosen = numbers[: draw(st.integers(0, len(numbers)))]
    made: list[Series] = []
    for number in chosen:
        if made and draw(st.integers(0, 3)) == 0:  # the same times as an earlier series
            times = list(draw(st.sampled_from(made)).times_ms)
        else:
            times = draw(times_lists)
        raw = draw(
            st.lists(raw_values(schema.signals[number]), min_size=len(times), max_size=len(times))
        )
        made.append(series(number, times, raw))
    capture = draw(
        st.none()
        | st.builds(
            Capture,
            st.text(max_size=40).filter(lambda t: len(t.encode()) <= 255),
            st.integers(INT64_MIN, INT64_MAX),
        )
    )
    return TelemetryBatch(
        schema.catalogue_id, draw(st.integers(0, INT64_MAX)), tuple(made), capture
    )
