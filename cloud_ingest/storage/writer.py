"""The storage writer: ships the rows of `cloud_ingest.storage.rows` to TimescaleDB.

::

    new = store_telemetry(conn, "veh-1", batch, schema, received_at=now)  # False: a duplicate
    result = store_many(conn, [telemetry_rows(...), ...])   # many batches, one transaction
    store_event(conn, "veh-1", crash)                       # False: already stored
    dead_letter(conn, topic=..., client_id=..., reason=..., detail=..., payload=raw_bytes)

`store_many` runs in one transaction: the batch rows are inserted ``ON CONFLICT DO NOTHING
RETURNING`` to learn which are new, only the new batches' series go to ``telemetry_series`` by
binary COPY, and ``latest_state`` is upserted from them, the newest time winning, so a late
batch never overwrites a newer value.

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

from .rows import LatestRow, SeriesRow, TelemetryRows, event_row, newest_states, telemetry_rows

__all__ = ["StoreResult", "dead_letter", "store_event", "store_many", "store_telemetry"]

Connection: TypeAlias = "psycopg.Connection[Any]"

_SERIES_COLUMNS = "vehicle_id, signal_id, sequence, start_time, end_time, n, times, physical, raw"
_SERIES_TYPES = (
    "text", "int4", "int8", "timestamptz", "timestamptz", "int4", "int4[]", "float8[]", "int8[]",
)  # fmt: skip

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

# Known signal ids per connection: a path's id never changes once committed.
_signal_ids: WeakKeyDictionary[Connection, dict[str, int]] = WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What `store_many` did: the ``(vehicle_id, sequence)`` of new and of duplicate batches."""

    stored: tuple[tuple[str, int], ...]
    duplicates: tuple[tuple[str, int], ...]
    series_rows: int
    samples: int


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
    unique: dict[tuple[str, int], TelemetryRows] = {}
    repeated: list[tuple[str, int]] = []
    for item in items:
        if item.key in unique:
            repeated.append(item.key)
        else:
            unique[item.key] = item
    if not unique:
        return StoreResult((), tuple(repeated), 0, 0)
    learnt: dict[str, int] = {}
    with conn.transaction(), conn.cursor() as cur:
        batches = [item.batch for item in unique.values()]
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
        new = {(str(v), int(s)) for v, s in cur.fetchall()}
        fresh = [item for key, item in unique.items() if key in new]
        series = [row for item in fresh for row in item.series]
        latest = newest_states(row for item in fresh for row in item.latest)
        ids = _resolve(cur, conn, {row.path for row in series} | {r.path for r in latest}, learnt)
        _copy_series(cur, series, ids)
        _upsert_latest(cur, latest, ids)
    _signal_ids.setdefault(conn, {}).update(learnt)  # committed: the ids are permanent
    stored = tuple(key for key in unique if key in new)
    duplicates = tuple(key for key in unique if key not in new) + tuple(repeated)
    return StoreResult(stored, duplicates, len(series), sum(row.n for row in series))


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
    statement = f"COPY telemetry_series ({_SERIES_COLUMNS}) FROM STDIN (FORMAT BINARY)"
    with cur.copy(statement) as copy:
        copy.set_types(list(_SERIES_TYPES))
        for row in rows:
            copy.write_row(
                (
                    row.vehicle_id,
                    ids[row.path],
                    row.sequence,
                    row.start_time,
                    row.end_time,
                    row.n,
                    row.times,
                    row.physical,
                    row.raw,
                )
            )


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
    row = event_row(vehicle_id, event)
    with conn.transaction():
        cur = conn.execute(
            "INSERT INTO event (vehicle_id, sequence, time, kind, payload)"
            " VALUES (%s, %s, %s, %s, %s::jsonb) ON CONFLICT DO NOTHING RETURNING 1",
            (row.vehicle_id, row.sequence, row.time, row.kind, row.payload),
        )
        return cur.fetchone() is not None


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
