"""The schema's migrations against the private TimescaleDB (Apache-only build)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cloud_ingest.storage import (
    ExtensionMissingError,
    SchemaTooNewError,
    database_version,
    detect_features,
    migrate,
    migrations,
)

Conn = psycopg.Connection[tuple[object, ...]]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@pytest.fixture
def schema(db_conn: Conn) -> Conn:
    """This test's database, migrated, with one registered vehicle ``veh-1``."""
    migrate(db_conn)
    db_conn.execute("INSERT INTO vehicle (vehicle_id, vin) VALUES ('veh-1', 'WVWZZZ1JZXW000001')")
    return db_conn


def _insert_series(
    conn: Conn, sequence: int, start: datetime, times: list[int], raw: list[int]
) -> None:
    conn.execute(
        "INSERT INTO telemetry_series (vehicle_id, signal_id, sequence, start_time, end_time,"
        " n, times, physical, raw) VALUES ('veh-1', signal_id('Vehicle.Speed'), %s, %s, %s,"
        " %s, %s, %s, %s)",
        (
            sequence,
            start,
            start + timedelta(milliseconds=times[-1]),
            len(times),
            times,
            [r / 10 for r in raw],
            raw,
        ),
    )


def test_migrate_applies_every_version_once(db_conn: Conn) -> None:
    versions = [m.version for m in migrations()]
    assert migrate(db_conn) == versions
    tables = db_conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        " ORDER BY table_name"
    ).fetchall()
    assert migrate(db_conn) == []
    assert (
        db_conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " ORDER BY table_name"
        ).fetchall()
        == tables
    )
    assert database_version(db_conn) == versions[-1]
    recorded = db_conn.execute("SELECT version, name FROM schema_migrations").fetchall()
    assert recorded == [(m.version, m.name) for m in migrations()]


def test_hypertables_and_chunk_intervals(schema: Conn) -> None:
    rows = schema.execute(
        "SELECT hypertable_name, column_name, time_interval"
        " FROM timescaledb_information.dimensions ORDER BY hypertable_name"
    ).fetchall()
    assert rows == [
        ("event", "time", timedelta(days=7)),
        ("telemetry_series", "start_time", timedelta(minutes=15)),
    ]
    index = schema.execute(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'telemetry_series'"
    ).fetchall()
    assert [r[0] for r in index] == [
        "CREATE INDEX telemetry_series_vehicle_signal_time ON public.telemetry_series"
        " USING btree (vehicle_id, signal_id, start_time DESC)"
    ]


def test_a_redelivered_batch_is_stored_once(schema: Conn) -> None:
    insert = (
        "INSERT INTO telemetry_batch (vehicle_id, sequence, catalogue_id, first_time,"
        " last_time, samples) VALUES ('veh-1', 7, '0123456789abcdef', %s, %s, 3)"
        " ON CONFLICT DO NOTHING RETURNING sequence"
    )
    assert schema.execute(insert, (T0, T0)).fetchall() == [(7,)]
    assert schema.execute(insert, (T0, T0)).fetchall() == []
    assert schema.execute("SELECT count(*) FROM telemetry_batch").fetchone() == (1,)


def test_series_arrays_round_trip_losslessly(schema: Conn) -> None:
    raw = [INT64_MIN, -1, 0, 1, INT64_MAX]
    times = [0, 10, 10, 250, 86_400_000]
    physical = [math.nan, -math.inf, 0.0, 1.5, math.inf]
    schema.execute(
        "INSERT INTO telemetry_series (vehicle_id, signal_id, sequence, start_time, end_time,"
        " n, times, physical, raw) VALUES ('veh-1', signal_id('Vehicle.Speed'), 1, %s, %s,"
        " 5, %s, %s, %s)",
        (T0, T0 + timedelta(days=1), times, physical, raw),
    )
    row = schema.execute("SELECT times, physical, raw FROM telemetry_series").fetchone()
    assert row is not None
    assert row[0] == times
    assert row[2] == raw
    got = row[1]
    assert isinstance(got, list)
    assert math.isnan(got[0])
    assert got[1:] == physical[1:]
    samples = schema.execute(
        "SELECT time, value, raw FROM signal_samples('veh-1', 'Vehicle.Speed', %s, %s)",
        (T0 + timedelta(milliseconds=10), T0 + timedelta(days=1)),
    ).fetchall()
    assert samples == [
        (T0 + timedelta(milliseconds=10), -math.inf, -1),
        (T0 + timedelta(milliseconds=10), 0.0, 0),
        (T0 + timedelta(milliseconds=250), 1.5, 1),
    ]


def test_series_with_mismatched_arrays_is_refused(schema: Conn) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        schema.execute(
            "INSERT INTO telemetry_series (vehicle_id, signal_id, sequence, start_time,"
            " end_time, n, times, physical, raw) VALUES ('veh-1', 1, 1, %s, %s, 2, %s, %s, %s)",
            (T0, T0, [0, 0], [1.0], [1, 2]),
        )


def test_signal_id_is_stable(schema: Conn) -> None:
    first = schema.execute("SELECT signal_id('Vehicle.Speed')").fetchone()
    assert schema.execute("SELECT signal_id('Vehicle.Speed')").fetchone() == first
    assert schema.execute("SELECT signal_id('Vehicle.Body.Lights')").fetchone() != first


