"""The rows of telemetry batches and crash events (pure, no database)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from cloud_ingest.storage import RowError, event_row, telemetry_rows
from cloud_ingest.storage.rows import MAX_SERIES_SPAN_MS, LatestRow, newest_states
from dbc import demo_catalogue
from edge_agent.wire import Capture, Series, TelemetryBatch, WireSchema
from tests.cloud_ingest.storage._samples import RECEIVED, T0, T0_MS, crash, float32_raw


@pytest.fixture(scope="module")
def schema() -> WireSchema:
    return WireSchema.from_catalogue(demo_catalogue())


def _batch(schema: WireSchema, sequence: int = 1) -> TelemetryBatch:
    speed = schema.spec("Vehicle.Speed").number
    volts = schema.spec("Vehicle.LowVoltageBattery.CurrentVoltage").number
    return TelemetryBatch(
        schema.catalogue_id,
        sequence,
        (
            Series(speed, T0_MS + np.array([0, 100, 200, 300]), np.array([0, 1250, 2503, 3011])),
            Series(volts, T0_MS + np.array([50, 1050]), float32_raw(12.6, 12.55)),
            Series(schema.spec("Vehicle.TraveledDistance").number, np.array([], np.int64),
                   np.array([], np.int64)),
        ),
        capture=Capture("hard_braking", T0_MS + 150),
    )  # fmt: skip


def test_batch_row(schema: WireSchema) -> None:
    rows = telemetry_rows("veh-1", _batch(schema, 7), schema, received_at=RECEIVED)
    row = rows.batch
    assert rows.key == ("veh-1", 7)
    assert (row.vehicle_id, row.sequence, row.catalogue_id) == ("veh-1", 7, schema.catalogue_id)
    assert row.received_at == RECEIVED
    assert row.first_time == T0
    assert row.last_time == T0 + timedelta(milliseconds=1050)
    assert row.samples == 6
    assert (row.capture_name, row.capture_trigger) == (
        "hard_braking",
        T0 + timedelta(milliseconds=150),
    )


def test_series_rows_offsets_physical_and_raw(schema: WireSchema) -> None:
    batch = _batch(schema)
    rows = telemetry_rows("veh-1", batch, schema, received_at=RECEIVED)
    assert [r.path for r in rows.series] == [
        "Vehicle.Speed",
        "Vehicle.LowVoltageBattery.CurrentVoltage",
    ]  # the empty series has no row
    speed, volts = rows.series
    assert speed.start_time == T0 and speed.end_time == T0 + timedelta(milliseconds=300)
    assert speed.times.tolist() == [0, 100, 200, 300] and speed.times.dtype == np.int32
    assert speed.raw.tolist() == [0, 1250, 2503, 3011]
    assert (
        speed.physical.tolist()
        == schema.physical(batch.series[0].signal, batch.series[0].raw).tolist()
    )
    assert speed.physical[1] == 12.5
    assert (speed.n, speed.sequence, speed.vehicle_id) == (4, 1, "veh-1")
    assert volts.start_time == T0 + timedelta(milliseconds=50)
    assert volts.times.tolist() == [0, 1000]
    assert volts.raw.tolist() == float32_raw(12.6, 12.55).tolist()
    assert volts.physical.tolist() == [float(np.float32(12.6)), float(np.float32(12.55))]


def test_latest_rows_are_the_last_samples(schema: WireSchema) -> None:
    rows = telemetry_rows("veh-1", _batch(schema), schema, received_at=RECEIVED)
    assert [(r.path, r.time, r.raw) for r in rows.latest] == [
        ("Vehicle.Speed", T0 + timedelta(milliseconds=300), 3011),
        ("Vehicle.LowVoltageBattery.CurrentVoltage", T0 + timedelta(milliseconds=1050),
         int(float32_raw(12.55)[0])),
    ]  # fmt: skip
    assert rows.latest[0].value == 30.11


def test_empty_batch(schema: WireSchema) -> None:
    rows = telemetry_rows(
        "veh-1", TelemetryBatch(schema.catalogue_id, 3, ()), schema, received_at=RECEIVED
    )
    assert rows.series == () and rows.latest == ()
    assert rows.batch.first_time is None and rows.batch.last_time is None
    assert rows.batch.samples == 0 and rows.batch.capture_name is None


def test_a_series_over_a_day_is_split(schema: WireSchema) -> None:
    speed = schema.spec("Vehicle.Speed").number
    day = MAX_SERIES_SPAN_MS
    times = T0_MS + np.array([0, day, day + 1, 2 * day + 1, 3 * day + 2])
    batch = TelemetryBatch(schema.catalogue_id, 1, (Series(speed, times, np.arange(5)),))
    rows = telemetry_rows("veh-1", batch, schema, received_at=RECEIVED)
    assert [(r.start_time, r.times.tolist(), r.raw.tolist()) for r in rows.series] == [
        (T0, [0, day], [0, 1]),
        (T0 + timedelta(milliseconds=day + 1), [0, day], [2, 3]),
        (T0 + timedelta(milliseconds=3 * day + 2), [0], [4]),
    ]
    assert all(r.end_time - r.start_time <= timedelta(days=1) for r in rows.series)
    assert len(rows.latest) == 1 and rows.latest[0].raw == 4


def test_refusals(schema: WireSchema) -> None:
    with pytest.raises(RowError, match="aware"):
        telemetry_rows("veh-1", _batch(schema), schema, received_at=datetime(2026, 3, 1))
    other = TelemetryBatch("0123456789abcdef", 1, ())
    with pytest.raises(RowError, match="catalogue 0123456789abcdef"):
        telemetry_rows("veh-1", other, schema, received_at=RECEIVED)
    speed = schema.spec("Vehicle.Speed").number
    far_away = Series(speed, np.array([2**62]), np.zeros(1, np.int64))
    far = TelemetryBatch(schema.catalogue_id, 1, (far_away,))
    with pytest.raises(RowError, match="storable range"):
        telemetry_rows("veh-1", far, schema, received_at=RECEIVED)


def test_newest_states_keep_the_newest_time() -> None:
    old = LatestRow("veh-1", "Vehicle.Speed", T0, 1.0, 100)
    new = LatestRow("veh-1", "Vehicle.Speed", T0 + timedelta(seconds=1), 2.0, 200)
    other = LatestRow("veh-2", "Vehicle.Speed", T0, 3.0, 300)
    assert newest_states([new, old, other]) == [new, other]
    assert newest_states([old, new]) == [new]


def test_event_row() -> None:
    row = event_row("veh-1", crash())
    assert (row.vehicle_id, row.sequence, row.kind) == ("veh-1", 4, "crash")
    assert row.time == T0 + timedelta(milliseconds=500)
    assert '"severity":"SEVERE"' in row.payload
    with pytest.raises(RowError, match="came from 'veh-2'"):
        event_row("veh-2", crash())
