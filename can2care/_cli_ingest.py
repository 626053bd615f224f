"""``can2care ingest``: run the ingest service (MQTT to TimescaleDB), or retire one."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="run the ingest service: the fleet's MQTT messages into TimescaleDB",
        description="Subscribe to the fleet's telemetry, events and status in a shared MQTT 5 "
        "group, store them in TimescaleDB, acknowledge after commit (docs/ingest.md). "
        "Options override the configuration file and the CAN2CARE_INGEST__* environment.",
    )
    parser.add_argument("-c", "--config", type=Path, metavar="TOML", help="configuration file")
    parser.add_argument("--database", metavar="URL", help="database URL (database.url)")
    parser.add_argument("--broker", metavar="HOST:PORT", help="MQTT broker (mqtt.host, mqtt.port)")
    parser.add_argument("--group", help="shared-subscription group (mqtt.group)")
    parser.add_argument("--client-id", help="MQTT client id, names the session (mqtt.client_id)")
    parser.add_argument("--http-port", type=int, help="metrics and health port, 0: off")
    parser.add_argument(
        "--check", action="store_true", help="validate the configuration, print it and exit"
    )
    parser.add_argument(
        "--retire",
        action="store_true",
        help="retire the client id of a process removed for good (after it stopped): store "
        "what the broker queued for its session, leave the group, end the session, exit",
    )
    parser.add_argument(
        "--quiet-s",
        type=float,
        metavar="S",
        help="with --retire: finish once nothing arrived for S seconds (default 5)",
    )
    parser.set_defaults(func=_run)


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if args.database:
        overrides["database.url"] = args.database
    if args.broker:
        host, _, port = args.broker.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--broker {args.broker!r} is not HOST:PORT")
        overrides["mqtt.host"], overrides["mqtt.port"] = host, int(port)
    if args.group:
        overrides["mqtt.group"] = args.group
    if args.client_id:
        overrides["mqtt.client_id"] = args.client_id
    if args.http_port is not None:
        overrides["http.port"] = args.http_port
    return overrides


def _check_modes(args: argparse.Namespace) -> None:
    if args.retire and args.check:
        raise ValueError("--retire and --check exclude each other")
    if args.quiet_s is not None and not args.retire:
        raise ValueError("--quiet-s goes with --retire")
    if args.quiet_s is not None and not args.quiet_s > 0:
        raise ValueError(f"--quiet-s {args.quiet_s:g} is not a positive number of seconds")


def _run(args: argparse.Namespace) -> int:
    from cloud_ingest.ingest import IngestError, IngestService, load_ingest_config

    try:
        _check_modes(args)
        config = load_ingest_config(args.config, overrides=_overrides(args))
    except (IngestError, ValueError) as exc:
        print(f"can2care: error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        shown = config.model_dump(mode="json")
        if shown["mqtt"].get("password"):
            shown["mqtt"]["password"] = "***"
        import json

        print(json.dumps(shown, indent=2))
        return 0
    if args.retire:
        return _retire(config, 5.0 if args.quiet_s is None else args.quiet_s)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    service = IngestService(config)
    try:
        service.start()
    except IngestError as exc:
        service.stop()
        print(f"can2care: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"can2care ingest: {config.mqtt.client_id} in group {config.mqtt.group} on "
        f"{config.mqtt.host}:{config.mqtt.port}; Ctrl-C stops",
        file=sys.stderr,
    )
    stop.wait()
    service.stop()
    return 0


def _retire(config: Any, quiet_s: float) -> int:
    from cloud_ingest.ingest import IngestError, IngestService

    c = config.mqtt
    try:
        retired = IngestService(config).retire(quiet_s=quiet_s)
    except IngestError as exc:
        print(f"can2care: error: {' '.join(str(exc).split())}", file=sys.stderr)  # one line
        return 1
    session = "session ended" if retired.session_found else "the broker had no session for it"
    print(f"can2care ingest: retired {c.client_id}: {retired.messages} messages stored, {session}")
    return 0
