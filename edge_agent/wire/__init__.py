"""The wire format: telemetry and event payloads, made on the edge and read in the cloud.

>>> schema = WireSchema.from_catalogue(demo_catalogue())
>>> payload = encode_telemetry(TelemetryBatch(schema.catalogue_id, 7, series), schema)
>>> header = peek(payload)                       # version, kind, catalogue id, sequence
>>> batch = decode_telemetry(payload, schemas[header.catalogue_id])
>>> schema.physical(batch.series[0].signal, batch.series[0].raw)

Every payload starts with the version byte (`WIRE_VERSION`) and the kind byte
(`PayloadKind`). Telemetry is columnar and compressed; crash events are JSON that a rescue
service reads without this code. The contract, byte by byte: docs/wire-format.md.

This package needs only the standard library, NumPy and `dbc`, so the cloud imports it
without the edge's dependencies.

Errors::

    WireError
     ├── MalformedPayloadError      the bytes break the format (what, at which byte)
     ├── UnsupportedVersionError    a version byte this code does not read
     ├── CatalogueMismatchError     made with another catalogue than the schema's
     ├── UnknownSignalError         no such VSS path or signal number
     └── EncodeError                a batch or event breaks the contract
"""

from ._envelope import WIRE_VERSION, Header, PayloadKind
from .codec import (
    MAX_BODY_BYTES,
    Capture,
    Series,
    TelemetryBatch,
    decode_telemetry,
    encode_telemetry,
    peek,
)
from .errors import (
    CatalogueMismatchError,
    EncodeError,
    MalformedPayloadError,
    UnknownSignalError,
    UnsupportedVersionError,
    WireError,
)
from .events import CrashEvent, Position, decode_event, encode_event
from .schema import SignalSpec, WireSchema

__all__ = [
    "MAX_BODY_BYTES",
    "WIRE_VERSION",
    "Capture",
    "CatalogueMismatchError",
    "CrashEvent",
    "EncodeError",
    "Header",
    "MalformedPayloadError",
    "PayloadKind",
    "Position",
    "Series",
    "SignalSpec",
    "TelemetryBatch",
    "UnknownSignalError",
    "UnsupportedVersionError",
    "WireError",
    "WireSchema",
    "decode_event",
    "decode_telemetry",
    "encode_event",
    "encode_telemetry",
    "peek",
]
