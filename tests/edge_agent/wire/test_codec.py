"""Telemetry payloads: lossless round trips, the byte layout, and every kind of damage."""

from __future__ import annotations

import contextlib
import re
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.wire import (
    MAX_BODY_BYTES,
    WIRE_VERSION,
    Capture,
    CatalogueMismatchError,
    EncodeError,
    Header,
    MalformedPayloadError,
    PayloadKind,
    Series,
    TelemetryBatch,
    UnsupportedVersionError,
    WireError,
    WireSchema,
    decode_telemetry,
    encode_telemetry,
    peek,
)

from ._helpers import (
    CATALOGUE_ID,
    MIXED,
    assert_same,
    batch,
    batches,
    schema,
    schemas,
    series,
    sints,
    telemetry,
    uints,
)

SAMPLE = batch(
    series(0, [1000, 1010, 1020, 1031], [-5, -3, 7, 32767]),
    series(1, [1000, 1010, 1020, 1031], [0, 255, 1, 1]),  # same times: a time reference
    series(2, [995, 1095], [0x41200000, -0x3EE00000]),  # float32 10.0, -10.0 sign-extended
    series(3, [2000], [np.float64(1.5).view(np.int64).item()]),
    series(4, [3000, 3000], [-1, 2**63 - 1]),  # 2**64-1 wraps to -1
    series(5, [], []),
    sequence=42,
    capture=Capture("hard-brake", 1005),
)


# -- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_of_every_kind(compress: bool) -> None:
    payload = encode_telemetry(SAMPLE, MIXED, compress=compress)
    assert payload[0] == WIRE_VERSION == 1 and payload[1] == PayloadKind.TELEMETRY
    assert_same(decode_telemetry(payload, MIXED), SAMPLE)


def test_empty_batch() -> None:
    empty = batch(sequence=0)
    payload = encode_telemetry(empty, MIXED)
    assert payload == telemetry(b"\x00")  # stored: compressing one byte does not pay
    decoded = decode_telemetry(payload, MIXED)
    assert_same(decoded, empty)
    assert decoded.samples == 0 and decoded.capture is None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_round_trip_of_arbitrary_batches(data: st.DataObject) -> None:
    schema = data.draw(schemas)
    original = data.draw(batches(schema))
    for compress in (True, False):
        payload = encode_telemetry(original, schema, compress=compress)
        assert_same(decode_telemetry(payload, schema), original)
        assert peek(payload) == Header(
            1, PayloadKind.TELEMETRY, schema.catalogue_id, original.sequence
        )


def test_decoded_arrays_do_not_alias_across_series() -> None:
    decoded = decode_telemetry(encode_telemetry(SAMPLE, MIXED), MIXED)
    assert not np.shares_memory(decoded.series[0].times_ms, decoded.series[1].times_ms)


def test_accepts_other_integer_dtypes_and_uint64_raw() -> None:
    given_batch = batch(
        Series(1, np.array([5, 6], np.int32), np.array([1, 2], np.uint8)),
        Series(4, np.array([5, 6], np.uint32), np.array([2**64 - 1, 0], np.uint64)),
    )
    decoded = decode_telemetry(encode_telemetry(given_batch, MIXED), MIXED)
    assert decoded.series[1].raw.tolist() == [-1, 0]
    assert decoded.series[0].times_ms.tolist() == [5, 6]


def test_full_rate_batch_is_small() -> None:
    """100 Hz of four correlated signals for 10 s: well under a byte per sample."""
    rng = np.random.default_rng(1)
    times = 1_700_000_000_000 + np.cumsum(rng.choice([9, 10, 10, 11], 1000))
    speed = np.clip(np.cumsum(rng.integers(-3, 4, 1000)) + 5000, 0, 65535)
    wheels = schema(*[("int", 16, False)] * 4)
    many = batch(*(Series(n, times, speed + n) for n in range(4)))
    payload = encode_telemetry(many, wheels)
    assert len(payload) / many.samples < 1.0
    assert_same(decode_telemetry(payload, wheels), many)


# -- the documented layout --------------------------------------------------------------


