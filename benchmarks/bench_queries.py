"""Care-team queries on 100 million stored samples.

Loads a private, durable TimescaleDB through the ingest path's writer (`store_all`, binary
COPY of series rows): ``--vehicles`` vehicles x ``--signals`` signals at ``--hz`` for
``--days`` days (defaults: 120 x 10 x 1 Hz x 1 day = 103.7 million samples), plus the latest
state of ``--fleet`` vehicles. Then times, best of ``--repeat`` after a warm-up, each query
as the care team's API would send it:

- one vehicle's signal over one day, bucketed per minute (``time_bucket``: mean, min, max,
  count), for a vehicle and day picked at random each time;
- the latest position and state of charge of the 10,000 vehicles of a region from
  ``latest_state`` (binary results, as the API reads them).

    python -m benchmarks.bench_queries [--vehicles 120] [--signals 10] [--hz 1] [--days 1]

Targets (issue 6): the day per minute under 100 ms; the latest state of 10,000 vehicles
under 50 ms.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from can2care.devservices import Postgres, _proc
from cloud_ingest.storage import (
    BatchRow,
    SeriesRow,
    TelemetryRows,
    Vehicle,
    Writes,
    migrate,
    register_vehicles,
    store_all,
)

_DAY_TARGET_MS = 100.0
_LATEST_TARGET_MS = 50.0
_ROW_SECONDS = 600  # each stored series row holds ten minutes, as a 10-minute batch would
_CATALOGUE = "0" * 16
_LATEST_PATHS = (
    "Vehicle.CurrentLocation.Latitude",
    "Vehicle.CurrentLocation.Longitude",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
)

_DAY_QUERY = "SELECT * FROM signal_buckets(%s, %s, %s, %s, interval '1 minute')"

# The vehicles of a region (the fleet's 10,000 are in one), a few signals each.
_LATEST_QUERY = """
SELECT l.vehicle_id, l.signal_id, l.time, l.value
FROM latest_state l JOIN vehicle v USING (vehicle_id)
WHERE v.region = %s
  AND l.signal_id = ANY(ARRAY(SELECT g.signal_id FROM signal g WHERE g.path = ANY(%s)))
