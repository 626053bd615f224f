"""The storage writer: ships the rows of `cloud_ingest.storage.rows` to TimescaleDB.

::

    new = store_telemetry(conn, "veh-1", batch, schema, received_at=now)  # False: a duplicate
    result = store_many(conn, [telemetry_rows(...), ...])   # many batches, one transaction
    result = store_all(conn, Writes(telemetry=..., events=..., statuses=..., dead_letters=...))
    store_event(conn, "veh-1", crash)                       # False: already stored
    dead_letter(conn, topic=..., client_id=..., reason=..., detail=..., payload=raw_bytes)

`store_all` runs in one transaction: the batch rows are inserted ``ON CONFLICT DO NOTHING
RETURNING`` to learn which are new, only the new batches' series go to ``telemetry_series`` by
binary COPY, and ``latest_state`` is upserted from them, the newest time winning, so a late
batch never overwrites a newer value. Events are inserted the same way (a redelivered event is
skipped), status documents upserted newest-wins, dead letters appended. The ingest service
acknowledges the messages of a flush only after this transaction commits.

VSS paths become ``signal`` ids through the schema's ``signal_id(path)``, once per path and
connection; ids learnt in a transaction that rolls back are forgotten with it.

The functions own the transaction: call them on a connection that is not inside one.
Database errors propagate as ``psycopg.Error`` after the rollback (``OperationalError``:
retry; ``DataError``, ``IntegrityError``: dead-letter), and `RowError` (from the rows) is
permanent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias
from weakref import WeakKeyDictionary

import psycopg

from edge_agent.wire import CrashEvent, TelemetryBatch, WireSchema

from ._copy import COLUMNS, series_copy_data
from .rows import (
    BatchRow,
    DeadLetterRow,
    EventRow,
    LatestRow,
    SeriesRow,
    StatusRow,
    TelemetryRows,
    event_row,
    newest_states,
    newest_statuses,
    telemetry_rows,
)

__all__ = [
    "StoreResult",
    "Writes",
    "dead_letter",
    "store_all",
    "store_event",
    "store_many",
    "store_telemetry",
]

Connection: TypeAlias = "psycopg.Connection[Any]"

_INSERT_BATCHES = """
INSERT INTO telemetry_batch (vehicle_id, sequence, received_at, catalogue_id, first_time,
                             last_time, samples, capture_name, capture_trigger)
SELECT * FROM unnest(%s::text[], %s::int8[], %s::timestamptz[], %s::text[], %s::timestamptz[],
                     %s::timestamptz[], %s::int4[], %s::text[], %s::timestamptz[])
ON CONFLICT DO NOTHING
RETURNING vehicle_id, sequence
"""

_UPSERT_LATEST = """
INSERT INTO latest_state (vehicle_id, signal_id, time, value, raw)
SELECT * FROM unnest(%s::text[], %s::int4[], %s::timestamptz[], %s::float8[], %s::int8[])
ON CONFLICT (vehicle_id, signal_id) DO UPDATE
SET time = excluded.time, value = excluded.value, raw = excluded.raw
WHERE excluded.time > latest_state.time
"""

_INSERT_EVENTS = """
INSERT INTO event (vehicle_id, sequence, time, kind, payload)
SELECT * FROM unnest(%s::text[], %s::int8[], %s::timestamptz[], %s::text[], %s::jsonb[])
ON CONFLICT DO NOTHING
RETURNING 1
"""

_UPSERT_STATUS = """
INSERT INTO vehicle_status (vehicle_id, state, time, document)
SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::jsonb[])
ON CONFLICT (vehicle_id) DO UPDATE
SET state = excluded.state, time = excluded.time, document = excluded.document,
    received_at = excluded.received_at
