"""Helpers of the API tests: a migrated database with vehicles, telemetry, alerts and a token
per role, and an application on it reached through HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from cloud_ingest.api import Settings, create_app, create_token
from cloud_ingest.api.tokens import Role
from cloud_ingest.storage import Vehicle, migrate, register_vehicles
from rules.store import apply_changes
from tests.rules._support import change

Conn = psycopg.Connection[Any]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SPEED = "Vehicle.Speed"
LAT, LON = "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude"


@dataclass(frozen=True)
class Seeded:
    """What `seed` stored: a token per role, and the ids of the alerts raised."""

    tokens: dict[Role, str]
    crash_alert: int
    soc_alert: int


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def seed(conn: Conn) -> Seeded:
    """Migrates; registers veh-1..veh-3; stores telemetry, a crash event, two alerts, tokens."""
    migrate(conn)
    register_vehicles(
        conn,
        [
            Vehicle("veh-1", vin="WVWZZZ1JZXW000001", model="e-Up", propulsion="BEV",
                    region="north", tags=("lease", "fleet-a")),
            Vehicle("veh-2", vin="WVWZZZ1JZXW000002", model="e-Up", propulsion="BEV",
                    region="north", tags=("fleet-a",)),
            Vehicle("veh-3", vin="WBA00000000000003", model="i3", propulsion="BEV",
                    region="south"),
        ],
    )  # fmt: skip
    # 10 minutes of speed at 1 Hz around T0, and a position.
    n = 600
    start = T0 - timedelta(minutes=5)
    conn.execute(
        "INSERT INTO telemetry_series (vehicle_id, signal_id, sequence, start_time, end_time,"
        " n, times, physical, raw) VALUES ('veh-1', signal_id(%s), 1, %s, %s, %s, %s, %s, %s)",
        (SPEED, start, start + timedelta(seconds=n - 1), n, [i * 1000 for i in range(n)],
         [float(i % 100) for i in range(n)], [i % 100 for i in range(n)]),
    )  # fmt: skip
    for path, value in ((LAT, 52.52), (LON, 13.40), (SPEED, 0.0)):
        conn.execute(
            "INSERT INTO latest_state (vehicle_id, signal_id, time, value, raw)"
            " VALUES ('veh-1', signal_id(%s), %s, %s, 0)",
            (path, T0, value),
        )
    conn.execute(
        "INSERT INTO event (vehicle_id, sequence, time, kind, payload)"
        " VALUES ('veh-1', 1, %s, 'crash', '{\"airbag\": true}')",
        (T0,),
    )
    conn.execute(
        "INSERT INTO vehicle_status (vehicle_id, state, time, document)"
        " VALUES ('veh-1', 'online', %s, '{\"uptime_s\": 10}')",
        (T0,),
    )
    crash, soc = apply_changes(
        conn,
        [
            change("raised", "veh-1", "crash", severity="critical", category="rescue",
                   auto_resolve=False, details={"event": {"airbag": True},
                                                "event_time_ms": int(T0.timestamp() * 1000)}),
            change("raised", "veh-2", "low_soc", time=T0 + timedelta(minutes=1),
                   details={"values": {SPEED: 0.0}}),
        ],
    )  # fmt: skip
    assert crash.alert_id is not None and soc.alert_id is not None
    tokens: dict[Role, str] = {}
    for role in ("agent", "supervisor", "admin"):
        tokens[role], _ = create_token(conn, f"{role}-1", role, created_by="test")
    return Seeded(tokens, crash.alert_id, soc.alert_id)


def settings(db_url: str, **overrides: Any) -> Settings:
    return Settings(**{"database_url": db_url, "pool_min": 1, "pool_max": 4, **overrides})


@contextmanager
def client(db_url: str, **overrides: Any) -> Iterator[TestClient]:
    """An application on the database, started (pool, stream), reached through HTTP."""
    with TestClient(create_app(settings(db_url, **overrides)), raise_server_exceptions=False) as c:
        yield c