def test_layout_of_a_stored_payload() -> None:
    """Byte for byte the example of docs/wire-format.md."""
    example = TelemetryBatch(
        CATALOGUE_ID,
        7,
        (
            series(1, [1_700_000_000_000, 1_700_000_000_010, 1_700_000_000_020], [20, 21, 21]),
            series(0, [1_700_000_000_000, 1_700_000_000_010, 1_700_000_000_020], [-2, -2, 3]),
            series(2, [1_700_000_000_005], [0x41200000]),
        ),
    )
    payload = encode_telemetry(example, MIXED, compress=False)
    body = (
        uints(3)  # series
        + uints(1, 3, 0, 0, 3, 1, 2, 1, 0)  # directory: signal, count, time reference
        + sints(0, 10, 0, 5)  # times of series 0 (series 1 refers to them), then series 2
        + sints(20, 1, 0, -2, 0, 5)  # integer values: series 0, then series 1
        + bytes.fromhex("00002041")  # float32 10.0, little-endian
    )
    assert payload == telemetry(body, sequence=7, base=1_700_000_000_000)
    assert payload.hex(" ") == (
        "01 01 00 01 23 45 67 89 ab cd ef 07 80 a0 ab fe f9 62 03 01 03 00 00 03 01 02 01 "
        "00 00 14 00 0a 28 02 00 03 00 0a 00 00 20 41"
    )
    assert_same(decode_telemetry(payload, MIXED), example)


def test_compressed_body_is_zlib_of_the_stored_body() -> None:
    payload = encode_telemetry(SAMPLE, MIXED)
    stored = encode_telemetry(SAMPLE, MIXED, compress=False)
    assert (payload[2], stored[2]) == (0b011, 0b001)  # capture; zlib or stored
    header = payload.index(b"hard-brake") + len(b"hard-brake")
    assert payload[3:header] == stored[3:header]
    assert zlib.decompress(payload[header:]) == stored[header:]


def test_peek_reads_the_header_without_the_body() -> None:
    payload = encode_telemetry(SAMPLE, MIXED)
    cut = payload[: payload.index(b"hard-brake") + len(b"hard-brake") + 1]
    assert peek(cut) == Header(1, PayloadKind.TELEMETRY, CATALOGUE_ID, 42)


# -- encoder validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (batch(series(6, [1], [0])), "unknown signal number 6"),
        (batch(series(-1, [1], [0])), "unknown signal number -1"),
        (batch(series(1, [1], [0]), series(1, [2], [0])), "already has series 0"),
        (batch(series(0, [5, 4], [0, 0])), "times go backwards at sample 1"),
        (batch(series(0, [1, 2], [0])), "2 times but 1 raw values"),
        (batch(series(0, [1], [32768])), "raw value 32768 at sample 0 is outside"),
        (batch(series(0, [1], [-32769])), "outside the signal's range -32768..32767"),
        (batch(series(1, [1], [-1])), "outside the signal's range 0..255"),
        (batch(series(5, [1], [2])), "range 0..1"),
        (batch(series(2, [1], [2**32])), "outside"),
        (batch(series(0, [1], [0]), sequence=-1), "sequence"),
        (batch(capture=Capture("x" * 256, 0)), "capture name"),
        (batch(Series(0, np.array([1.5]), np.array([1]))), "must hold 64-bit integers"),
        (batch(Series(0, np.array([[1]]), np.array([[1]]))), "one-dimensional"),
    ],
)
def test_encoder_refuses_what_breaks_the_contract(bad: TelemetryBatch, message: str) -> None:
    with pytest.raises(EncodeError, match=message) as caught:
        encode_telemetry(bad, MIXED)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, WireError)


def test_encoder_checks_the_catalogue() -> None:
    other = TelemetryBatch("fedcba9876543210", 0, ())
    with pytest.raises(CatalogueMismatchError, match="catalogue fedcba9876543210"):
        encode_telemetry(other, MIXED)


def test_encoder_refuses_a_body_over_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_agent.wire import codec

    monkeypatch.setattr(codec, "MAX_BODY_BYTES", 10)
    with pytest.raises(EncodeError, match="limit is 10"):
        encode_telemetry(SAMPLE, MIXED)


# -- damage -----------------------------------------------------------------------------

GOOD_BODY = uints(1, 0, 2, 0) + sints(5, 10) + sints(1, 1)  # signal 0: (base+5, 1), (+15, 2)


def test_hand_made_body_decodes() -> None:
    decoded = decode_telemetry(telemetry(GOOD_BODY, base=100), MIXED)
    assert decoded.series[0].times_ms.tolist() == [105, 115]
    assert decoded.series[0].raw.tolist() == [1, 2]


