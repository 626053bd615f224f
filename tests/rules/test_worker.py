"""The rules worker against the private TimescaleDB: data rules, events, clock rules, restarts."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from cloud_ingest.storage import (
    StatusRow,
    Vehicle,
    Writes,
    event_row,
    migrate,
    register_vehicles,
    store_all,
    telemetry_rows,
)
from dbc import demo_catalogue
from edge_agent.wire import Series, TelemetryBatch, WireSchema
from rules.loader import load_builtin
from rules.worker import RulesWorker, WorkerConfig, split_rules
from tests.cloud_ingest.storage._samples import crash, float32_raw

Conn = psycopg.Connection[tuple[Any, ...]]
SPEED = "Vehicle.Speed"
VOLTS = "Vehicle.LowVoltageBattery.CurrentVoltage"
NOW = datetime.now(UTC).replace(microsecond=0)
START_MS = int((NOW - timedelta(hours=2)).timestamp() * 1000)


def _schema() -> WireSchema:
    return WireSchema.from_catalogue(demo_catalogue())


def _raw(schema: WireSchema, path: str, values: np.ndarray) -> np.ndarray:
    """Raw values of physical ``values``: float bit patterns, or integers by scale and offset."""
    spec = schema.spec(path)
    if spec.kind == "float32":
        return float32_raw(*values)
    probe = schema.physical(spec.number, np.array([0, 1], np.int64))
    offset, scale = probe[0], probe[1] - probe[0]
    raw: np.ndarray = np.round((values - offset) / scale).astype(np.int64)
    return raw


def _parked_and_draining(schema: WireSchema, sequence: int, minutes: range) -> TelemetryBatch:
    times = START_MS + np.array([m * 60_000 for m in minutes], np.int64)
    volts = np.where(np.array(list(minutes)) < 10, 12.6, 11.5)
    return TelemetryBatch(schema.catalogue_id, sequence, (
        Series(schema.spec(SPEED).number, times, _raw(schema, SPEED, np.zeros(len(times)))),
        Series(schema.spec(VOLTS).number, times, _raw(schema, VOLTS, volts)),
    ))  # fmt: skip


def _store(url: str, batches: list[TelemetryBatch], vehicle: str = "veh-1") -> None:
    schema = _schema()
    with psycopg.connect(url, autocommit=True) as conn:
        rows = [
            telemetry_rows(vehicle, b, schema, received_at=NOW - timedelta(minutes=5))
            for b in batches
        ]
        store_all(conn, Writes(telemetry=rows))


def _alerts(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT vehicle_id, rule_id, status FROM alert ORDER BY alert_id"
        ).fetchall()


def _prepare(db_conn: Conn) -> None:
    migrate(db_conn)
    register_vehicles(db_conn, [Vehicle("veh-1", model="Aurora"), Vehicle("veh-2")])


def _worker(url: str, **kw: Any) -> RulesWorker:
    return RulesWorker(WorkerConfig(database_url=url, settle_s=0.0, **kw), clock=lambda: NOW)


def test_the_rules_split_into_data_and_clock_rules() -> None:
    data, clock = split_rules(load_builtin())
    assert {"vehicle_offline", "welcome_check_in", "service_interval_time"} <= {r.id for r in clock}
    assert {"crash", "lv_battery_low", "service_interval_distance"} <= {r.id for r in data}


def test_new_data_raises_once_across_batches_and_restarts(db_url: str, db_conn: Conn) -> None:
    _prepare(db_conn)
    schema = _schema()
    _store(db_url, [_parked_and_draining(schema, 1, range(0, 20))])
    worker = _worker(db_url)
    worker.run_once()
    assert _alerts(db_url) == []  # parked 19 min, low for 9: not yet
    worker.close()
    _store(db_url, [_parked_and_draining(schema, 2, range(20, 60))])
    restarted = _worker(db_url)  # a new process: the state comes from the database
    restarted.run_once()
    restarted.run_once()
    assert _alerts(db_url) == [("veh-1", "lv_battery_low", "open")]
    _store(db_url, [_parked_and_draining(schema, 2, range(20, 60))])  # redelivered: no-op
    restarted.run_once()
    assert _alerts(db_url) == [("veh-1", "lv_battery_low", "open")]
    restarted.close()


def test_a_crash_event_raises_a_rescue_alert_with_its_payload(db_url: str, db_conn: Conn) -> None:
    _prepare(db_conn)
    event = crash("veh-1")
    when = NOW - timedelta(minutes=1)
    event = type(event)(**{**{f: getattr(event, f) for f in event.__dataclass_fields__},
                           "time_ms": int(when.timestamp() * 1000)})  # fmt: skip
    with psycopg.connect(db_url, autocommit=True) as conn:
        store_all(conn, Writes(events=[event_row("veh-1", event)]))
    worker = _worker(db_url)
    assert worker.run_once() == 1
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT rule_id, category, details FROM alert").fetchone()
    assert row is not None and row[0] == "crash" and row[1] == "rescue"
    assert "SEVERE" in str(row[2]) and "WVWZZZ1JZXW000001" in str(row[2])
    worker.close()


def test_clock_rules_raise_offline_without_flapping(db_url: str, db_conn: Conn) -> None:
    _prepare(db_conn)
    clock = [NOW]
    worker = RulesWorker(
        WorkerConfig(database_url=db_url, settle_s=0.0, tick_s=300.0), clock=lambda: clock[0]
    )

    def status(state: str) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            row = StatusRow("veh-2", state, clock[0], f'{{"state": "{state}"}}')
            store_all(conn, Writes(statuses=[row]))

    status("offline")
    for hour in range(0, 5):  # offline 4 h, then back for a moment, then offline again
        clock[0] = NOW + timedelta(hours=hour)
        worker.tick(force=True)
    status("online")
    clock[0] = NOW + timedelta(hours=4, minutes=5)
    worker.tick(force=True)
    status("offline")
    for hour in range(5, 12):
        clock[0] = NOW + timedelta(hours=hour)
        worker.tick(force=True)
    alerts = _alerts(db_url)
    assert alerts == [("veh-2", "vehicle_offline", "open")]  # 6 h after 04:05, once
    worker.close()


def test_a_bad_reload_keeps_the_running_rules(db_url: str, db_conn: Conn, tmp_path: Path) -> None:
    _prepare(db_conn)
    extra = tmp_path / "extra.toml"
    extra.write_text('version = 1\n[[rule]]\nid = "x"\ntitle = "x"\ncategory = "care"\n'
                     'severity = "info"\nwhen = "Vehicle.Speed > 300"\n')  # fmt: skip
    worker = _worker(db_url, rule_files=(extra,))
    assert worker.rules.get("x") is not None
    extra.write_text('version = 1\n[[rule]]\nid = "x"\n')
    assert not worker.reload()
    assert worker.rules.get("x") is not None
    worker.close()


def test_run_wakes_on_the_ingest_notification(db_url: str, db_conn: Conn) -> None:
    _prepare(db_conn)
    worker = _worker(db_url)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        _store(db_url, [_parked_and_draining(_schema(), 1, range(0, 60))])
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while not _alerts(db_url) and datetime.now(UTC) < deadline:
            stop.wait(0.05)
        assert _alerts(db_url) == [("veh-1", "lv_battery_low", "open")]
    finally:
        stop.set()
        thread.join(10)


def test_a_notification_that_came_during_a_round_ends_the_wait(db_url: str, db_conn: Conn) -> None:
    # The ingest service commits while the worker runs its queries: psycopg reads the
    # notification with a query's answer and keeps it, so the socket stays quiet. The wait
    # must still end at once, not after its timeout (a crash would wait a second).
    _prepare(db_conn)
    worker = _worker(db_url)
    try:
        conn = worker._connection()  # listening
        db_conn.execute("NOTIFY can2care_data")
        conn.execute("SELECT pg_sleep(0.05)")  # a round's query takes the notification in
        started = time.monotonic()
        worker._wait(5.0)
        assert time.monotonic() - started < 1.0
    finally:
        worker.close()


ODOMETER = "Vehicle.TraveledDistance"


def _driving(schema: WireSchema, sequence: int, minute: int, km: float) -> TelemetryBatch:
    times = START_MS + np.array([minute * 60_000], np.int64)
    return TelemetryBatch(schema.catalogue_id, sequence, (
        Series(schema.spec(ODOMETER).number, times, _raw(schema, ODOMETER, np.array([km]))),
    ))  # fmt: skip


def test_a_recorded_service_resets_the_model_interval_reminder(db_url: str, db_conn: Conn) -> None:
    _prepare(db_conn)
    db_conn.execute("INSERT INTO model_service (model, interval_km) VALUES ('Aurora', 15000)")
    schema = _schema()
    worker = _worker(db_url)
    _store(db_url, [_driving(schema, 1, 0, 13_900.0)])
    worker.run_once()
    assert _alerts(db_url) == []
    _store(db_url, [_driving(schema, 2, 5, 14_100.0)])
    worker.run_once()
    assert _alerts(db_url) == [("veh-1", "service_interval_distance_soon", "open")]
    _store(db_url, [_driving(schema, 3, 10, 15_050.0)])
    worker.run_once()
    assert _alerts(db_url) == [
        ("veh-1", "service_interval_distance_soon", "resolved"),  # due soon became overdue
        ("veh-1", "service_interval_distance", "open"),
    ]
    db_conn.execute(
        "INSERT INTO service_record (vehicle_id, time, odometer_km, recorded_by)"
        " VALUES ('veh-1', now(), 15050, 'workshop')"
    )
    _store(db_url, [_driving(schema, 4, 20, 15_060.0)])
    worker.run_once()
    assert _alerts(db_url)[1:] == [("veh-1", "service_interval_distance", "resolved")]
    worker.close()


def test_rule_files_stored_through_the_api_are_loaded_on_a_new_generation(
    db_url: str, db_conn: Conn
) -> None:
    _prepare(db_conn)
    worker = _worker(db_url)
    assert not worker.check_generation()  # nothing stored: the start-up rules stand
    assert worker.rules.get("fast") is None
    db_conn.execute(
        "INSERT INTO rule_file (name, text, updated_by) VALUES ('mine', %s, 'ana')",
        ('version = 1\n[[rule]]\nid = "fast"\ntitle = "Fast"\ncategory = "care"\n'
         'severity = "info"\nwhen = "Vehicle.Speed > 200"\n',),
    )  # fmt: skip
    assert not worker.check_generation()  # stored, not yet asked to reload
    db_conn.execute("UPDATE rule_generation SET generation = generation + 1")
    assert worker.check_generation()
    assert worker.rules.get("fast") is not None and worker.rules.get("crash") is not None
    db_conn.execute("UPDATE rule_file SET text = 'version = 1\n[[rule]]\nid = \"fast\"\n'")
    db_conn.execute("UPDATE rule_generation SET generation = generation + 1")
    assert not worker.check_generation()  # a bad file: the running rules stay
    assert worker.rules.get("fast") is not None
    worker.close()
