"""Classify one received message: the rows it stores, or why it is a dead letter (pure).

::

    outcome = classify(topic, payload, received_ms=now_ms, registry=view, schemas=schemas,
                       limits=Limits(prefix="v1"))
    # TelemetryRows | EventRow | StatusRow, or Rejected(reason, detail)

A message is accepted only if its topic is ``<prefix>/<vehicle_id>/<kind>``, the vehicle is in
the registry, the payload is of the topic's kind and decodes, it names the topic's vehicle
(events and status documents carry one), its catalogue is known here and allowed for the
vehicle, and its times are plausible. Anything else is `Rejected` with a `Reason`; nothing
raises for bad input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, TypeAlias

from edge_agent.config import TOPIC_KINDS
from edge_agent.wire import (
    PayloadKind,
    UnsupportedVersionError,
    WireError,
    WireSchema,
    decode_event,
    decode_telemetry,
    peek,
)

from ..storage import (
    EventRow,
    RowError,
    StatusRow,
    TelemetryRows,
    TimeRangeError,
    VehicleMismatchError,
    event_row,
    status_row,
)
from ..storage import telemetry_rows as make_telemetry_rows

__all__ = [
    "TOPIC_KINDS",
    "Limits",
    "Outcome",
    "Reason",
    "RegistryView",
    "Rejected",
    "classify",
    "split_topic",
]


class Reason(StrEnum):
    """Why a message became a dead letter (the ``dead_letter.reason`` column)."""

    BAD_TOPIC = "bad_topic"  # not <prefix>/<vehicle_id>/<telemetry|events|status>
    MALFORMED = "malformed"  # the payload breaks the wire format or the status document
    UNSUPPORTED_VERSION = "unsupported_version"  # a wire version this service does not read
    UNKNOWN_VEHICLE = "unknown_vehicle"  # the topic's vehicle is not in the registry
    TOPIC_MISMATCH = "topic_mismatch"  # payload kind or named vehicle differs from the topic
    UNKNOWN_CATALOGUE = "unknown_catalogue"  # no schema here for the payload's catalogue
    CATALOGUE_NOT_ALLOWED = "catalogue_not_allowed"  # the vehicle may not send that catalogue
    ABSURD_TIME = "absurd_time"  # samples before min_year or too far in the future
    STORAGE_REFUSED = "storage_refused"  # the database refused the rows (a permanent error)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that cannot be stored: the reason and a sentence saying what and where."""

    reason: Reason
    detail: str


Outcome: TypeAlias = TelemetryRows | EventRow | StatusRow | Rejected


class RegistryView(Protocol):
    """What classification needs of the vehicle registry."""

    def catalogues(self, vehicle_id: str) -> frozenset[str] | None:
        """The catalogue ids ``vehicle_id`` may send (empty: any known here); None: unknown."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The topic prefix and the plausible time window."""

    prefix: str = "v1"
    max_future_ms: int = 3_600_000
    min_year: int = 2000

    @property
    def min_ms(self) -> int:
        return int(datetime(self.min_year, 1, 1, tzinfo=UTC).timestamp() * 1000)


# What each last level of a vehicle's topics carries (docs/mqtt-topics.md; the levels are
# the agent's, `edge_agent.config.TOPIC_KINDS`).
_KINDS = {"telemetry": PayloadKind.TELEMETRY, "events": PayloadKind.EVENT, "status": None}
if set(_KINDS) != set(TOPIC_KINDS):  # pragma: no cover - a change to the topic layout
    raise ImportError(f"topic kinds {sorted(_KINDS)} differ from the agent's {TOPIC_KINDS}")


def split_topic(topic: str, prefix: str) -> tuple[str, str] | None:
    """``(vehicle_id, kind)`` of ``<prefix>/<vehicle_id>/<kind>``, else None."""
    head, sep, rest = topic.rpartition("/")
    if not sep:
        return None
    start, sep, vehicle = head.rpartition("/")
    if not sep or start != prefix or not vehicle or rest not in _KINDS:
        return None
    return vehicle, rest


