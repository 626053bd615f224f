"""The storage writer against the private TimescaleDB."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import psycopg
import pytest

from cloud_ingest.storage import (
    dead_letter,
    migrate,
    store_event,
    store_many,
    store_telemetry,
    telemetry_rows,
)
from dbc import demo_catalogue
from edge_agent.wire import Series, TelemetryBatch, WireSchema
from tests.cloud_ingest.storage._samples import RECEIVED, T0, T0_MS, crash, float32_raw

Conn = psycopg.Connection[tuple[object, ...]]
SPEED, VOLTS = "Vehicle.Speed", "Vehicle.LowVoltageBattery.CurrentVoltage"


@pytest.fixture(scope="module")
def schema() -> WireSchema:
    return WireSchema.from_catalogue(demo_catalogue())


@pytest.fixture
def db(db_conn: Conn) -> Conn:
    """This test's database, migrated, with the vehicles ``veh-1`` and ``veh-2``."""
    migrate(db_conn)
    db_conn.execute("INSERT INTO vehicle (vehicle_id) VALUES ('veh-1'), ('veh-2')")
    return db_conn


def _batch(schema: WireSchema, sequence: int, start_ms: int = T0_MS) -> TelemetryBatch:
    """Two seconds of speed (every 100 ms) and battery voltage (every 500 ms)."""
    speed_times = start_ms + np.arange(0, 2000, 100, dtype=np.int64)
    speed_raw = (5000 + 37 * np.arange(20) + sequence).astype(np.int64)  # 50.00 km/h upwards
    volt_times = start_ms + np.arange(20, 2000, 500, dtype=np.int64)
    volt_raw = float32_raw(12.61, 12.6, 12.58, 12.59 + sequence / 100)
    return TelemetryBatch(
        schema.catalogue_id,
        sequence,
        (
            Series(schema.spec(SPEED).number, speed_times, speed_raw),
            Series(schema.spec(VOLTS).number, volt_times, volt_raw),
        ),
    )


def _samples(conn: Conn, vehicle: str, path: str) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT time, value, raw FROM signal_samples(%s, %s, %s, %s)",
        (vehicle, path, T0 - timedelta(days=1), T0 + timedelta(days=1)),
    ).fetchall()


def _expected(schema: WireSchema, series: Series) -> list[tuple[object, ...]]:
    physical = schema.physical(series.signal, series.raw).tolist()
    return [
        (T0 + timedelta(milliseconds=int(t) - T0_MS), v, int(r))
        for t, v, r in zip(series.times_ms, physical, series.raw, strict=True)
    ]


