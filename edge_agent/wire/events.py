"""Crash event payloads: the version byte, the kind byte, then compact UTF-8 JSON.

A rescue service reads the JSON with any JSON parser: one object whose keys are the field
names of `CrashEvent` (docs/wire-format.md lists them with their types and units). Readers
ignore keys they do not know, so a key can be added without a new version; removing or
changing one needs a new version byte.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Literal

from ._envelope import WIRE_VERSION, PayloadKind, read_kind
from .errors import EncodeError, MalformedPayloadError

__all__ = ["MAX_EVENT_BYTES", "CrashEvent", "Position", "decode_event", "encode_event"]

MAX_EVENT_BYTES = 64 * 1024
MAX_TEXT = 256  # characters of a text field
MAX_PREVIOUS_POSITIONS = 2

_CATALOGUE_ID = re.compile(r"[0-9a-f]{16}")
_INT64 = 1 << 63


@dataclass(frozen=True, slots=True)
class Position:
    """A WGS 84 position in degrees and when it was fixed (ms since the Unix epoch)."""

    latitude: float
    longitude: float
    time_ms: int


@dataclass(frozen=True, slots=True)
class CrashEvent:
    """What a rescue service needs to know about a crash (after eCall's minimum set of data).

    ``severity`` is ``MINOR``, ``MODERATE``, ``SEVERE`` or the DBC's label;
    ``previous_positions`` holds up to two earlier positions, newest first (the direction of
    travel); ``peak_acceleration`` is in m/s^2, ``delta_v`` in km/h, ``heading_deg`` in
    degrees clockwise from true north.
    """

    vehicle_id: str
    vin: str | None
    sequence: int
    time_ms: int
    trigger: Literal["airbag", "acceleration"]
    severity: str
    position: Position | None
    heading_deg: float | None
    previous_positions: tuple[Position, ...]
    propulsion: str
    occupants: int | None
    peak_acceleration: float | None
    delta_v: float | None
    catalogue_id: str


class _Problem(Exception):
    """A field's value breaks the contract: ``field`` is its dotted name ("" for none)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field {field!r}: {problem}" if field else problem)
        self.field = field


def encode_event(event: CrashEvent) -> bytes:
    """The payload of ``event``. Raises `EncodeError` naming the field that is wrong."""
    try:
        checked = _event(_document(event))
    except _Problem as exc:
        raise EncodeError(f"crash event: {exc}") from None
    text = json.dumps(
        _document(checked), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    payload = bytes((WIRE_VERSION, PayloadKind.EVENT)) + text.encode("utf-8")
    if len(payload) > MAX_EVENT_BYTES:
        raise EncodeError(f"crash event of {len(payload):,} bytes (at most {MAX_EVENT_BYTES:,})")
    return payload


def decode_event(payload: bytes) -> CrashEvent:
    """The crash event of a payload. Raises `MalformedPayloadError` naming field and byte."""
    data = bytes(payload)
    kind = read_kind(data)
    if kind is not PayloadKind.EVENT:
        raise MalformedPayloadError(f"not an event payload (kind {kind} {kind.name})", 1)
    if len(data) > MAX_EVENT_BYTES:
        raise MalformedPayloadError(
            f"event payload of {len(data):,} bytes (at most {MAX_EVENT_BYTES:,})", MAX_EVENT_BYTES
        )
    try:
        text = data[2:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPayloadError(f"not UTF-8 ({exc.reason})", 2 + exc.start) from None
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        at = 2 + len(text[: exc.pos].encode("utf-8"))
        raise MalformedPayloadError(f"invalid JSON: {exc.msg}", at) from None
    except _Problem as exc:
        raise MalformedPayloadError(str(exc), _field_offset(data, exc.field)) from None
    except _Constant as exc:
        at = data.find(str(exc).encode(), 2)
        raise MalformedPayloadError(f"{exc} is not a JSON number", at) from None
    except RecursionError:
        raise MalformedPayloadError("JSON nested too deeply", 2) from None
    try:
        return _event(document)
    except _Problem as exc:
        raise MalformedPayloadError(str(exc), _field_offset(data, exc.field)) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Problem(key, "appears twice")
        out[key] = value
    return out


class _Constant(Exception):
    """``NaN``, ``Infinity`` or ``-Infinity``, which Python's parser would otherwise accept."""


def _no_constant(name: str) -> Any:
    raise _Constant(name)


def _field_offset(data: bytes, field: str) -> int:
    """Where the field's key is (nested keys searched in order), else the start of the JSON."""
    at, skip = 2, 0
    for token in re.findall(r"[A-Za-z_]\w*|\[\d+\]", field):
        if token.startswith("["):
            skip = int(token[1:-1])  # the key's occurrence within the list
            continue
        key = json.dumps(token).encode()
        for _ in range(skip + 1):
            found = data.find(key, at)
            if found < 0:
                return at
            at = found + 1
        at, skip = found, 0
    return at


def _document(event: CrashEvent) -> dict[str, Any]:
    """The event's JSON object, keys in field order."""
    return {
        "vehicle_id": event.vehicle_id,
        "vin": event.vin,
        "sequence": event.sequence,
        "time_ms": event.time_ms,
        "trigger": event.trigger,
        "severity": event.severity,
        "position": _position_json(event.position),
        "heading_deg": event.heading_deg,
        "previous_positions": [_position_json(p) for p in event.previous_positions],
        "propulsion": event.propulsion,
        "occupants": event.occupants,
        "peak_acceleration": event.peak_acceleration,
        "delta_v": event.delta_v,
        "catalogue_id": event.catalogue_id,
    }


def _position_json(position: Position | None) -> dict[str, Any] | None:
    if position is None:
        return None
    return {
        "latitude": position.latitude,
        "longitude": position.longitude,
        "time_ms": position.time_ms,
    }


# -- field checks: each takes a JSON value and returns the field's value ---------------------


def _event(document: Any) -> CrashEvent:
    if not isinstance(document, dict):
        raise _Problem("", "the event is not a JSON object")

    def get(key: str, check: Callable[[str, Any], Any]) -> Any:
        if key not in document:
            raise _Problem(key, "missing")
        return check(key, document[key])

    return CrashEvent(
        vehicle_id=get("vehicle_id", _text),
        vin=get("vin", _optional(_text)),
        sequence=get("sequence", _sequence),
        time_ms=get("time_ms", _int64),
        trigger=get("trigger", _trigger),
        severity=get("severity", _text),
        position=get("position", _optional(_position)),
        heading_deg=get("heading_deg", _optional(_real)),
        previous_positions=get("previous_positions", _positions),
        propulsion=get("propulsion", _text),
        occupants=get("occupants", _optional(_count)),
        peak_acceleration=get("peak_acceleration", _optional(_real)),
        delta_v=get("delta_v", _optional(_real)),
        catalogue_id=get("catalogue_id", _catalogue_id),
    )


def _optional(check: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    def optional(field: str, value: Any) -> Any:
        return None if value is None else check(field, value)

    return optional


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT:
        raise _Problem(field, f"must be text of 1 to {MAX_TEXT} characters, not {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape, e.g. "\ud800"
        raise _Problem(field, f"is not Unicode text (a lone surrogate): {value!r}") from None
    return value


def _integer(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= int(value) <= high:
        raise _Problem(field, f"must be an integer from {low} to {high}, not {value!r}")
    return int(value)


def _int64(field: str, value: Any) -> int:
    return _integer(field, value, -_INT64, _INT64 - 1)


def _sequence(field: str, value: Any) -> int:
    return _integer(field, value, 0, _INT64 - 1)


def _count(field: str, value: Any) -> int:
    return _integer(field, value, 0, 255)


def _real(field: str, value: Any, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise _Problem(field, f"must be a number, not {value!r}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not (math.isfinite(number) and low <= number <= high):
        limits = "" if math.isinf(low) else f" from {low:g} to {high:g}"
        raise _Problem(field, f"must be a finite number{limits}, not {value!r}")
    return number


def _trigger(field: str, value: Any) -> str:
    if value not in ("airbag", "acceleration"):
        raise _Problem(field, f"must be 'airbag' or 'acceleration', not {value!r}")
    return str(value)


def _catalogue_id(field: str, value: Any) -> str:
    if not isinstance(value, str) or not _CATALOGUE_ID.fullmatch(value):
        raise _Problem(field, f"must be 16 lower-case hex digits, not {value!r}")
    return value


def _position(field: str, value: Any) -> Position:
    if not isinstance(value, dict):
        raise _Problem(field, f"must be an object with latitude, longitude, time_ms, not {value!r}")
    for key in ("latitude", "longitude", "time_ms"):
        if key not in value:
            raise _Problem(f"{field}.{key}", "missing")
    return Position(
        latitude=_real(f"{field}.latitude", value["latitude"], -90.0, 90.0),
        longitude=_real(f"{field}.longitude", value["longitude"], -180.0, 180.0),
        time_ms=_int64(f"{field}.time_ms", value["time_ms"]),
    )


def _positions(field: str, value: Any) -> tuple[Position, ...]:
    if not isinstance(value, list | tuple) or len(value) > MAX_PREVIOUS_POSITIONS:
        raise _Problem(
            field, f"must be a list of at most {MAX_PREVIOUS_POSITIONS} positions, not {value!r}"
        )
    return tuple(_position(f"{field}[{i}]", p) for i, p in enumerate(value))
