"""End-to-end ingest: fleet generator -> private Mosquitto -> ingest -> private TimescaleDB.

Everything runs on this machine: a Mosquitto with the fleet's logins and ACL, a durable
TimescaleDB cluster (fsync on), ``can2care ingest`` in a process of its own, and the fleet
load generator (`simulators.fleet`) in this process. First, in the same run, the plain
narrow-row layout (time, vehicle, signal, value), one row per sample, is written by binary
COPY for ``--copy-seconds`` into a hypertable of the same chunking, to give the rate such a
layout reaches here. Then the fleet publishes for ``--duration`` seconds; every ``--every``
seconds the ingest service's stored samples (its Prometheus counter), its oldest
unacknowledged message (lag) and the CPU of each process are read. At the end the fleet stops,
the service drains, and the samples in the database are counted against the samples the
broker acknowledged to the fleet (exactly once).

    python -m benchmarks.bench_ingest [--duration 300] [--vehicles 1000] [--rate 1000]
                                      [--batch-interval 20] [--copy-seconds 20]

Target (issue 6): at least 1,000,000 samples/s sustained for 5 minutes with bounded lag.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg

from benchmarks._services import cpu_seconds, raise_nofile, start_acl_broker
from can2care.devservices import Postgres, _proc
from cloud_ingest.provisioning import VehicleCredential
from cloud_ingest.storage import Vehicle, migrate, register_vehicles
from simulators.fleet import Fleet, FleetConfig, fleet_credentials, provision

_TARGET_RATE = 1_000_000
_TARGET_SECONDS = 300.0
_SAMPLES = re.compile(r"^can2care_ingest_samples_total (\S+)$", re.MULTILINE)


# -- the narrow-row baseline --------------------------------------------------------------------

_NARROW_TABLE = """
CREATE TABLE narrow_sample (
    time       timestamptz NOT NULL,
    vehicle_id text NOT NULL,
    signal_id  integer NOT NULL,
    value      float8 NOT NULL
);
SELECT create_hypertable('narrow_sample', by_range('time', interval '15 minutes'),
                         create_default_indexes => false);