WHERE excluded.time >= vehicle_status.time
"""

_BUMP_PROGRESS = """
INSERT INTO vehicle_progress (vehicle_id)
SELECT DISTINCT unnest(%s::text[])
ON CONFLICT (vehicle_id) DO UPDATE
SET version = vehicle_progress.version + 1, updated_at = now()
"""

_INSERT_DEAD = """
INSERT INTO dead_letter (topic, client_id, reason, detail, payload)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::bytea[])
"""

# Known signal ids per connection: a path's id never changes once committed.
_signal_ids: WeakKeyDictionary[Connection, dict[str, int]] = WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class Writes:
    """What one transaction of `store_all` stores."""

    telemetry: Sequence[TelemetryRows] = ()
    events: Sequence[EventRow] = ()
    statuses: Sequence[StatusRow] = ()
    dead_letters: Sequence[DeadLetterRow] = ()


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What `store_all` did: the ``(vehicle_id, sequence)`` of new and of duplicate batches,
    and how many events were new or duplicates."""

    stored: tuple[tuple[str, int], ...]
    duplicates: tuple[tuple[str, int], ...]
    series_rows: int
    samples: int
    events_stored: int = 0
    event_duplicates: int = 0
    statuses: int = 0
    dead_letters: int = 0


def store_telemetry(
    conn: Connection,
    vehicle_id: str,
    batch: TelemetryBatch,
    schema: WireSchema,
    *,
    received_at: datetime,
) -> bool:
    """Store one decoded batch; False when ``(vehicle_id, batch.sequence)`` is already stored."""
    rows = telemetry_rows(vehicle_id, batch, schema, received_at=received_at)
    return bool(store_many(conn, [rows]).stored)


def store_many(conn: Connection, items: Iterable[TelemetryRows]) -> StoreResult:
    """Store the rows of many batches in one transaction; duplicates are skipped.

    A batch given twice in ``items`` counts once, as the first.
    """
    return store_all(conn, Writes(telemetry=list(items)))


def store_all(conn: Connection, writes: Writes) -> StoreResult:
    """Store telemetry, events, status documents and dead letters in one transaction."""
    unique: dict[tuple[str, int], TelemetryRows] = {}
    repeated: list[tuple[str, int]] = []
    for item in writes.telemetry:
        if item.key in unique:
            repeated.append(item.key)
        else:
            unique[item.key] = item
    learnt: dict[str, int] = {}
    new: set[tuple[str, int]] = set()
    series: list[SeriesRow] = []
    with conn.transaction(), conn.cursor() as cur:
        if unique:
            new = _insert_batches(cur, [item.batch for item in unique.values()])
            fresh = [item for key, item in unique.items() if key in new]
            series = [row for item in fresh for row in item.series]
            latest = newest_states(row for item in fresh for row in item.latest)
            paths = {row.path for row in series} | {r.path for r in latest}
            ids = _resolve(cur, conn, paths, learnt)
            _copy_series(cur, series, ids)
            _upsert_latest(cur, latest, ids)
        events_stored = _insert_events(cur, writes.events)
        statuses = _upsert_statuses(cur, writes.statuses)
        _insert_dead_letters(cur, writes.dead_letters)
        touched = sorted({v for v, _s in new} | {e.vehicle_id for e in writes.events})
        if touched:  # the rules workers read these vehicles next (docs/schema.md)
            cur.execute(_BUMP_PROGRESS, [touched])
            cur.execute("NOTIFY can2care_data")
    _signal_ids.setdefault(conn, {}).update(learnt)  # committed: the ids are permanent
    return StoreResult(
        stored=tuple(key for key in unique if key in new),
        duplicates=tuple(key for key in unique if key not in new) + tuple(repeated),
        series_rows=len(series),
        samples=sum(row.n for row in series),
        events_stored=events_stored,
        event_duplicates=len(writes.events) - events_stored,
        statuses=statuses,
        dead_letters=len(writes.dead_letters),
    )


