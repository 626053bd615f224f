"""The schema's query functions against the private TimescaleDB."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import psycopg
import pytest

from cloud_ingest.storage import Vehicle, migrate, register_vehicles, store_many, telemetry_rows
from dbc import demo_catalogue
from edge_agent.wire import Series, TelemetryBatch, WireSchema
from tests.cloud_ingest.storage._samples import RECEIVED, T0, T0_MS

Conn = psycopg.Connection[tuple[object, ...]]
SPEED = "Vehicle.Speed"

_BY_SAMPLES = """
SELECT time_bucket(%s, time), avg(value), min(value), max(value), count(*)
FROM signal_samples(%s, %s, %s, %s) GROUP BY 1 ORDER BY 1
"""


@pytest.fixture
def db(db_conn: Conn) -> Conn:
    """Three batches of speed for veh-1, irregular times, one batch late and overlapping."""
    migrate(db_conn)
    register_vehicles(db_conn, [Vehicle("veh-1"), Vehicle("veh-2")])
    schema = WireSchema.from_catalogue(demo_catalogue())
    number = schema.spec(SPEED).number
    rng = np.random.default_rng(3)
    items = []
    for sequence, start in enumerate((0, 3_600_000, 1_800_000)):  # the third arrives late
        times = T0_MS + start + np.sort(rng.integers(0, 5_400_000, 3000))
        raw = rng.integers(0, 20_000, 3000)
        batch = TelemetryBatch(schema.catalogue_id, sequence, (Series(number, times, raw),))
        items.append(telemetry_rows("veh-1", batch, schema, received_at=RECEIVED))
    store_many(db_conn, items)
    return db_conn


@pytest.mark.parametrize(
    ("width", "start_min", "end_min"),
    [
        (timedelta(minutes=1), 0, 24 * 60),
        (timedelta(minutes=5), 17, 95),  # edges inside series rows
        (timedelta(seconds=7), 44, 46),  # a width that does not divide a minute
        (timedelta(hours=1), -60, 300),  # the window beyond the data on both sides
    ],
)
def test_signal_buckets_equal_bucketing_the_samples(
    db: Conn, width: timedelta, start_min: int, end_min: int
) -> None:
    window = (T0 + timedelta(minutes=start_min), T0 + timedelta(minutes=end_min))
    ours = db.execute(
        "SELECT * FROM signal_buckets(%s, %s, %s, %s, %s)", ("veh-1", SPEED, *window, width)
    ).fetchall()
    reference = db.execute(_BY_SAMPLES, (width, "veh-1", SPEED, *window)).fetchall()
    assert len(ours) == len(reference) > 0
    for got, want in zip(ours, reference, strict=True):
        assert got[0] == want[0] and got[2:] == want[2:]
        assert got[1] == pytest.approx(want[1], rel=1e-12)  # the sum's order may differ


def test_signal_buckets_of_another_vehicle_or_signal_are_empty(db: Conn) -> None:
    window = (T0, T0 + timedelta(days=1))
    for vehicle, path in (("veh-2", SPEED), ("veh-1", "Vehicle.NoSuchSignal")):
        rows = db.execute(
            "SELECT * FROM signal_buckets(%s, %s, %s, %s, interval '1 minute')",
            (vehicle, path, *window),
        ).fetchall()
        assert rows == []
