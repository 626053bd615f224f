"""What every payload starts with: the version byte and the kind byte."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .errors import MalformedPayloadError, UnsupportedVersionError

WIRE_VERSION = 1
SUPPORTED_VERSIONS = (1,)  # versions this code reads


class PayloadKind(IntEnum):
    """The second byte of every payload."""

    TELEMETRY = 1
    EVENT = 2


@dataclass(frozen=True, slots=True)
class Header:
    """What `peek` reads from a payload without decompressing it.

    ``catalogue_id`` is None only for a payload kind that carries none (none in version 1).
    """

    version: int
    kind: PayloadKind
    catalogue_id: str | None
    sequence: int


def read_kind(data: bytes) -> PayloadKind:
    """Check the version byte and return the kind byte of ``data``."""
    if not data:
        raise MalformedPayloadError("empty payload", 0)
    if data[0] not in SUPPORTED_VERSIONS:
        raise UnsupportedVersionError(data[0], SUPPORTED_VERSIONS)
    if len(data) < 2:
        raise MalformedPayloadError("truncated: no kind byte", 1)
    try:
        return PayloadKind(data[1])
    except ValueError:
        raise MalformedPayloadError(f"unknown payload kind {data[1]}", 1) from None