def _insert_batches(cur: psycopg.Cursor[Any], batches: Sequence[BatchRow]) -> set[tuple[str, int]]:
    """Insert the batch rows; the keys of those that were not stored before."""
    cur.execute(
        _INSERT_BATCHES,
        [
            [b.vehicle_id for b in batches],
            [b.sequence for b in batches],
            [b.received_at for b in batches],
            [b.catalogue_id for b in batches],
            [b.first_time for b in batches],
            [b.last_time for b in batches],
            [b.samples for b in batches],
            [b.capture_name for b in batches],
            [b.capture_trigger for b in batches],
        ],
    )
    return {(str(v), int(s)) for v, s in cur.fetchall()}


def _resolve(
    cur: psycopg.Cursor[Any], conn: Connection, paths: set[str], learnt: dict[str, int]
) -> dict[str, int]:
    """The signal ids of ``paths``: known ones from the cache, the others asked once."""
    known = _signal_ids.get(conn, {})
    missing = sorted(paths - known.keys())
    if missing:
        cur.execute("SELECT p, signal_id(p) FROM unnest(%s::text[]) AS p", [missing])
        learnt.update((str(p), int(i)) for p, i in cur.fetchall())
    return {**known, **learnt}


def _copy_series(cur: psycopg.Cursor[Any], rows: Sequence[SeriesRow], ids: dict[str, int]) -> None:
    if not rows:
        return
    data = series_copy_data(rows, ids)
    with cur.copy(f"COPY telemetry_series ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(data)


def _upsert_latest(
    cur: psycopg.Cursor[Any], rows: Sequence[LatestRow], ids: dict[str, int]
) -> None:
    if not rows:
        return
    cur.execute(
        _UPSERT_LATEST,
        [
            [r.vehicle_id for r in rows],
            [ids[r.path] for r in rows],
            [r.time for r in rows],
            [r.value for r in rows],
            [r.raw for r in rows],
        ],
    )


def store_event(conn: Connection, vehicle_id: str, event: CrashEvent) -> bool:
    """Store a crash event; False when it is already stored (same vehicle, sequence, time)."""
    return store_all(conn, Writes(events=[event_row(vehicle_id, event)])).events_stored == 1


def _insert_events(cur: psycopg.Cursor[Any], rows: Sequence[EventRow]) -> int:
    """Insert event rows, skipping those stored before; how many were new."""
    if not rows:
        return 0
    cur.execute(
        _INSERT_EVENTS,
        [
            [r.vehicle_id for r in rows],
            [r.sequence for r in rows],
            [r.time for r in rows],
            [r.kind for r in rows],
            [r.payload for r in rows],
        ],
    )
    return len(cur.fetchall())


def _upsert_statuses(cur: psycopg.Cursor[Any], rows: Sequence[StatusRow]) -> int:
    """Upsert the newest status of each vehicle; how many vehicles' rows were given."""
    newest = newest_statuses(rows)
    if not newest:
        return 0
    cur.execute(
        _UPSERT_STATUS,
        [
            [r.vehicle_id for r in newest],
            [r.state for r in newest],
            [r.time for r in newest],
            [r.document for r in newest],
        ],
    )
    return len(newest)


def _insert_dead_letters(cur: psycopg.Cursor[Any], rows: Sequence[DeadLetterRow]) -> None:
    if rows:
        cur.execute(
            _INSERT_DEAD,
            [
                [r.topic for r in rows],
                [r.client_id for r in rows],
                [r.reason for r in rows],
                [r.detail for r in rows],
                [bytes(r.payload) for r in rows],
            ],
        )


def dead_letter(
    conn: Connection,
    *,
    topic: str,
    client_id: str | None,
    reason: str,
    detail: str | None,
    payload: bytes,
) -> int:
    """Keep a message that could not be stored, its bytes as received; returns the row's id."""
    with conn.transaction():
        cur = conn.execute(
            "INSERT INTO dead_letter (topic, client_id, reason, detail, payload)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (topic, client_id, reason, detail, bytes(payload)),
        )
        row = cur.fetchone()
    assert row is not None  # RETURNING of an INSERT always returns the row
    return int(row[0])
