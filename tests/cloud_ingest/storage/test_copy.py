"""The NumPy binary COPY formatter against psycopg's own row-by-row binary COPY."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_ingest.storage import SeriesRow, migrate
from cloud_ingest.storage._copy import COLUMNS, series_copy_data
from tests.cloud_ingest.storage._samples import T0

Conn = psycopg.Connection[tuple[object, ...]]


def _row(vehicle: str, path: str, sequence: int, offsets: list[int], seed: int) -> SeriesRow:
    rng = np.random.default_rng(seed)
    n = len(offsets)
    physical = rng.normal(0, 1e6, n)
    physical[::7] = np.nan  # NaN is a value, not a NULL
    raw = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64, endpoint=True)
    times = np.array(sorted(offsets), dtype=np.int32)
    start = T0 + timedelta(milliseconds=seed, microseconds=seed)  # microseconds survive
    end = start + timedelta(milliseconds=int(times[-1]))
    return SeriesRow(vehicle, path, sequence, start, end, times, physical, raw)


def _stored(conn: Conn) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT vehicle_id, signal_id, sequence, start_time, end_time, n, times, raw,"
        " physical::text FROM telemetry_series ORDER BY sequence, signal_id"  # NaN as text
    ).fetchall()


def test_the_stream_stores_what_psycopg_row_by_row_stores(db_conn: Conn) -> None:
    migrate(db_conn)
    rows = [
        _row("veh-1", "Vehicle.Speed", 1, [0, 5, 5, 900], 1),
        _row("véhicule-ü", "Vehicle.Speed", 2, [0], 2),  # UTF-8 vehicle id
        _row("veh-1", "Vehicle.Other", 3, list(range(0, 86_400_000, 86_400)), 3),
    ]
    ids = {"Vehicle.Speed": 1, "Vehicle.Other": 70_000}
    with db_conn.cursor() as cur:
        with cur.copy(f"COPY telemetry_series ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(series_copy_data(rows, ids))
        ours = _stored(db_conn)
        cur.execute("TRUNCATE telemetry_series")
        with cur.copy(f"COPY telemetry_series ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(
                ["text", "int4", "int8", "timestamptz", "timestamptz", "int4",
                 "int4[]", "float8[]", "int8[]"]
            )  # fmt: skip
            for r in rows:
                copy.write_row(
                    (r.vehicle_id, ids[r.path], r.sequence, r.start_time, r.end_time, r.n,
                     r.times.tolist(), r.physical.tolist(), r.raw.tolist())
                )  # fmt: skip
        theirs = _stored(db_conn)
    assert ours == theirs
    assert len(ours) == 3 and ours[2][5] == 1000


def test_no_rows_is_an_empty_stream() -> None:
    data = series_copy_data([], {})
    assert data.startswith(b"PGCOPY\n\xff\r\n\x00") and data.endswith(b"\xff\xff")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 86_400_000), min_size=1, max_size=30), max_size=6))
def test_field_lengths_frame_every_row(series: list[list[int]]) -> None:
    rows = [_row("v", "p", i, offsets, i) for i, offsets in enumerate(series)]
    data = series_copy_data(rows, {"p": 9})
    at = 19  # after the signature, flags and extension length
    for row in rows:
        (fields,) = np.frombuffer(data, ">i2", 1, at)
        assert fields == 9
        at += 2
        lengths = []
        for _ in range(9):
            (size,) = np.frombuffer(data, ">i4", 1, at)
            lengths.append(int(size))
            at += 4 + int(size)
        assert lengths[6:] == [20 + 8 * row.n, 20 + 12 * row.n, 20 + 12 * row.n]
    assert data[at:] == b"\xff\xff"