def _count(conn: Conn, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(str(row[0]))


def test_a_batch_reads_back_as_its_samples(db: Conn, schema: WireSchema) -> None:
    batch = _batch(schema, 1)
    assert store_telemetry(db, "veh-1", batch, schema, received_at=RECEIVED)
    speed, volts = batch.series
    assert _samples(db, "veh-1", SPEED) == _expected(schema, speed)
    assert _samples(db, "veh-1", VOLTS) == _expected(schema, volts)
    assert _samples(db, "veh-1", VOLTS)[0][1] == float(np.float32(12.61))
    stored = db.execute(
        "SELECT received_at, catalogue_id, first_time, last_time, samples FROM telemetry_batch"
    ).fetchall()
    assert stored == [(RECEIVED, schema.catalogue_id, T0, T0 + timedelta(milliseconds=1900), 24)]
    latest = db.execute(
        "SELECT g.path, l.time, l.value, l.raw FROM latest_state l JOIN signal g USING"
        " (signal_id) ORDER BY g.path"
    ).fetchall()
    assert latest == [
        (VOLTS, *_expected(schema, volts)[-1]),
        (SPEED, *_expected(schema, speed)[-1]),
    ]  # "Vehicle.L..." sorts before "Vehicle.S..."


def test_the_same_batch_three_times_is_stored_once(db: Conn, schema: WireSchema) -> None:
    batch = _batch(schema, 5)
    outcomes = [store_telemetry(db, "veh-1", batch, schema, received_at=RECEIVED)]
    outcomes += [store_telemetry(db, "veh-1", batch, schema, received_at=RECEIVED)] * 2
    assert outcomes == [True, False, False]
    assert _count(db, "telemetry_batch") == 1
    assert _count(db, "telemetry_series") == 2
    assert len(_samples(db, "veh-1", SPEED)) == 20
    # the same sequence from another vehicle is another batch
    assert store_telemetry(db, "veh-2", batch, schema, received_at=RECEIVED)
    assert _count(db, "telemetry_series") == 4


def test_store_many_stores_only_the_new_batches(db: Conn, schema: WireSchema) -> None:
    store_telemetry(db, "veh-1", _batch(schema, 1), schema, received_at=RECEIVED)
    old, new = (
        telemetry_rows("veh-1", _batch(schema, s, T0_MS + 2000 * s), schema, received_at=RECEIVED)
        for s in (1, 2)
    )
    result = store_many(db, [old, new, new])
    assert result.stored == (("veh-1", 2),)
    assert result.duplicates == (("veh-1", 1), ("veh-1", 2))
    assert (result.series_rows, result.samples) == (2, 24)
    per_batch = "SELECT sequence, count(*) FROM telemetry_series GROUP BY 1 ORDER BY 1"
    assert db.execute(per_batch).fetchall() == [(1, 2), (2, 2)]
    assert len(_samples(db, "veh-1", SPEED)) == 40
    assert store_many(db, []).stored == ()


def test_an_older_batch_does_not_overwrite_the_latest_state(db: Conn, schema: WireSchema) -> None:
    newer, older = _batch(schema, 9, T0_MS + 60_000), _batch(schema, 8)
    assert store_telemetry(db, "veh-1", newer, schema, received_at=RECEIVED)
    assert store_telemetry(db, "veh-1", older, schema, received_at=RECEIVED)
    latest = db.execute(
        "SELECT l.time, l.raw FROM latest_state l JOIN signal g USING (signal_id)"
        " WHERE g.path = %s",
        (SPEED,),
    ).fetchall()
    assert latest == [(T0 + timedelta(milliseconds=61_900), int(newer.series[0].raw[-1]))]
    assert len(_samples(db, "veh-1", SPEED)) == 40  # the older samples are stored all the same


def test_signal_ids_are_resolved_once_per_connection(db: Conn, schema: WireSchema) -> None:
    store_telemetry(db, "veh-1", _batch(schema, 1), schema, received_at=RECEIVED)
    db.execute("CREATE TABLE calls (path text)")
    db.execute(
        "CREATE OR REPLACE FUNCTION signal_id(p_path text) RETURNS integer LANGUAGE sql AS"
        " $$ INSERT INTO calls VALUES (p_path);"
        " SELECT signal_id FROM signal WHERE path = p_path $$"
    )
    store_telemetry(db, "veh-1", _batch(schema, 2, T0_MS + 5000), schema, received_at=RECEIVED)
    assert _count(db, "calls") == 0
    assert len(_samples(db, "veh-1", SPEED)) == 40


def test_a_crash_event_twice_is_stored_once(db: Conn) -> None:
    assert store_event(db, "veh-1", crash())
    assert not store_event(db, "veh-1", crash())
    rows = db.execute("SELECT vehicle_id, sequence, time, kind, payload FROM event").fetchall()
    assert len(rows) == 1
    vehicle, sequence, time, kind, payload = rows[0]
    assert (vehicle, sequence, time, kind) == (
        "veh-1",
        4,
        T0 + timedelta(milliseconds=500),
        "crash",
    )
    assert isinstance(payload, dict) and payload["severity"] == "SEVERE"
    assert payload["position"] == {"latitude": 48.1374, "longitude": 11.5755, "time_ms": T0_MS}


def test_a_dead_letter_keeps_the_raw_bytes(db: Conn) -> None:
    payload = bytes(range(256)) + b"\x00\xff"
    first = dead_letter(
        db, topic="v1/veh-1/telemetry", client_id="veh-1", reason="malformed",
        detail="truncated varint at byte 11", payload=payload,
    )  # fmt: skip
    second = dead_letter(
        db, topic="v1/veh-1/events", client_id=None, reason="malformed", detail=None,
        payload=b"",
    )  # fmt: skip
    assert second > first
    rows = db.execute(
        "SELECT topic, client_id, reason, detail, payload FROM dead_letter ORDER BY id"
    ).fetchall()
    assert rows == [
        ("v1/veh-1/telemetry", "veh-1", "malformed", "truncated varint at byte 11", payload),
        ("v1/veh-1/events", None, "malformed", None, b""),
    ]


def test_a_failed_transaction_stores_nothing(db: Conn, schema: WireSchema) -> None:
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        store_telemetry(db, "veh-unknown", _batch(schema, 1), schema, received_at=RECEIVED)
    assert _count(db, "telemetry_batch") == 0 and _count(db, "telemetry_series") == 0
