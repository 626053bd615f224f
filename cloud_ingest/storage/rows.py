"""Rows to store: decoded telemetry batches and crash events as the schema's rows, no I/O.

The formatter half of the storage writer (`cloud_ingest.storage.writer` ships the rows)::

    rows = telemetry_rows("veh-1", batch, schema, received_at=now)
    rows.batch      # the telemetry_batch row (the duplicate filter)
    rows.series     # telemetry_series rows: one per series, or more for a series over a day
    rows.latest     # latest_state candidates: the last sample of each series
    event_row("veh-1", crash)   # the event row of a crash event
    status_row("veh-1", payload)   # the vehicle_status row of a status document

Rows name signals by VSS path; the writer turns paths into the ``signal`` table's ids.
Times are ``datetime`` in UTC with millisecond precision, series times int4 ms offsets from
the series' first sample (docs/schema.md).

Errors: `RowError` (a `StorageError` and a `ValueError`) for a batch or event that cannot
become rows (a time outside the storable range, another catalogue, another vehicle): it is
permanent, the payload belongs in the dead letters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from edge_agent.wire import CrashEvent, Series, TelemetryBatch, WireSchema, encode_event

from .errors import StorageError

__all__ = [
    "MAX_SERIES_SPAN_MS",
    "BatchRow",
    "DeadLetterRow",
    "EventRow",
    "LatestRow",
    "RowError",
    "SeriesRow",
    "StatusRow",
    "TelemetryRows",
    "TimeRangeError",
    "VehicleMismatchError",
    "event_row",
    "ms_to_datetime",
    "newest_states",
    "newest_statuses",
    "status_row",
    "telemetry_rows",
]

MAX_SERIES_SPAN_MS = 86_400_000  # a series row spans at most one day (a CHECK in the schema)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RowError(StorageError, ValueError):
    """A batch or event that cannot be stored as rows (permanent: dead-letter it)."""


class TimeRangeError(RowError):
    """A time outside the storable range (years 1 to 9999)."""


class VehicleMismatchError(RowError):
    """An event or status document naming another vehicle than the one it came from."""


@dataclass(frozen=True, slots=True)
class BatchRow:
    """A ``telemetry_batch`` row; ``first_time``/``last_time`` are None without samples."""

    vehicle_id: str
    sequence: int
    received_at: datetime
    catalogue_id: str
    first_time: datetime | None
    last_time: datetime | None
    samples: int
    capture_name: str | None
    capture_trigger: datetime | None


@dataclass(frozen=True, slots=True, eq=False)
class SeriesRow:
    """A ``telemetry_series`` row, its signal named by VSS path.

    ``times`` are int32 ms offsets from ``start_time``, ``physical`` float64 values and
    ``raw`` int64 raw values, as NumPy arrays of equal length.
    """

    vehicle_id: str
    path: str
    sequence: int
    start_time: datetime
    end_time: datetime
    times: npt.NDArray[np.int32]
    physical: npt.NDArray[np.float64]
    raw: npt.NDArray[np.int64]

    @property
    def n(self) -> int:
        """Samples in the row."""
        return len(self.raw)


@dataclass(frozen=True, slots=True)
class LatestRow:
    """A ``latest_state`` candidate: a signal's value at ``time``."""

    vehicle_id: str
    path: str
    time: datetime
    value: float
    raw: int


@dataclass(frozen=True, slots=True)
class TelemetryRows:
    """Everything one telemetry batch stores."""

    batch: BatchRow
    series: tuple[SeriesRow, ...]
    latest: tuple[LatestRow, ...]

    @property
    def key(self) -> tuple[str, int]:
        """The batch's ``(vehicle_id, sequence)``, its identity in ``telemetry_batch``."""
        return (self.batch.vehicle_id, self.batch.sequence)


@dataclass(frozen=True, slots=True)
class EventRow:
    """An ``event`` row; ``payload`` is the event's JSON text as sent on the wire."""

    vehicle_id: str
    sequence: int
    time: datetime
    kind: str
    payload: str


def ms_to_datetime(ms: int) -> datetime:
    """A time in ms since the Unix epoch as an aware UTC datetime; `RowError` if unstorable."""
    try:
        return _EPOCH + timedelta(milliseconds=int(ms))
    except OverflowError:
        raise TimeRangeError(
            f"time {ms} ms is outside the storable range (years 1 to 9999)"
        ) from None


def telemetry_rows(
    vehicle_id: str, batch: TelemetryBatch, schema: WireSchema, *, received_at: datetime
) -> TelemetryRows:
    """The rows of a decoded batch from ``vehicle_id``, received at ``received_at``.

    One series row per non-empty series (split into rows of at most one day), physical values
    by ``schema.physical``; one `LatestRow` per non-empty series, its last sample.
    """
    if received_at.tzinfo is None:
        raise RowError("received_at must be an aware datetime")
    if batch.catalogue_id != schema.catalogue_id:
        raise RowError(
            f"batch {batch.sequence} of catalogue {batch.catalogue_id} given with the schema "
            f"of catalogue {schema.catalogue_id}"
        )
    series: list[SeriesRow] = []
    latest: list[LatestRow] = []
    for one in batch.series:
        if len(one.raw) == 0:
            continue
        path = schema.signal(one.signal).vss
        physical = schema.physical(one.signal, one.raw)
        series.extend(_series_rows(vehicle_id, path, batch.sequence, one, physical))
        latest.append(
            LatestRow(
                vehicle_id,
                path,
                ms_to_datetime(int(one.times_ms[-1])),
                float(physical[-1]),
                int(one.raw[-1]),
            )
        )
    first = min((s.start_time for s in series), default=None)
    last = max((s.end_time for s in series), default=None)
    capture = batch.capture
    if capture is not None and "\x00" in capture.name:
        raise RowError(f"the capture name {capture.name!r} holds a NUL character")
    row = BatchRow(
        vehicle_id=vehicle_id,
        sequence=batch.sequence,
        received_at=received_at,
        catalogue_id=batch.catalogue_id,
        first_time=first,
        last_time=last,
        samples=batch.samples,
        capture_name=None if capture is None else capture.name,
        capture_trigger=None if capture is None else ms_to_datetime(capture.trigger_ms),
    )
    return TelemetryRows(row, tuple(series), tuple(latest))