CREATE INDEX narrow_sample_vehicle_signal_time ON narrow_sample (vehicle_id, signal_id, time DESC);
"""


def _narrow_stream(rows: int, start_us: int, vehicles: list[bytes]) -> bytes:
    """A binary COPY stream of ``rows`` narrow rows, made with NumPy (the fastest client)."""
    per_vehicle = rows // len(vehicles)
    width = len(vehicles[0])
    record = np.dtype([("fields", ">i2"), ("tlen", ">i4"), ("time", ">i8"), ("vlen", ">i4"),
                       ("vehicle", f"S{width}"), ("slen", ">i4"), ("signal", ">i4"),
                       ("flen", ">i4"), ("value", ">f8")])  # fmt: skip
    out = np.empty(per_vehicle * len(vehicles), dtype=record)
    out["fields"], out["tlen"], out["vlen"], out["slen"], out["flen"] = 4, 8, width, 4, 8
    index = np.arange(len(out))
    out["time"] = start_us + (index % per_vehicle) * 1000
    out["vehicle"] = np.repeat(np.array(vehicles), per_vehicle)
    out["signal"] = index % 80
    out["value"] = np.sin(index / 100.0) * 100
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    return header + out.tobytes() + b"\xff\xff"


def _narrow_rate(url: str, seconds: float) -> float:
    """Rows per second of narrow-row binary COPY, one transaction per 100,000 rows."""
    vehicles = [f"bench-{i:05d}".encode() for i in range(100)]
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    start_us = (datetime.now(UTC) - timedelta(hours=2) - epoch) // timedelta(microseconds=1)
    written = 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_NARROW_TABLE)
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            data = _narrow_stream(100_000, start_us + written * 10, vehicles)
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy("COPY narrow_sample FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.write(data)
            written += 100_000
        rate = written / (time.perf_counter() - began)
        conn.execute("DROP TABLE narrow_sample")
    return rate


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Reading:
    at: float
    stored: float
    acked: int
    lag_s: float
    pending: int
    cpu: dict[str, float]


def _metrics(port: int) -> tuple[float, float, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    match = _SAMPLES.search(text)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        health = json.load(response)
    stored = float(match.group(1)) if match else 0.0
    return stored, float(health["oldest_pending_s"]), int(health["pending_messages"])


def _postgres_pids(data_dir: Path) -> list[int]:
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == postmaster:
                pids.append(int(entry.name))
    return pids


def _cpu(pids: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(cpu_seconds(p) for p in group) for name, group in pids.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=_TARGET_SECONDS, help="s")
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1000.0, help="samples/s per vehicle")
    parser.add_argument("--batch-interval", type=float, default=20.0, help="s")
    parser.add_argument("--copy-seconds", type=float, default=20.0)
    parser.add_argument("--every", type=float, default=10.0, help="s between readings")
    parser.add_argument("--warm-up", type=float, default=30.0, help="s before measuring")
    args = parser.parse_args()
    raise_nofile()
    tmp = Path(tempfile.mkdtemp(prefix="can2care-bench-ingest-"))
    tmp.chmod(0o755)
    broker: subprocess.Popen[bytes] | None = None
    cluster = Postgres(tmp / "pg", durable=True)
    try:
        credentials = fleet_credentials("bench-", args.vehicles, seed="bench-ingest")
        provisioned = provision(tmp / "broker", credentials)
        mqtt_port = _proc.free_port()
        broker = start_acl_broker(tmp / "broker", mqtt_port)
        endpoint = cluster.start(_proc.free_port())
        with psycopg.connect(endpoint.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE fleet")
        url = endpoint.dsn("fleet")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION timescaledb")
            migrate(conn)
            register_vehicles(conn, [Vehicle(c.vehicle_id) for c in credentials])
        print(f"narrow-row COPY for {args.copy_seconds:.0f} s ...", flush=True)
        narrow = _narrow_rate(url, args.copy_seconds)
        print(f"  narrow rows: {narrow:,.0f} rows/s", flush=True)
        _run(args, tmp, url, mqtt_port, provisioned.ingest_password_file, credentials,
             cluster.data_dir, broker.pid, narrow)  # fmt: skip
    finally:
        if broker is not None:
            broker.terminate()
            broker.wait(30)
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _run(
    args: argparse.Namespace, tmp: Path, url: str, mqtt_port: int, ingest_password: Path,
    credentials: list[VehicleCredential], data_dir: Path, broker_pid: int, narrow: float,
) -> None:  # fmt: skip
    http_port = _proc.free_port()
    env = {**os.environ, "CAN2CARE_INGEST__MQTT__PASSWORD_FILE": str(ingest_password)}
    with (tmp / "ingest.log").open("wb") as log:
        ingest = subprocess.Popen(
            [sys.executable, "-m", "can2care", "ingest", "--database", url,
             "--broker", f"127.0.0.1:{mqtt_port}", "--http-port", str(http_port),
             "--client-id", "bench-ingest-1"],
            env=env, stdout=log, stderr=log,
        )  # fmt: skip
    try:
        if not _proc.wait_until(lambda: not _proc.port_is_free("127.0.0.1", http_port), 60):
            raise SystemExit(
                "the ingest service did not start: " + (tmp / "ingest.log").read_text()
            )
        time.sleep(2)
        fleet = Fleet(
            FleetConfig(
                vehicles=args.vehicles, port=mqtt_port, credentials=tuple(credentials),
                samples_per_s=args.rate, batch_interval_s=args.batch_interval,
                connect_rate=1000.0, trace_s=max(600.0, args.batch_interval),
            )
        )  # fmt: skip
        pids = {
            "ingest": [ingest.pid],
            "postgres": _postgres_pids(data_dir),
            "broker": [broker_pid],
            "fleet": [os.getpid()],
        }
        print(
            f"fleet of {args.vehicles:,} vehicles at {args.rate:,.0f} samples/s each, "
            f"{args.duration:.0f} s after {args.warm_up:.0f} s of warm-up",
            flush=True,
        )
        fleet.start()
        began = time.monotonic()
        readings: list[Reading] = []
        end = began + args.warm_up + args.duration
        while time.monotonic() < end:
            time.sleep(args.every)
            stored, lag, pending = _metrics(http_port)
            pids["postgres"] = _postgres_pids(data_dir)
            reading = Reading(time.monotonic() - began, stored, fleet.stats().samples_acked,
                              lag, pending, _cpu(pids))  # fmt: skip
            readings.append(reading)
            print(f"  {reading.at:6.0f} s  stored {stored:,.0f}  acked {reading.acked:,}  "
                  f"lag {lag:.1f} s  pending {pending}", flush=True)  # fmt: skip
        final = fleet.stop(drain_s=60)
        _proc.wait_until(lambda: _metrics(http_port)[0] >= final.samples_acked, 300, 1.0)
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT coalesce(sum(n), 0) FROM telemetry_series").fetchone()
        in_db = int(row[0]) if row else 0
    finally:
        ingest.terminate()
        ingest.wait(60)
    _report(args, readings, final.samples_acked, final.samples_published, in_db, narrow)


def _report(
    args: argparse.Namespace,
    readings: list[Reading],
    acked: int,
    published: int,
    in_db: int,
    narrow: float,
) -> None:
    window = [r for r in readings if r.at >= args.warm_up]
    first, last = window[0], window[-1]
    seconds = last.at - first.at
    rate = (last.stored - first.stored) / seconds
    lags = [r.lag_s for r in window]
    print()
    print(f"measured window      {seconds:.0f} s (after {first.at:.0f} s)")
    print(f"stored               {rate:,.0f} samples/s")
    print(f"narrow-row COPY      {narrow:,.0f} rows/s  (ratio {rate / narrow:.2f}x)")
    print(f"lag (oldest unacked) max {max(lags):.1f} s, last {lags[-1]:.1f} s")
    print(f"pending messages     max {max(r.pending for r in window)}")
    for name in first.cpu:
        share = (last.cpu[name] - first.cpu[name]) / seconds
        print(f"CPU {name:<16} {share:.0%} of a core")
    once = in_db == acked == published
    print(f"exactly once         {in_db:,} samples stored; the fleet published {published:,}, "
          f"the broker acknowledged {acked:,}: {'equal' if once else 'DIFFERENT'}")  # fmt: skip
    met = rate >= _TARGET_RATE and seconds >= min(args.duration, _TARGET_SECONDS) - args.every
    print(f"target: {_TARGET_RATE:,} samples/s for {_TARGET_SECONDS:.0f} s with bounded lag: "
          f"{'met' if met and once else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
