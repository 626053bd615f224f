"""Telemetry payloads: batches of per-signal series as compact bytes, and back.

The layout is documented byte by byte in docs/wire-format.md; in short::

    version, kind, flags, catalogue id (8 bytes), sequence, base time, [capture]
    body (zlib, or stored when that is shorter):
        series count, directory (signal, count, time reference per series),
        time section (delta-of-delta zigzag varints), integer section (delta zigzag
        varints), float section (IEEE bit patterns, little-endian)

Encoding and decoding are vectorised per section, so a payload costs a handful of NumPy calls
however many series it holds. Both sides validate: the encoder refuses what the decoder would
refuse, and the decoder turns any damage into `MalformedPayloadError` naming the byte.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from . import _varint
from ._body import Column, Section, decode_body, encode_body
from ._envelope import WIRE_VERSION, Header, PayloadKind, read_kind
from ._varint import VarintError
from .errors import (
    CatalogueMismatchError,
    EncodeError,
    MalformedPayloadError,
)
from .events import decode_event
from .schema import WireSchema

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_CAPTURE_NAME_BYTES",
    "Capture",
    "Series",
    "TelemetryBatch",
    "decode_telemetry",
    "encode_telemetry",
    "peek",
]

# A decompressed telemetry body, on both sides: over 10 million samples, while decoding a
# hostile body of this size takes about 340 MiB at most.
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_CAPTURE_NAME_BYTES = 255
ZLIB_LEVEL = 9

_FLAG_CAPTURE = 0x01
_CODING_SHIFT = 1
_CODING_MASK = 0x06
_RESERVED_FLAGS = 0xF8
_STORED = 0
_ZLIB = 1
_SEQUENCE_LIMIT = 1 << 63
_INT64_MIN = -(1 << 63)


@dataclass(frozen=True, slots=True, eq=False)
class Series:
    """One signal's samples: times in ms since the Unix epoch (non-decreasing), raw values.

    ``raw`` holds the decoder's raw integers: sign-extended for signed signals, the IEEE bit
    pattern for float signals, an unsigned 64-bit value above 2**63-1 wrapped negative.
    """

    signal: int
    times_ms: npt.NDArray[np.int64]
    raw: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.raw)


@dataclass(frozen=True, slots=True)
class Capture:
    """A triggered capture: the trigger's name in the agent's configuration, when it fired."""

    name: str
    trigger_ms: int


@dataclass(frozen=True, slots=True, eq=False)
class TelemetryBatch:
    """One telemetry payload's content.

    ``sequence`` numbers a vehicle's batches (>= 0, strictly increasing per vehicle); the
    cloud drops duplicates by it. Each signal appears in one series at most.
    """

    catalogue_id: str
    sequence: int
    series: tuple[Series, ...]
    capture: Capture | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "series", tuple(self.series))

    @property
    def samples(self) -> int:
        """Samples in all series."""
        return sum(len(s.raw) for s in self.series)


# -- encoding -------------------------------------------------------------------------------


def encode_telemetry(batch: TelemetryBatch, schema: WireSchema, *, compress: bool = True) -> bytes:
    """The payload of ``batch``, made with ``schema`` (its catalogue must be the batch's).

    The body is compressed with zlib unless that does not make it shorter, or ``compress`` is
    false (a stored body is easier to read by eye).

    Raises `CatalogueMismatchError`, or `EncodeError` naming the series and sample that break
    the contract (unknown or repeated signal, raw value outside the signal's bits, times going
    backwards, ...).
    """
    if batch.catalogue_id != schema.catalogue_id:
        raise CatalogueMismatchError(schema.catalogue_id, batch.catalogue_id)
    sequence = batch.sequence
    if not isinstance(sequence, int) or not 0 <= sequence < _SEQUENCE_LIMIT:
        raise EncodeError(f"sequence must be an integer from 0 to 2**63-1, not {sequence!r}")
    columns = _checked_columns(batch.series, schema)
    firsts = [int(c.times[0]) for c in columns if len(c.times)]
    base = min(firsts, default=0)
    body = encode_body(columns, base)
    if len(body) > MAX_BODY_BYTES:
        raise EncodeError(
            f"the batch's body is {len(body):,} bytes; the limit is {MAX_BODY_BYTES:,} "
            "(split the batch)"
        )
    capture = b"" if batch.capture is None else _encode_capture(batch.capture)
    coding, stored = _STORED, body
    if compress:
        compressed = zlib.compress(body, ZLIB_LEVEL)
        if len(compressed) < len(body):
            coding, stored = _ZLIB, compressed
    flags = coding << _CODING_SHIFT | (_FLAG_CAPTURE if capture else 0)
    return b"".join(
        (
            bytes((WIRE_VERSION, PayloadKind.TELEMETRY, flags)),
            bytes.fromhex(batch.catalogue_id),
            _varint.encode_uint(sequence),
            _varint.encode_sint(base),
            capture,
            stored,
        )
    )


def _encode_capture(capture: Capture) -> bytes:
    name = capture.name.encode("utf-8") if isinstance(capture.name, str) else None
    if name is None or len(name) > MAX_CAPTURE_NAME_BYTES:
        raise EncodeError(
            f"a capture name is text of at most {MAX_CAPTURE_NAME_BYTES} UTF-8 bytes, "
            f"not {capture.name!r}"
        )
    trigger = capture.trigger_ms
    if not isinstance(trigger, int) or not _INT64_MIN <= trigger < -_INT64_MIN:
        raise EncodeError(f"capture trigger_ms must be a 64-bit integer, not {trigger!r}")
    return _varint.encode_sint(trigger) + _varint.encode_uint(len(name)) + name


def _checked_columns(series: Sequence[Series], schema: WireSchema) -> list[Column]:
    columns: list[Column] = []
    seen: dict[int, int] = {}
    for i, s in enumerate(series):
        number = s.signal
        if not isinstance(number, int | np.integer) or not 0 <= number < len(schema.signals):
            raise EncodeError(
                f"series {i}: unknown signal number {number!r} (catalogue "
                f"{schema.catalogue_id} has {len(schema.signals)} signals)"
            )
        spec = schema.signals[number]
        where = f"series {i} (signal {number}, {spec.vss})"
        if number in seen:
            raise EncodeError(f"{where}: the signal already has series {seen[number]}")
        seen[int(number)] = i
        times = _int64_array(s.times_ms, f"{where}: times_ms", wrap=False)
        raw = _int64_array(s.raw, f"{where}: raw", wrap=True)
        if len(times) != len(raw):
            raise EncodeError(f"{where}: {len(times)} times but {len(raw)} raw values")
        backwards = np.flatnonzero(times[1:] < times[:-1])
        if len(backwards):
            j = int(backwards[0]) + 1
            raise EncodeError(
                f"{where}: times go backwards at sample {j} "
                f"({int(times[j])} ms after {int(times[j - 1])} ms)"
            )
        outside = np.flatnonzero((raw < spec.raw_min) | (raw > spec.raw_max))
        if len(outside):
            j = int(outside[0])
            raise EncodeError(
                f"{where}: raw value {int(raw[j])} at sample {j} is outside the signal's "
                f"range {spec.raw_min}..{spec.raw_max} ({spec.length} bits, "
                f"{'signed' if spec.is_signed else 'unsigned'})"
            )
        columns.append(Column(spec, times, raw))
    return columns


def _int64_array(values: object, what: str, *, wrap: bool) -> npt.NDArray[np.int64]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise EncodeError(f"{what} must be one-dimensional, not of shape {array.shape}")
    if array.dtype == np.int64:
        return array
    if wrap and array.dtype == np.uint64:
        return array.view(np.int64)
    if (array.dtype.kind in "iu" and np.can_cast(array.dtype, np.int64)) or not len(array):
        return array.astype(np.int64)
    raise EncodeError(f"{what} must hold 64-bit integers, not {array.dtype}")


# -- decoding -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Head:
    """A telemetry header as read, and where the body starts."""

    version: int
    catalogue_id: str
    sequence: int
    coding: int
    base: int
    capture: Capture | None
    body_start: int

    @property
    def header(self) -> Header:
        return Header(self.version, PayloadKind.TELEMETRY, self.catalogue_id, self.sequence)


def peek(payload: bytes) -> Header:
    """The version, kind, catalogue id and sequence of a payload, without decompressing it.

    The cloud picks the schema by ``catalogue_id`` before `decode_telemetry`. For an event
    payload the JSON is read (it is small and not compressed).
    """
    data = bytes(payload)
    kind = read_kind(data)
    if kind is PayloadKind.EVENT:
        event = decode_event(data)
        return Header(data[0], kind, event.catalogue_id, event.sequence)
    return _read_head(data).header


def decode_telemetry(payload: bytes, schema: WireSchema) -> TelemetryBatch:
    """The batch of a telemetry payload made with ``schema``'s catalogue.

    Raises `UnsupportedVersionError`, `CatalogueMismatchError`, or `MalformedPayloadError`
    naming what is wrong and the byte offset, for any damage.
    """
    data = bytes(payload)
    kind = read_kind(data)
    if kind is not PayloadKind.TELEMETRY:
        raise MalformedPayloadError(f"not a telemetry payload (kind {kind} {kind.name})", 1)
    head = _read_head(data)
    if head.catalogue_id != schema.catalogue_id:
        raise CatalogueMismatchError(schema.catalogue_id, head.catalogue_id)
    body, section = _inflate(data, head)
    columns = decode_body(body, schema, head.base, section)
    series = tuple(Series(c.spec.number, c.times, c.raw) for c in columns)
    return TelemetryBatch(head.catalogue_id, head.sequence, series, head.capture)


def _uint(data: bytes, pos: int, field: str) -> tuple[int, int]:
    try:
        return _varint.read_uint(data, pos)
    except VarintError as exc:
        raise MalformedPayloadError(f"{field}: {exc.problem}", exc.offset) from None


def _sint(data: bytes, pos: int, field: str) -> tuple[int, int]:
    try:
        return _varint.read_sint(data, pos)
    except VarintError as exc:
        raise MalformedPayloadError(f"{field}: {exc.problem}", exc.offset) from None


def _read_head(data: bytes) -> _Head:
    """The telemetry header of ``data``, whose version and kind were checked."""
    if len(data) < 11:
        raise MalformedPayloadError(
            f"truncated header: {len(data)} bytes, the fixed part has 11", len(data)
        )
    flags = data[2]
    if flags & _RESERVED_FLAGS:
        raise MalformedPayloadError(f"reserved flag bits are set (flags 0x{flags:02x})", 2)
    coding = (flags & _CODING_MASK) >> _CODING_SHIFT
    if coding not in (_STORED, _ZLIB):
        raise MalformedPayloadError(f"unknown body coding {coding} (flags 0x{flags:02x})", 2)
    catalogue_id = data[3:11].hex()
    sequence, pos = _uint(data, 11, "sequence")
    if sequence >= _SEQUENCE_LIMIT:
        raise MalformedPayloadError("sequence exceeds 2**63-1", 11)
    base, pos = _sint(data, pos, "base time")
    capture = None
    if flags & _FLAG_CAPTURE:
        capture, pos = _read_capture(data, pos)
    if pos >= len(data):
        raise MalformedPayloadError("truncated: the payload ends before the body", pos)
    return _Head(data[0], catalogue_id, sequence, coding, base, capture, pos)


def _read_capture(data: bytes, pos: int) -> tuple[Capture, int]:
    trigger, pos = _sint(data, pos, "capture trigger time")
    size_at = pos
    size, pos = _uint(data, pos, "capture name length")
    if size > MAX_CAPTURE_NAME_BYTES:
        raise MalformedPayloadError(
            f"capture name of {size} bytes (at most {MAX_CAPTURE_NAME_BYTES})", size_at
        )
    if pos + size > len(data):
        raise MalformedPayloadError("truncated capture name", pos)
    try:
        name = data[pos : pos + size].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPayloadError(
            f"capture name is not UTF-8 ({exc.reason})", pos + exc.start
        ) from None
    return Capture(name, trigger), pos + size


def _inflate(data: bytes, head: _Head) -> tuple[bytes, Section]:
    """The body of a payload: as stored, or decompressed within `MAX_BODY_BYTES`."""
    stored = data[head.body_start :]
    if head.coding == _STORED:
        return stored, Section("payload", head.body_start)
    inflater = zlib.decompressobj()
    try:
        body = inflater.decompress(stored, MAX_BODY_BYTES + 1)
    except zlib.error as exc:
        raise MalformedPayloadError(
            f"the body does not decompress ({exc})", head.body_start
        ) from None
    if len(body) > MAX_BODY_BYTES:
        raise MalformedPayloadError(
            f"the body decompresses to more than {MAX_BODY_BYTES:,} bytes, the limit",
            head.body_start,
        )
    if not inflater.eof:
        raise MalformedPayloadError("truncated compressed body", len(data))
    if inflater.unused_data:
        extra = len(inflater.unused_data)
        raise MalformedPayloadError(
            f"{extra} trailing bytes after the compressed body", len(data) - extra
        )
    return body, Section("decompressed body")