def _series_rows(
    vehicle_id: str, path: str, sequence: int, series: Series, physical: npt.NDArray[np.float64]
) -> list[SeriesRow]:
    """``series`` as rows of at most one day each (times never decrease within a series)."""
    times = np.asarray(series.times_ms, dtype=np.int64)
    ms_to_datetime(int(times[0]))  # both ends storable, so no sum below overflows
    ms_to_datetime(int(times[-1]))
    rows = []
    start = 0
    while start < len(times):
        first = int(times[start])
        stop = int(np.searchsorted(times, first + MAX_SERIES_SPAN_MS, side="right"))
        offsets = times[start:stop] - first
        rows.append(
            SeriesRow(
                vehicle_id=vehicle_id,
                path=path,
                sequence=sequence,
                start_time=ms_to_datetime(first),
                end_time=ms_to_datetime(int(times[stop - 1])),
                times=offsets.astype(np.int32),
                physical=np.asarray(physical[start:stop], dtype=np.float64),
                raw=np.asarray(series.raw[start:stop], dtype=np.int64),
            )
        )
        start = stop
    return rows


def newest_states(rows: Iterable[LatestRow]) -> list[LatestRow]:
    """One row per (vehicle, signal): the newest time; on a tie the later row."""
    newest: dict[tuple[str, str], LatestRow] = {}
    for row in rows:
        key = (row.vehicle_id, row.path)
        kept = newest.get(key)
        if kept is None or row.time >= kept.time:
            newest[key] = row
    return list(newest.values())


def event_row(vehicle_id: str, event: CrashEvent) -> EventRow:
    """The ``event`` row of a crash event received on ``vehicle_id``'s topic.

    The payload is the event's wire JSON. An event naming another vehicle than the topic's is
    refused with `RowError`.
    """
    if event.vehicle_id != vehicle_id:
        raise VehicleMismatchError(
            f"crash event {event.sequence} names vehicle {event.vehicle_id!r} "
            f"but came from {vehicle_id!r}"
        )
    document = encode_event(event)[2:].decode("utf-8")  # after the version and kind bytes
    if _JSON_NUL.search(document):
        raise RowError(f"crash event {event.sequence} holds a NUL character in a text field")
    return EventRow(vehicle_id, event.sequence, ms_to_datetime(event.time_ms), "crash", document)


@dataclass(frozen=True, slots=True)
class StatusRow:
    """A ``vehicle_status`` row: a vehicle's presence document (docs/mqtt-topics.md)."""

    vehicle_id: str
    state: str
    time: datetime
    document: str


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """A ``dead_letter`` row: a message that could not be stored, its bytes as received."""

    topic: str
    client_id: str | None
    reason: str
    detail: str | None
    payload: bytes


_STATES = ("online", "offline")
# A \u0000 escape in JSON text (not an escaped backslash before "u0000"): PostgreSQL's text
# and jsonb cannot hold NUL, so such a document is refused here, not by the database.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_MAX_STATUS_BYTES = 65_536


def status_row(vehicle_id: str, payload: bytes) -> StatusRow:
    """The ``vehicle_status`` row of a status document from ``vehicle_id``'s status topic.

    The document is UTF-8 JSON with ``state`` (online or offline), ``time_ms`` and, when
    present, ``vehicle_id`` naming the topic's vehicle; anything else is kept as sent.
    """
    if len(payload) > _MAX_STATUS_BYTES:
        raise RowError(f"status document of {len(payload)} bytes (at most {_MAX_STATUS_BYTES})")
    try:
        document = json.loads(bytes(payload).decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RowError(f"status document is not UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise RowError("status document is nested too deeply") from None
    if not isinstance(document, dict):
        raise RowError("status document is not a JSON object")
    state = document.get("state")
    if state not in _STATES:
        raise RowError(f"status document's state is {state!r}, not 'online' or 'offline'")
    named = document.get("vehicle_id", vehicle_id)
    if named != vehicle_id:
        raise VehicleMismatchError(
            f"status document names vehicle {named!r} but came from {vehicle_id!r}"
        )
    time_ms = document.get("time_ms")
    if isinstance(time_ms, bool) or not isinstance(time_ms, int):
        raise RowError(f"status document's time_ms is {time_ms!r}, not an integer")
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape, e.g. "\ud800"
        raise RowError("status document is not Unicode text (a lone surrogate)") from None
    if _JSON_NUL.search(text):
        raise RowError("status document holds a NUL character (\\u0000), which text cannot")
    return StatusRow(vehicle_id, str(state), ms_to_datetime(time_ms), text)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def newest_statuses(rows: Iterable[StatusRow]) -> list[StatusRow]:
    """One row per vehicle: the newest time; on a tie the later row."""
    newest: dict[str, StatusRow] = {}
    for row in rows:
        kept = newest.get(row.vehicle_id)
        if kept is None or row.time >= kept.time:
            newest[row.vehicle_id] = row
    return list(newest.values())
