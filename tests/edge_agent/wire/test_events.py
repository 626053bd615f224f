"""Crash event payloads: round trips, plain JSON a rescue service can read, damage."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.wire import (
    CrashEvent,
    EncodeError,
    Header,
    MalformedPayloadError,
    PayloadKind,
    Position,
    UnsupportedVersionError,
    decode_event,
    decode_telemetry,
    encode_event,
    peek,
)

from ._helpers import CATALOGUE_ID, MIXED

EVENT = CrashEvent(
    vehicle_id="veh-0042",
    vin="C2CDEM00000000001",
    sequence=3,
    time_ms=1_700_000_123_456,
    trigger="airbag",
    severity="SEVERE",
    position=Position(48.1374, 11.5755, 1_700_000_123_400),
    heading_deg=87.5,
    previous_positions=(
        Position(48.13735, 11.57541, 1_700_000_122_400),
        Position(48.1373, 11.5753, 1_700_000_121_400),
    ),
    propulsion="electric",
    occupants=2,
    peak_acceleration=312.5,
    delta_v=42.0,
    catalogue_id=CATALOGUE_ID,
)

DOCUMENT = {
    "vehicle_id": "veh-0042",
    "vin": "C2CDEM00000000001",
    "sequence": 3,
    "time_ms": 1700000123456,
    "trigger": "airbag",
    "severity": "SEVERE",
    "position": {"latitude": 48.1374, "longitude": 11.5755, "time_ms": 1700000123400},
    "heading_deg": 87.5,
    "previous_positions": [
        {"latitude": 48.13735, "longitude": 11.57541, "time_ms": 1700000122400},
        {"latitude": 48.1373, "longitude": 11.5753, "time_ms": 1700000121400},
    ],
    "propulsion": "electric",
    "occupants": 2,
    "peak_acceleration": 312.5,
    "delta_v": 42.0,
    "catalogue_id": CATALOGUE_ID,
}


_PLACE = {"latitude": 48.1373, "longitude": 11.5753, "time_ms": 1700000121400}


def payload(document: object) -> bytes:
    return b"\x01\x02" + json.dumps(document).encode()


def test_event_is_two_bytes_then_plain_json() -> None:
    encoded = encode_event(EVENT)
    assert encoded[:2] == b"\x01\x02"
    assert json.loads(encoded[2:].decode("utf-8")) == DOCUMENT
    assert list(json.loads(encoded[2:])) == list(DOCUMENT)  # keys in field order
    assert b" " not in encoded  # compact
    assert decode_event(encoded) == EVENT
    assert peek(encoded) == Header(1, PayloadKind.EVENT, CATALOGUE_ID, 3)


def test_a_sparse_event() -> None:
    sparse = replace(
        EVENT,
        vin=None,
        trigger="acceleration",
        severity="MODERATE",
        position=None,
        heading_deg=None,
        previous_positions=(),
        occupants=None,
        peak_acceleration=None,
        delta_v=None,
    )
    document = json.loads(encode_event(sparse)[2:])
    assert document["position"] is None and document["previous_positions"] == []
    assert decode_event(encode_event(sparse)) == sparse


def test_readers_ignore_keys_they_do_not_know() -> None:
    position = {"latitude": 48.1374, "longitude": 11.5755, "time_ms": 1700000123400}
    newer = {
        **DOCUMENT,
        "airbags_deployed": ["driver"],
        "position": {**position, "accuracy_m": 3.5},
    }
    assert decode_event(payload(newer)) == EVENT


def test_json_integers_are_accepted_for_numbers() -> None:
    assert decode_event(payload({**DOCUMENT, "delta_v": 42})).delta_v == 42.0


def test_numpy_scalars_encode_as_plain_json() -> None:
    event = replace(EVENT, time_ms=np.int64(5), peak_acceleration=np.float64(-1.5))  # type: ignore[arg-type]
    document = json.loads(encode_event(event)[2:])
    assert document["time_ms"] == 5 and document["peak_acceleration"] == -1.5


_text = st.text(min_size=1, max_size=30)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_int64 = st.integers(-(2**63), 2**63 - 1)
_positions = st.builds(Position, st.floats(-90, 90), st.floats(-180, 180), _int64)
events = st.builds(
    CrashEvent,
    vehicle_id=_text,
    vin=st.none() | _text,
    sequence=st.integers(0, 2**63 - 1),
    time_ms=_int64,
    trigger=st.sampled_from(["airbag", "acceleration"]),
    severity=_text,
    position=st.none() | _positions,
    heading_deg=st.none() | _finite,
    previous_positions=st.lists(_positions, max_size=2).map(tuple),
    propulsion=_text,
    occupants=st.none() | st.integers(0, 255),
    peak_acceleration=st.none() | _finite,
    delta_v=st.none() | _finite,
    catalogue_id=st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
)


@settings(max_examples=300)
@given(events)
def test_round_trip(event: CrashEvent) -> None:
    encoded = encode_event(event)
    assert decode_event(encoded) == event
    assert json.loads(encoded[2:].decode("utf-8"))["sequence"] == event.sequence


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"heading_deg": float("nan")}, "'heading_deg': must be a finite number"),
        ({"delta_v": float("inf")}, "'delta_v': must be a finite number"),
        ({"trigger": "rollover"}, "'trigger': must be 'airbag' or 'acceleration'"),
        ({"catalogue_id": "XYZ"}, "'catalogue_id': must be 16 lower-case hex digits"),
        ({"sequence": -1}, "'sequence': must be an integer from 0"),
        ({"occupants": True}, "'occupants': must be an integer"),
        ({"vehicle_id": ""}, "'vehicle_id': must be text"),
        (
            {"position": Position(91.0, 0.0, 0)},
            "'position.latitude': must be a finite number from -90",
        ),
        (
            {"previous_positions": (EVENT.position,) * 3},
            "'previous_positions': must be a list of at most 2",
        ),
    ],
)
def test_encoder_refuses_bad_fields(change: dict[str, object], problem: str) -> None:
    with pytest.raises(EncodeError, match=re.escape(problem)):
        encode_event(replace(EVENT, **change))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "problem", "offset"),
    [
        (b"\x01\x02\xff{}", "not UTF-8", 2),
        (b'\x01\x02{"vin": ', "invalid JSON: Expecting value", 10),
        (b"\x01\x02" + json.dumps(DOCUMENT).encode() + b" x", "invalid JSON: Extra data", None),
        (b"\x01\x02[]", "the event is not a JSON object", 2),
        (payload({k: v for k, v in DOCUMENT.items() if k != "severity"}), "'severity': missing", 2),
        (payload({**DOCUMENT, "time_ms": 1.5}), "'time_ms': must be an integer", None),
        (payload({**DOCUMENT, "time_ms": 2**63}), "'time_ms': must be an integer", None),
        (payload({**DOCUMENT, "occupants": "2"}), "'occupants': must be an integer", None),
        (payload({**DOCUMENT, "position": [1, 2]}), "'position': must be an object", None),
        (
            payload({**DOCUMENT, "previous_positions": [_PLACE, {**_PLACE, "latitude": 100}]}),
            "'previous_positions[1].latitude': must be a finite number from -90 to 90",
            None,
        ),
        (payload({**DOCUMENT, "position": {"latitude": 1}}), "'position.longitude': missing", None),
        (
            payload(DOCUMENT).replace(b'"delta_v": 42.0', b'"delta_v": 1e400'),
            "'delta_v': must be a finite number",
            None,
        ),
        (payload(DOCUMENT)[:-1] + b',"delta_v":NaN}', "NaN is not a JSON number", None),
        (
            b"\x01\x02" + json.dumps(DOCUMENT).encode()[:-1] + b',"vin":null}',
            "'vin': appears twice",
            None,
        ),
        (b"\x01\x02" + b" " * 70_000, "event payload of 70,002 bytes", 65_536),
        (b"\x01\x01" + b"{}", "not an event payload", 1),
        (b"\x01\x02" + b"[" * 30_000 + b"]" * 30_000, "JSON nested too deeply", 2),
    ],
)
def test_damaged_events(data: bytes, problem: str, offset: int | None) -> None:
    with pytest.raises(MalformedPayloadError, match=re.escape(problem)) as caught:
        decode_event(data)
    if offset is not None:
        assert caught.value.offset == offset
    field = re.search(r"field '([^']+)'", str(caught.value))
    if field and "missing" not in problem:  # the offset points at the field's (last) key
        key = re.findall(r"[a-z_]+", field.group(1))[-1]
        assert data[caught.value.offset :].startswith(f'"{key}"'.encode())


def test_other_versions_and_kinds() -> None:
    with pytest.raises(UnsupportedVersionError):
        decode_event(b"\x02\x02{}")
    with pytest.raises(MalformedPayloadError, match="not a telemetry payload"):
        decode_telemetry(encode_event(EVENT), MIXED)


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_wire_errors(data: bytes) -> None:
    for candidate in (data, b"\x01\x02" + data):
        with contextlib.suppress(MalformedPayloadError, UnsupportedVersionError):
            decode_event(candidate)


_ENCODED = encode_event(EVENT)


@settings(max_examples=500)
@given(st.integers(0, len(_ENCODED) - 1), st.integers(1, 255))
def test_single_byte_corruption(where: int, flip: int) -> None:
    damaged = bytearray(_ENCODED)
    damaged[where] ^= flip
    try:
        decode_event(bytes(damaged))
        peek(bytes(damaged))
    except (MalformedPayloadError, UnsupportedVersionError):
        pass
