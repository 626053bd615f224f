"""``can2care services``: the private Mosquitto and TimescaleDB for development."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .devservices import ServiceManager


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "services",
        help="start, stop or inspect the private Mosquitto and TimescaleDB",
        description="Private development services under a run directory, on free loopback "
        "ports. The machine's own services are left alone.",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="where the services keep their files (default: $CAN2CARE_RUN_DIR or ./.run)",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    start = actions.add_parser("start", help="start both services (reusing running ones)")
    start.add_argument("--mqtt-port", type=int, default=None, help="broker port (default: free)")
    start.add_argument("--pg-port", type=int, default=None, help="PostgreSQL port (default: free)")
    start.set_defaults(func=_start)
    actions.add_parser("stop", help="stop both services").set_defaults(func=_stop)
    actions.add_parser("status", help="show what runs where").set_defaults(func=_status)
    actions.add_parser(
        "env", help="print shell variables pointing at the running services"
    ).set_defaults(func=_env)
    actions.add_parser("reset", help="stop both services and delete their data").set_defaults(
        func=_reset
    )


def _start(args: argparse.Namespace) -> int:
    services = ServiceManager(args.run_dir).start(mqtt_port=args.mqtt_port, pg_port=args.pg_port)
    print(f"mosquitto   {services.mqtt.url}")
    print(f"postgres    {services.database_url}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    ServiceManager(args.run_dir).stop()
    return 0


def _status(args: argparse.Namespace) -> int:
    statuses = ServiceManager(args.run_dir).status()
    for status in statuses:
        where = status.endpoint or ""
        print(f"{status.name:<11} {'running' if status.running else 'stopped':<8} {where}")
    return 0 if all(status.running for status in statuses) else 3


def _env(args: argparse.Namespace) -> int:
    services = ServiceManager(args.run_dir).running()
    if services is None:
        print("# the services are not running: can2care services start")
        return 3
    for key, value in services.environment().items():
        print(f"export {key}={value}")
    return 0


def _reset(args: argparse.Namespace) -> int:
    ServiceManager(args.run_dir).reset()
    return 0
