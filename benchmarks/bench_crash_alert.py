"""Crash to rescue alert: latency from the crash frame on the bus to the webhook (issue 7).

The whole chain runs on this machine against a private Mosquitto and a private, durable
TimescaleDB (fsync on), on free ports: for each vehicle a python-can ``virtual`` bus carrying
the demo EV's traffic in real time and the edge agent (the shipped example configuration,
50 ms micro-batches, crash cooldown lowered to 0.2 s), then the ingest service, the rules
worker and the webhook delivery worker, as the deployed commands (``can2care ingest``,
``can2care rules run``) in processes of their own, or with ``--threads`` in this process.
A crash is the ACU's airbag frame sent among the traffic; its webhook arrives at a receiver
here, which then resolves the alert (the ``crash`` rule keeps one open alert per vehicle).
Vehicles take turns, one crash every ``--interval`` seconds.

Clocks, all this machine's wall clock: the crash frame's send time; the event's arrival at an
extra MQTT subscriber of the agents' topic; the commit of the event row and of the alert
(PostgreSQL's commit timestamps, ``track_commit_timestamp = on``); the webhook's arrival.

    python -m benchmarks.bench_crash_alert [--crashes 200] [--vehicles 2] [--interval 0.5]

Target (issue 7): p99 of crash frame to webhook received <= 200 ms over 200 crashes.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

from benchmarks._crash_chain import CrashChain, CrashTiming
from can2care.devservices import Mosquitto, Postgres
from can2care.devservices._proc import free_port

TARGET_P99_MS = 200.0
_DATABASE = "crash_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=200, help="crashes measured")
    parser.add_argument("--warmup", type=int, default=4, help="crashes before, not counted")
    parser.add_argument("--vehicles", type=int, default=2, help="vehicles taking turns")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between crashes")
    parser.add_argument("--agent-latency-ms", type=int, default=50, help="batching.max_latency_ms")
    parser.add_argument("--threads", action="store_true", help="services in this process")
    parser.add_argument("--raw", action="store_true", help="also print every crash's hops")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    tmp = Path(tempfile.mkdtemp(prefix="can2care-bench-crash-"))
    tmp.chmod(0o755)
    broker = Mosquitto(tmp / "broker")
    database = Postgres(tmp / "postgres", durable=True)
    try:
        mqtt_port = free_port()
        broker.start(mqtt_port)
        url = _start_database(database, free_port())
        print("services up; starting the chain ...", flush=True)
        timings, warmup = _run(args, url, mqtt_port, tmp / "chain")
    finally:
        database.stop()
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    _report(args, timings, warmup)


def _start_database(database: Postgres, port: int) -> str:
    """The private cluster with commit timestamps on, and a database with TimescaleDB."""
    endpoint = database.start(port)
    with psycopg.connect(endpoint.dsn(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET track_commit_timestamp = on")  # needs a restart
    database.stop()
    endpoint = database.start(port)
    with psycopg.connect(endpoint.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {_DATABASE}")
    with psycopg.connect(endpoint.dsn(_DATABASE), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION timescaledb")
    return endpoint.dsn(_DATABASE)


def _run(
    args: argparse.Namespace, url: str, mqtt_port: int, workdir: Path
) -> tuple[list[CrashTiming], list[CrashTiming]]:
    names = tuple(f"crash-{n + 1:02d}" for n in range(args.vehicles))
    chain = CrashChain(
        url, mqtt_port, workdir, vehicles=names,
        processes=not args.threads, agent_latency_ms=args.agent_latency_ms,
    )  # fmt: skip
    with chain:
        if not chain.warm(60):
            raise SystemExit("no telemetry reached the database within 60 s")
        total = args.warmup + args.crashes
        print(f"{total} crashes, one every {args.interval:g} s ...", flush=True)
        next_at = time.monotonic()
        for n in range(total):
            name = names[n % len(names)]
            if not chain.wait_resolved(name, 30):
                print(f"  {name}: the last crash's alert did not come within 30 s", flush=True)
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at + args.interval, time.monotonic())
            chain.crash(name)
            if (n + 1) % 50 == 0:
                print(f"  {n + 1} sent", flush=True)
        for crash in chain.crashes[-len(names) :]:
            chain.wait_webhook(crash, 10)
        for name in names:
            chain.wait_resolved(name, 10)
    timings = chain.timings()
    return timings[args.warmup :], timings[: args.warmup]


def _ms(later: float | None, earlier: float | None) -> float:
    if later is None or earlier is None:
        return float("nan")
    return (later - earlier) * 1000


def _row(label: str, values: np.ndarray) -> str:
    v = values[~np.isnan(values)]
    if not len(v):
        return f"  {label:<38} no data"
    p50, p95, p99 = (float(np.percentile(v, q, method="inverted_cdf")) for q in (50, 95, 99))
    return (
        f"  {label:<38} {p50:7.1f} {p95:7.1f} {p99:7.1f} {float(v.max()):7.1f}"
        f" {float(v.mean()):7.1f}"
    )


def _report(
    args: argparse.Namespace, timings: list[CrashTiming], warmup: list[CrashTiming]
) -> None:
    done = [t for t in timings if t.webhook is not None]
    sent = np.array([t.crash.sent for t in done])
    broker = np.array([_ms(t.at_broker, t.crash.sent) for t in done])
    stored = np.array([_ms(t.stored, t.crash.sent) for t in done])
    committed = np.array([_ms(t.committed, t.crash.sent) for t in done])
    total = np.array([t.total_ms for t in done], dtype=np.float64)
    services = "threads of one process" if args.threads else "processes of their own"
    lines = [
        "",
        f"{len(timings)} crashes measured ({len(warmup)} before, not counted), "
        f"{args.vehicles} vehicles, one crash every {args.interval:g} s; agent micro-batch "
        f"{args.agent_latency_ms} ms; ingest, rules worker and delivery in {services}",
        f"  webhooks received: {len(done)} of {len(timings)}",
        "",
        f"  {'ms from the crash frame sent to':<38} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}"
        f" {'mean':>7}",
        _row("event at an MQTT subscriber", broker),
        _row("event row committed (ingest)", stored),
        _row("alert committed (rules worker)", committed),
        _row("webhook received", total),
        "",
        f"  {'ms per stage':<38} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'mean':>7}",
        _row("agent: frame -> subscriber", broker),
        _row("broker + ingest: subscriber -> commit", stored - broker),
        _row("rules worker: event -> alert commit", committed - stored),
        _row("delivery: alert commit -> webhook", total - committed),
        "",
    ]
    if len(done):
        p99 = float(np.percentile(total, 99, method="inverted_cdf"))
        met = len(done) == len(timings) and p99 <= TARGET_P99_MS
        lines.append(
            f"  p99 crash frame -> webhook: {p99:.1f} ms (target <= {TARGET_P99_MS:.0f} ms): "
            + ("met" if met else "NOT met")
        )
        slowest = np.argsort(total)[-3:][::-1]
        lines.append(
            "  slowest: "
            + "; ".join(
                f"{total[i]:.0f} ms (agent {broker[i]:.0f}, ingest {stored[i] - broker[i]:.0f}, "
                f"rules {committed[i] - stored[i]:.0f}, delivery {total[i] - committed[i]:.0f})"
                for i in slowest
            )
        )
        lines.append(f"  run length: {float(sent[-1] - sent[0]):.0f} s")
    if warmup:
        first = [t.total_ms for t in warmup]
        lines.append(
            "  warm-up crashes (not counted), ms: "
            + ", ".join("-" if v is None else f"{v:.0f}" for v in first)
        )
    print("\n".join(lines))
    if args.raw:
        for t in timings:
            hops = (_ms(at, t.crash.sent) for at in (t.at_broker, t.stored, t.committed))
            print(
                f"{t.crash.vehicle} seq {t.sequence} sent {t.crash.sent:.3f}, ms to: broker"
                " {:.1f} stored {:.1f} alert {:.1f}".format(*hops),
                f"webhook {_ms(t.webhook.arrived if t.webhook else None, t.crash.sent):.1f}",
            )


if __name__ == "__main__":
    main()