def classify(
    topic: str,
    payload: bytes,
    *,
    received_ms: int,
    registry: RegistryView,
    schemas: Mapping[str, WireSchema],
    limits: Limits,
) -> Outcome:
    """What ``payload`` received on ``topic`` at ``received_ms`` stores, or why it cannot."""
    parts = split_topic(topic, limits.prefix)
    if parts is None:
        return Rejected(
            Reason.BAD_TOPIC,
            f"topic {topic!r} is not {limits.prefix}/<vehicle_id>/<telemetry|events|status>",
        )
    vehicle_id, kind = parts
    allowed = registry.catalogues(vehicle_id)
    if allowed is None:
        return Rejected(Reason.UNKNOWN_VEHICLE, f"vehicle {vehicle_id!r} is not registered")
    received_at = datetime.fromtimestamp(received_ms / 1000, UTC)
    try:
        if kind == "status":
            row = status_row(vehicle_id, payload)
            return _check_times(row, row.time, row.time, received_ms, limits)
        return _wire(vehicle_id, kind, payload, allowed, received_at, received_ms, schemas, limits)
    except UnsupportedVersionError as exc:
        return Rejected(Reason.UNSUPPORTED_VERSION, str(exc))
    except WireError as exc:
        return Rejected(Reason.MALFORMED, str(exc))
    except VehicleMismatchError as exc:
        return Rejected(Reason.TOPIC_MISMATCH, str(exc))
    except TimeRangeError as exc:
        return Rejected(Reason.ABSURD_TIME, str(exc))
    except RowError as exc:
        return Rejected(Reason.MALFORMED, str(exc))


def _wire(
    vehicle_id: str,
    kind: str,
    payload: bytes,
    allowed: frozenset[str],
    received_at: datetime,
    received_ms: int,
    schemas: Mapping[str, WireSchema],
    limits: Limits,
) -> Outcome:
    header = peek(payload)
    if header.kind is not _KINDS[kind]:
        return Rejected(
            Reason.TOPIC_MISMATCH,
            f"a {header.kind.name.lower()} payload on the {kind} topic of {vehicle_id!r}",
        )
    catalogue = header.catalogue_id or ""
    if allowed and catalogue not in allowed:
        return Rejected(
            Reason.CATALOGUE_NOT_ALLOWED,
            f"vehicle {vehicle_id!r} may not send catalogue {catalogue} "
            f"(allowed: {', '.join(sorted(allowed))})",
        )
    if header.kind is PayloadKind.EVENT:
        event = decode_event(payload)
        row = event_row(vehicle_id, event)
        return _check_times(row, row.time, row.time, received_ms, limits)
    schema = schemas.get(catalogue)
    if schema is None:
        return Rejected(Reason.UNKNOWN_CATALOGUE, f"no signal catalogue {catalogue} here")
    batch = decode_telemetry(payload, schema)
    rows = make_telemetry_rows(vehicle_id, batch, schema, received_at=received_at)
    if rows.batch.first_time is None or rows.batch.last_time is None:
        return rows
    return _check_times(rows, rows.batch.first_time, rows.batch.last_time, received_ms, limits)


def _check_times(
    row: TelemetryRows | EventRow | StatusRow,
    first: datetime,
    last: datetime,
    received_ms: int,
    limits: Limits,
) -> Outcome:
    first_ms = round(first.timestamp() * 1000)
    last_ms = round(last.timestamp() * 1000)
    if first_ms < limits.min_ms:
        return Rejected(
            Reason.ABSURD_TIME, f"a time of {first.isoformat()} is before {limits.min_year}"
        )
    if last_ms > received_ms + limits.max_future_ms:
        ahead = (last_ms - received_ms) / 1000
        return Rejected(
            Reason.ABSURD_TIME,
            f"a time of {last.isoformat()} is {ahead:.0f} s after the message was received",
        )
    return row