@pytest.mark.parametrize(
    ("payload", "problem", "offset"),
    [
        (b"", "empty payload", 0),
        (b"\x01", "no kind byte", 1),
        (b"\x01\x07", "unknown payload kind 7", 1),
        (b"\x01\x02{}", "not a telemetry payload", 1),
        (b"\x01\x01\x00\x01\x02", "truncated header", 5),
        (telemetry(GOOD_BODY, flags=0x08), "reserved flag bits", 2),
        (telemetry(GOOD_BODY, flags=0x04), "unknown body coding 2", 2),
        (telemetry(b"")[:11] + b"\xff" * 11, "sequence: varint exceeds 64 bits", 11),
        (telemetry(b"")[:11] + b"\xff" * 9 + b"\x01", "sequence exceeds 2**63-1", 11),
        (telemetry(b"")[:11] + b"\x80\x00", "sequence: varint is not in its shortest form", 11),
        (telemetry(b"")[:11] + b"\x00\x80", "base time: truncated varint", 12),
        (telemetry(b""), "ends before the body", 13),
        (telemetry(b"", flags=1, tail=sints(0) + uints(300)), "capture name of 300 bytes", 14),
        (telemetry(b"", flags=1, tail=sints(0) + uints(4) + b"ab"), "truncated capture name", 15),
        (
            telemetry(b"\x00", flags=1, tail=sints(0) + uints(2) + b"a\xff"),
            "capture name is not UTF-8",
            16,
        ),
    ],
)
def test_header_damage(payload: bytes, problem: str, offset: int) -> None:
    with pytest.raises(MalformedPayloadError, match=re.escape(problem)) as caught:
        decode_telemetry(payload, MIXED)
    assert caught.value.offset == offset
    assert f"at byte {offset} of the payload" in str(caught.value)


@pytest.mark.parametrize("version", [0, 2, 255])
def test_unknown_versions(version: int) -> None:
    payload = bytes([version]) + encode_telemetry(SAMPLE, MIXED)[1:]
    with pytest.raises(UnsupportedVersionError, match=f"version {version} is not supported"):
        decode_telemetry(payload, MIXED)
    with pytest.raises(UnsupportedVersionError):
        peek(payload)


def test_catalogue_mismatch() -> None:
    other = WireSchema("fedcba9876543210", MIXED.signals)
    with pytest.raises(CatalogueMismatchError) as caught:
        decode_telemetry(encode_telemetry(SAMPLE, MIXED), other)
    assert (caught.value.expected, caught.value.found) == ("fedcba9876543210", CATALOGUE_ID)


H = len(telemetry(b""))  # header bytes before a stored body


@pytest.mark.parametrize(
    ("body", "problem", "offset"),
    [
        (uints(2) + uints(0, 0, 0), "2 series cannot fit", 0),
        (uints(1) + uints(9, 1, 0) + sints(0) + sints(0), "unknown signal number 9", 1),
        (uints(2) + uints(0, 0, 0, 0, 0, 0), "signal 0 already has series 0", 4),
        (uints(2) + uints(0, 1, 0, 1, 1, 2) + sints(0, 0, 0), "time reference 2", 6),
        (uints(2) + uints(0, 1, 0, 1, 2, 1) + sints(0, 0, 0), "time reference 1", 6),
        (uints(1) + uints(0, 0, 1), "time reference 1", 3),
        (uints(1) + uints(0, 50, 0) + sints(0), "need at least 100 bytes, 1 are left", 4),
        (uints(1) + uints(0, 3, 0) + sints(0, 0, 0, 0, 0), "need at least 6 bytes", 4),
        (uints(1) + uints(0, 2, 0) + sints(5, -1) + sints(0, 0), "time goes backwards", 5),
        (uints(1) + uints(0, 2, 0) + b"\x80\x00" + sints(0) + sints(0), "shortest form", 4),
        (uints(1) + uints(0, 1, 0) + sints(0) + sints(32768), "raw value 32768 is outside", 5),
        (uints(1) + uints(1, 2, 0) + sints(0, 0) + sints(255, 1), "raw value 256", 8),
        (uints(1) + uints(2, 1, 0) + sints(0) + b"\x00\x00\x20", "need at least 5 bytes", 4),
        (uints(1) + uints(2, 1, 0) + sints(0) + b"\x00\x00\x20\x41\x00", "1 trailing bytes", 9),
        (GOOD_BODY + b"\x00", "1 trailing bytes", 8),
        (uints(1) + uints(0, 1, 0) + sints(0) + b"\xff" * 11 + b"\x00", "longer than 10", 5),
        (uints(1) + uints(0, 1, 0) + sints(0) + b"\xff", "integer section: truncated", 5),
        (uints(1) + uints(0, 1, 0) + sints(0) + b"\xff" * 9 + b"\x02", "exceeds 64 bits", 5),
        (b"\x80", "series count: truncated varint", 0),
    ],
)
def test_body_damage(body: bytes, problem: str, offset: int) -> None:
    """Stored bodies: offsets count in the payload."""
    with pytest.raises(MalformedPayloadError, match=problem) as caught:
        decode_telemetry(telemetry(body), MIXED)
    assert caught.value.offset == H + offset and caught.value.section == "payload"


