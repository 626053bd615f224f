"""The fleet load generator holds ten thousand vehicles connected to a private Mosquitto.

Provisions ``--vehicles`` vehicles (password file and ACL, one login each), starts a private
Mosquitto with them on a free loopback port (its open-files limit raised to the hard limit),
connects the fleet at ``--connect-rate`` per second, then holds every connection for
``--duration`` seconds while each vehicle publishes a telemetry batch every
``--batch-interval`` seconds at ``--rate`` samples/s. During the hold it samples the
connections every second and measures messages/s, samples/s and the CPU of the generator
(this process) and of the broker (from /proc).

    python -m benchmarks.bench_fleet [--vehicles 10000] [--duration 60] [--rate 10]
                                     [--batch-interval 30] [--connect-rate 1000]

Target (issue 6): 10,000 vehicles held for 60 s, 0 connections lost.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks._services import cpu_seconds, raise_nofile, rss_mb, start_acl_broker
from can2care.devservices import _proc
from cloud_ingest.provisioning import VehicleCredential
from simulators.fleet import Fleet, FleetConfig, FleetStats, fleet_credentials, provision

_TARGET_VEHICLES = 10_000
_TARGET_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=_TARGET_VEHICLES)
    parser.add_argument("--duration", type=float, default=_TARGET_SECONDS, help="hold, s")
    parser.add_argument("--rate", type=float, default=10.0, help="samples/s per vehicle")
    parser.add_argument("--batch-interval", type=float, default=30.0, help="s")
    parser.add_argument("--connect-rate", type=float, default=1000.0, help="per s")
    args = parser.parse_args()
    raise_nofile()
    tmp = Path(tempfile.mkdtemp(prefix="can2care-bench-fleet-"))
    tmp.chmod(0o755)
    try:
        credentials = fleet_credentials("bench-", args.vehicles, seed="bench-fleet")
        provision(tmp, credentials)
        port = _proc.free_port()
        broker = start_acl_broker(tmp, port)
        try:
            _bench(args, port, credentials, broker.pid)
        finally:
            broker.terminate()
            broker.wait(30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _bench(
    args: argparse.Namespace, port: int, credentials: list[VehicleCredential], broker_pid: int
) -> None:
    config = FleetConfig(
        vehicles=args.vehicles,
        port=port,
        credentials=tuple(credentials),
        samples_per_s=args.rate,
        batch_interval_s=args.batch_interval,
        connect_rate=args.connect_rate,
        trace_s=max(600.0, args.batch_interval),
    )
    fleet = Fleet(config)
    print(
        f"connecting {args.vehicles:,} vehicles at {args.connect_rate:,.0f}/s to a private "
        f"Mosquitto on port {port} ...",
        flush=True,
    )
    started = time.monotonic()
    fleet.start()
    try:
        deadline = started + args.vehicles / args.connect_rate + 60
        while fleet.stats().connected < args.vehicles and time.monotonic() < deadline:
            time.sleep(0.2)
        ramp = fleet.stats()
        print(
            f"connected {ramp.connected:,} in {time.monotonic() - started:.1f} s "
            f"({ramp.refused} refused, {ramp.connect_errors} socket errors)",
            flush=True,
        )
        first, broker_cpu0 = fleet.stats(), cpu_seconds(broker_pid)
        least = first.connected
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            least = min(least, fleet.stats().connected)
        last, broker_cpu1 = fleet.stats(), cpu_seconds(broker_pid)
        broker_rss = rss_mb(broker_pid)
    finally:
        final = fleet.stop()
    _report(args, first, last, final, least, broker_cpu1 - broker_cpu0, broker_rss)


def _report(
    args: argparse.Namespace,
    first: FleetStats,
    last: FleetStats,
    final: FleetStats,
    least: int,
    broker_cpu: float,
    broker_rss: float,
) -> None:
    seconds = last.elapsed_s - first.elapsed_s
    lost = last.connection_losses - first.connection_losses
    messages = (last.acked - first.acked) / seconds
    samples = (last.samples_acked - first.samples_acked) / seconds
    cpu = (last.cpu_s - first.cpu_s) / seconds
    print(
        f"hold: {seconds:.1f} s, {args.rate:g} samples/s per vehicle, a batch every "
        f"{args.batch_interval:g} s"
    )
    print(f"  connections held     {last.connected:,} at the end, {least:,} at least")
    print(f"  connections lost     {lost:,}")
    print(f"  messages/s           {messages:,.1f} (telemetry batches acked)")
    print(f"  samples/s            {samples:,.0f}")
    print(f"  payload bytes/s      {(last.payload_bytes - first.payload_bytes) / seconds:,.0f}")
    print(f"  generator CPU        {cpu:.1%} of a core")
    print(
        f"  broker CPU           {broker_cpu / seconds:.1%} of a core, "
        f"{broker_rss:,.0f} MB resident"
    )
    print(
        f"  at stop              {final.published:,} batches published, {final.acked:,} acked, "
        f"{final.dropped} dropped, {final.publish_failures} refused by the broker"
    )
    met = least >= _TARGET_VEHICLES and lost == 0 and seconds >= _TARGET_SECONDS - 0.5
    print(
        f"target: {_TARGET_VEHICLES:,} vehicles held for {_TARGET_SECONDS:.0f} s, 0 lost: "
        f"{'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
