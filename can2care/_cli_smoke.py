"""``can2care smoke``: start the private services and prove that both are real."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .devservices import ServiceManager


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "smoke",
        help="start the private broker and database and prove both work end to end",
        description="Starts the private Mosquitto and TimescaleDB (reusing running ones), "
        "makes an MQTT QoS 1 round trip and a hypertable with a time_bucket query.",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="the services' run directory (default: $CAN2CARE_RUN_DIR or ./.run)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave services this command started running afterwards"
    )
    parser.set_defaults(func=_smoke)


def _smoke(args: argparse.Namespace) -> int:
    from .smoke import SmokeError, mqtt_round_trip, timescale_check

    manager = ServiceManager(args.run_dir)
    already = manager.running() is not None
    services = manager.start()
    try:
        print(f"mosquitto  {services.mqtt.url}")
        print(f"postgres   {services.database_url}")
        trip = mqtt_round_trip(services.mqtt.host, services.mqtt.port)
        print(
            f"MQTT       QoS {trip.qos} round trip on {trip.topic} in {trip.seconds * 1000:.1f} ms"
        )
        buckets = timescale_check(services.database_url)
        print(
            f"Timescale  hypertable of {sum(b.samples for b in buckets)} rows in "
            f"{len(buckets)} time_bucket rows:"
        )
        for row in buckets:
            print(f"           {row.bucket:%Y-%m-%d %H:%M} n={row.samples} mean={row.mean:.1f}")
        print("smoke run passed")
    except SmokeError as exc:
        print(f"can2care: smoke run failed: {exc}")
        return 1
    finally:
        if not already and not args.keep:
            manager.stop()
    return 0