def test_compressed_body_damage_counts_in_the_body() -> None:
    body = uints(1) + uints(9, 1, 0) + sints(0) + sints(0)
    payload = telemetry(zlib.compress(body), flags=0x02)
    with pytest.raises(MalformedPayloadError, match="of the decompressed body") as caught:
        decode_telemetry(payload, MIXED)
    assert caught.value.offset == 1 and caught.value.section == "decompressed body"


def test_compressed_body_that_does_not_decompress() -> None:
    payload = encode_telemetry(SAMPLE, MIXED)
    broken = payload[:-3] + bytes(b ^ 0xFF for b in payload[-3:])  # the Adler-32 check fails
    with pytest.raises(MalformedPayloadError, match="does not decompress") as caught:
        decode_telemetry(broken, MIXED)
    assert caught.value.offset == payload.index(b"hard-brake") + len(b"hard-brake")


def test_truncated_and_extended_compressed_bodies() -> None:
    payload = encode_telemetry(SAMPLE, MIXED)
    with pytest.raises(MalformedPayloadError, match="truncated compressed body") as caught:
        decode_telemetry(payload[:-1], MIXED)
    assert caught.value.offset == len(payload) - 1
    with pytest.raises(MalformedPayloadError, match="2 trailing bytes after the compressed"):
        decode_telemetry(payload + b"ab", MIXED)


def test_decompression_bomb_is_refused() -> None:
    bomb = telemetry(zlib.compress(b"\x00" * (MAX_BODY_BYTES + 1), 9), flags=0x02)
    assert len(bomb) < 100_000
    with pytest.raises(MalformedPayloadError, match="more than 16,777,216 bytes") as caught:
        decode_telemetry(bomb, MIXED)
    assert caught.value.offset == H


# -- fuzzing: nothing but WireError ever escapes ----------------------------------------

_EXPECTED = (MalformedPayloadError, UnsupportedVersionError, CatalogueMismatchError)


def _decode_or_wire_error(payload: bytes) -> None:
    try:
        decoded = decode_telemetry(payload, MIXED)
    except _EXPECTED:
        return
    # What decodes must be a valid batch: it encodes again.
    encode_telemetry(decoded, MIXED)


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_random_bytes(payload: bytes) -> None:
    _decode_or_wire_error(payload)
    with contextlib.suppress(*_EXPECTED):
        peek(payload)


@settings(max_examples=500)
@given(st.binary(max_size=120), st.sampled_from([0x00, 0x01, 0x02, 0x03]))
def test_random_bodies_behind_a_valid_header(body: bytes, flags: int) -> None:
    _decode_or_wire_error(telemetry(body, flags=flags))
    _decode_or_wire_error(telemetry(zlib.compress(body), flags=flags | 0x02))


_VALID = [
    encode_telemetry(SAMPLE, MIXED),
    encode_telemetry(SAMPLE, MIXED, compress=False),
    telemetry(GOOD_BODY, base=100),
]


@settings(max_examples=1000)
@given(st.sampled_from(_VALID), st.integers(0, 10_000), st.integers(1, 255))
def test_single_byte_corruption(payload: bytes, where: int, flip: int) -> None:
    position = where % len(payload)
    damaged = bytearray(payload)
    damaged[position] ^= flip
    _decode_or_wire_error(bytes(damaged))


@settings(max_examples=300)
@given(st.sampled_from(_VALID), st.data())
def test_truncation_and_insertion(payload: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(payload) - 1))
    _decode_or_wire_error(payload[:cut])
    extra = data.draw(st.binary(min_size=1, max_size=4))
    _decode_or_wire_error(payload[:cut] + extra + payload[cut:])