"""


def _paths(signals: int) -> list[str]:
    return [*_LATEST_PATHS, *(f"Vehicle.Bench.Signal{i}" for i in range(signals - 3))]


def _load(url: str, args: argparse.Namespace, start: datetime) -> int:
    """Store the samples day by day, ten-minute rows, one transaction per vehicle-hour."""
    rng = np.random.default_rng(1)
    paths = _paths(args.signals)
    per_row = int(_ROW_SECONDS * args.hz)
    offsets = (np.arange(per_row) * (1000 / args.hz)).astype(np.int32)
    rows_per_day = 86_400 // _ROW_SECONDS
    stored = 0
    began = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for v in range(args.vehicles):
            vehicle = f"bench-{v:05d}"
            items = []
            for sequence in range(rows_per_day * args.days):
                r = sequence
                row_start = start + timedelta(seconds=r * _ROW_SECONDS)
                row_end = row_start + timedelta(milliseconds=int(offsets[-1]))
                series = tuple(
                    SeriesRow(vehicle, path, sequence, row_start, row_end, offsets,
                              rng.normal(50, 10, per_row), rng.integers(0, 10_000, per_row))
                    for path in paths
                )  # fmt: skip
                batch = BatchRow(vehicle, sequence, row_end, _CATALOGUE, row_start, row_end,
                                 per_row * len(paths), None, None)  # fmt: skip
                items.append(TelemetryRows(batch, series, ()))
                if len(items) == 6:  # an hour
                    stored += store_all(conn, Writes(telemetry=items)).samples
                    items = []
            if items:
                stored += store_all(conn, Writes(telemetry=items)).samples
            if v % 20 == 19:
                rate = stored / (time.perf_counter() - began)
                print(f"  {v + 1} vehicles, {stored:,} samples ({rate:,.0f}/s)", flush=True)
    return stored


def _latest(url: str, fleet: int, now: datetime) -> None:
    """The latest state of ``fleet`` vehicles: every signal of the bench, one row each."""
    with psycopg.connect(url, autocommit=True) as conn:
        register_vehicles(conn, [Vehicle(f"fleet-{i:05d}", region="north") for i in range(fleet)])
        conn.execute(
            """
            INSERT INTO latest_state (vehicle_id, signal_id, time, value, raw)
            SELECT 'fleet-' || lpad(v::text, 5, '0'), signal_id(p), %s, random() * 100, 0
            FROM generate_series(0, %s - 1) AS v, unnest(%s::text[]) AS p
            """,
            (now, fleet, list(_LATEST_PATHS) + [f"Vehicle.Bench.Signal{i}" for i in range(7)]),
        )
        conn.execute("VACUUM ANALYZE")


def _timed(conn: psycopg.Connection[Any], sql: str, params: Any, repeat: int) -> list[float]:
    conn.execute(sql, params(0)).fetchall()  # warm-up
    times = []
    for i in range(repeat):
        began = time.perf_counter()
        with conn.cursor(binary=True) as cur:
            rows = cur.execute(sql, params(i + 1)).fetchall()
        times.append((time.perf_counter() - began) * 1000)
        assert rows
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=120)
    parser.add_argument("--signals", type=int, default=10)
    parser.add_argument("--hz", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--fleet", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    if args.signals < 3:
        parser.error("--signals must be at least 3")
    tmp = Path(tempfile.mkdtemp(prefix="can2care-bench-queries-"))
    tmp.chmod(0o755)
    cluster = Postgres(tmp / "pg", durable=True)
    try:
        endpoint = cluster.start(_proc.free_port())
        with psycopg.connect(endpoint.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE fleet")
        url = endpoint.dsn("fleet")
        start = datetime(2026, 3, 1, tzinfo=UTC)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION timescaledb")
            migrate(conn)
            register_vehicles(conn, [Vehicle(f"bench-{v:05d}") for v in range(args.vehicles)])
        print(f"loading {args.vehicles} vehicles x {args.signals} signals x {args.hz:g} Hz x "
              f"{args.days} day(s) ...", flush=True)  # fmt: skip
        began = time.perf_counter()
        stored = _load(url, args, start)
        load_s = time.perf_counter() - began
        _latest(url, args.fleet, start + timedelta(days=args.days))
        _report(url, args, start, stored, load_s)
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _report(
    url: str, args: argparse.Namespace, start: datetime, stored: int, load_s: float
) -> None:
    picker = random.Random(7)

    def day(_i: int) -> tuple[str, str, datetime, datetime]:
        vehicle = f"bench-{picker.randrange(args.vehicles):05d}"
        first = start + timedelta(days=picker.randrange(args.days))
        return (vehicle, _LATEST_PATHS[2], first, first + timedelta(days=1))

    with psycopg.connect(url, autocommit=True) as conn:
        size = conn.execute("SELECT pg_size_pretty(hypertable_size('telemetry_series'))").fetchone()
        day_ms = _timed(conn, _DAY_QUERY, day, args.repeat)
        latest_ms = _timed(
            conn, _LATEST_QUERY, lambda _i: ("north", list(_LATEST_PATHS)), args.repeat
        )
        minutes = len(conn.execute(_DAY_QUERY, day(0)).fetchall())
        latest_rows = len(conn.execute(_LATEST_QUERY, ("north", list(_LATEST_PATHS))).fetchall())
    print()
    print(f"stored               {stored:,} samples in {load_s:.0f} s "
          f"({stored / load_s:,.0f}/s); telemetry_series {size[0] if size else '?'}")  # fmt: skip
    per_signal_day = int(86_400 * args.hz)
    print(
        f"day per minute       best {min(day_ms):.1f} ms, median "
        f"{statistics.median(day_ms):.1f} ms, worst {max(day_ms):.1f} ms "
        f"({minutes} minutes of {per_signal_day:,} samples)"
    )
    print(f"latest of {args.fleet:,}     best {min(latest_ms):.1f} ms, median "
          f"{statistics.median(latest_ms):.1f} ms, worst {max(latest_ms):.1f} ms "
          f"({latest_rows:,} rows: position and state of charge)")  # fmt: skip
    day_met = statistics.median(day_ms) < _DAY_TARGET_MS
    latest_met = statistics.median(latest_ms) < _LATEST_TARGET_MS
    print(f"target: day per minute under {_DAY_TARGET_MS:.0f} ms (median): "
          f"{'met' if day_met else 'NOT met'}; latest state of 10,000 vehicles under "
          f"{_LATEST_TARGET_MS:.0f} ms (median): {'met' if latest_met else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