def test_latest_state_keeps_the_newest_time(schema: Conn) -> None:
    upsert = (
        "INSERT INTO latest_state (vehicle_id, signal_id, time, value, raw)"
        " VALUES ('veh-1', signal_id('Vehicle.Speed'), %s, %s, %s)"
        " ON CONFLICT (vehicle_id, signal_id) DO UPDATE"
        " SET time = excluded.time, value = excluded.value, raw = excluded.raw"
        " WHERE excluded.time > latest_state.time"
    )
    schema.execute(upsert, (T0, 1.0, 10))
    schema.execute(upsert, (T0 + timedelta(seconds=5), 2.0, 20))
    schema.execute(upsert, (T0 + timedelta(seconds=1), 3.0, 30))  # late: ignored
    schema.execute(upsert, (T0 + timedelta(seconds=5), 4.0, 40))  # same time: ignored
    assert schema.execute("SELECT time, value, raw FROM latest_state").fetchall() == [
        (T0 + timedelta(seconds=5), 2.0, 20)
    ]


def test_out_of_order_series_lands_in_the_chunk_of_its_time(schema: Conn) -> None:
    _insert_series(schema, 2, T0, [0, 1000], [1, 2])
    late = T0 - timedelta(days=3, minutes=7)
    _insert_series(schema, 1, late, [0, 1000], [3, 4])
    rows = schema.execute(
        "SELECT s.start_time, c.range_start, c.range_end FROM telemetry_series s"
        " JOIN timescaledb_information.chunks c"
        " ON format('%I.%I', c.chunk_schema, c.chunk_name)::regclass = s.tableoid"
        " ORDER BY s.start_time"
    ).fetchall()
    assert len(rows) == 2
    assert rows[0][1] != rows[1][1]
    for start, range_start, range_end in rows:
        assert isinstance(start, datetime)
        assert isinstance(range_start, datetime)
        assert isinstance(range_end, datetime)
        assert range_start <= start < range_end
        assert range_end - range_start == timedelta(minutes=15)


def test_event_is_unique_per_vehicle_sequence_time(schema: Conn) -> None:
    insert = (
        "INSERT INTO event (vehicle_id, sequence, time, kind, payload)"
        " VALUES ('veh-1', 3, %s, 'crash', '{\"severity\": \"SEVERE\"}')"
        " ON CONFLICT DO NOTHING"
    )
    schema.execute(insert, (T0,))
    schema.execute(insert, (T0,))
    assert schema.execute("SELECT kind, payload FROM event").fetchall() == [
        ("crash", {"severity": "SEVERE"})
    ]


def test_retention_drops_chunks_older_than_the_configured_interval(schema: Conn) -> None:
    _insert_series(schema, 1, T0 - timedelta(days=401), [0], [1])
    _insert_series(schema, 2, T0 - timedelta(days=399), [0], [2])
    dropped = schema.execute("SELECT count(*) FROM apply_retention(%s)", (T0,)).fetchone()
    assert dropped == (1,)
    assert schema.execute("SELECT sequence FROM telemetry_series").fetchall() == [(2,)]
    schema.execute(
        "UPDATE retention_policy SET drop_after = interval '30 days'"
        " WHERE hypertable = 'telemetry_series'::regclass"
    )
    schema.execute("SELECT * FROM apply_retention(%s)", (T0,))
    assert schema.execute("SELECT count(*) FROM telemetry_series").fetchone() == (0,)


def test_dead_letter_keeps_the_payload(schema: Conn) -> None:
    schema.execute(
        "INSERT INTO dead_letter (topic, client_id, reason, payload)"
        " VALUES ('v1/veh-1/telemetry', 'c1', 'malformed', %s)",
        (b"\x01\x01\xff",),
    )
    assert schema.execute("SELECT id, payload FROM dead_letter").fetchall() == [
        (1, b"\x01\x01\xff")
    ]


def test_this_build_reports_no_tsl_features_and_the_schema_works_without(
    schema: Conn,
) -> None:
    features = detect_features(schema)
    assert features.license == "apache"
    assert not (features.compression or features.continuous_aggregates or features.jobs)
    assert features.optional_sql() == ()
    jobs = schema.execute(
        "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'retention_job'"
    ).fetchone()
    assert jobs == (0,)
    assert schema.execute("SELECT to_regclass('telemetry_hourly')").fetchone() == (None,)


def test_a_newer_database_is_refused_naming_both_versions(db_conn: Conn) -> None:
    migrate(db_conn)
    newest = migrations()[-1].version
    db_conn.execute(
        "INSERT INTO schema_migrations (version, name) VALUES (%s, 'future')", (newest + 1,)
    )
    with pytest.raises(SchemaTooNewError) as caught:
        migrate(db_conn)
    assert caught.value.database_version == newest + 1
    assert caught.value.code_version == newest
    assert f"version {newest + 1}" in str(caught.value)
    assert f"version {newest}," in str(caught.value)


def test_a_database_without_timescaledb_is_refused(db_url: str, db_conn: Conn) -> None:
    db_conn.execute("DROP EXTENSION timescaledb")
    name = db_url.rsplit("/", 1)[1]
    with pytest.raises(ExtensionMissingError, match=f"database '{name}'.*CREATE EXTENSION"):
        migrate(db_conn)
    assert db_conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)


def test_migrate_works_in_a_non_autocommit_connection(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        assert migrate(conn) == [m.version for m in migrations()]
    with psycopg.connect(db_url) as conn:
        assert migrate(conn) == []


def test_per_minute_buckets_of_a_signal(schema: Conn) -> None:
    _insert_series(schema, 1, T0, [0, 30_000, 60_000, 90_000], [10, 20, 30, 50])
    rows = schema.execute(
        "SELECT time_bucket('1 minute', time) AS minute, avg(value), count(*)"
        " FROM signal_samples('veh-1', 'Vehicle.Speed', %s, %s)"
        " GROUP BY minute ORDER BY minute",
        (T0, T0 + timedelta(hours=1)),
    ).fetchall()
    assert rows == [(T0, 1.5, 2), (T0 + timedelta(minutes=1), 4.0, 2)]
