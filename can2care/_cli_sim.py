"""``can2care sim``: simulate a vehicle's CAN traffic with scenarios, replay a CAN log, or run a
fleet of simulated vehicles against an MQTT broker."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="simulate a vehicle's CAN traffic, or replay a CAN log onto a bus",
        description="Simulated vehicles with labelled scenarios, and log replay "
        "(docs/simulator.md).",
    )
    commands = parser.add_subparsers(title="sim commands", metavar="COMMAND", required=True)
    drive = commands.add_parser(
        "drive",
        help="simulate one drive of the demo vehicle to a log file or a bus",
        description="Simulate one drive of the demo vehicle: frames to a log file (.log "
        "candump, .log.gz, .asc, .blf) or onto a python-can bus, scenarios from a TOML file, "
        "ground-truth labels as JSON Lines. Options override the file's [drive] table.",
    )
    drive.add_argument("--vehicle", "--vin", dest="vehicle", help="vehicle id (VIN)")
    drive.add_argument("--variant", choices=("ev", "combustion"))
    drive.add_argument("--cycle", choices=("urban", "highway", "wltp", "parking"))
    drive.add_argument("--duration", help='seconds, or e.g. "20m", "1h30m" (default 10m)')
    drive.add_argument("--seed", type=int)
    drive.add_argument("--scenarios", type=Path, metavar="TOML", help="a scenario file")
    drive.add_argument("-o", "--output", type=Path, metavar="LOG", help="log file to write")
    drive.add_argument("--labels", type=Path, metavar="JSONL", help="label file to write")
    _bus_arguments(drive)
    drive.set_defaults(func=_drive)
    replay = commands.add_parser(
        "replay",
        help="replay a CAN log onto a python-can bus with its original timing",
        description="Replay a log (candump, ASC, BLF, TRC, optionally .gz) onto a bus at 1x, "
        "--speed N, or --full-speed.",
    )
    replay.add_argument("log", type=Path, metavar="LOG")
    _bus_arguments(replay)
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")
    replay.set_defaults(func=_replay)
    _register_fleet(commands)


def _register_fleet(commands: Any) -> None:
    fleet = commands.add_parser(
        "fleet",
        help="a fleet load generator: N simulated vehicles publishing telemetry over MQTT",
        description="N simulated vehicles, each with its own client id and login, publishing "
        "telemetry batches (wire format, QoS 1) and a retained status to an MQTT broker. "
        "--provision DIR writes the broker's password file and ACL for the fleet, the ingest "
        "user's password and the credentials file, and exits.",
    )
    fleet.add_argument("--host", default="127.0.0.1", help="broker host (default 127.0.0.1)")
    fleet.add_argument("--port", type=int, default=1883, help="broker port (default 1883)")
    fleet.add_argument("--vehicles", type=int, help="vehicles (default: all in --credentials)")
    fleet.add_argument(
        "--rate", type=float, default=100.0, help="samples/s per vehicle (default 100)"
    )
    fleet.add_argument(
        "--batch-interval", type=float, default=10.0, help="seconds per batch (default 10)"
    )
    fleet.add_argument("--duration", default="60", help='seconds, or e.g. "5m" (default 60)')
    fleet.add_argument(
        "--mix", help='drives and weights, e.g. "urban=4,highway=3,crash=1" (cycles, scenarios)'
    )
    fleet.add_argument("--seed", type=int, default=0, help="the fleet's seed (default 0)")
    fleet.add_argument(
        "--connect-rate", type=float, default=200.0, help="connections per second (default 200)"
    )
    fleet.add_argument("--max-inflight", type=int, default=20, help="per vehicle (default 20)")
    fleet.add_argument("--id-prefix", default="fleet-", help='vehicle ids (default "fleet-")')
    login = fleet.add_mutually_exclusive_group()
    login.add_argument("--credentials", type=Path, metavar="JSON", help="a credentials file")
    login.add_argument(
        "--password-seed", metavar="TEXT", help="derive the passwords from this text"
    )
    fleet.add_argument(
        "--provision",
        type=Path,
        metavar="DIR",
        help="write passwords, acl, ingest.password and fleet.json to DIR, then exit",
    )
    fleet.add_argument(
        "--progress-every", type=float, default=5.0, help="seconds between progress lines"
    )
    fleet.set_defaults(func=_fleet)


def _bus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interface",
        "--bus-interface",
        dest="interface",
        help="python-can interface, e.g. socketcan or virtual",
    )
    parser.add_argument("--channel", "--bus-channel", dest="channel", help="e.g. can0")
    parser.add_argument("--speed", type=float, default=1.0, help="speed-up factor (default 1)")
    parser.add_argument("--full-speed", action="store_true", help="send as fast as possible")


def _error(message: object) -> int:
    print(f"can2care: error: {message}", file=sys.stderr)
    return 1


def _drive(args: argparse.Namespace) -> int:
    from dbc import demo_catalogue
    from simulators import (
        SimulatorError,
        TrafficGenerator,
        VehicleConfig,
        load_scenario_file,
        parse_duration,
        send_frames,
        simulate,
        write_labels,
        write_log,
    )

    if args.output is None and args.interface is None:
        return _error("give an output log (-o) or a bus (--interface/--channel)")
    try:
        file = load_scenario_file(args.scenarios) if args.scenarios else None
        settings: dict[str, Any] = dict(file.drive) if file else {}
        for key in ("vehicle", "variant", "cycle", "seed"):
            if getattr(args, key) is not None:
                settings[key] = getattr(args, key)
        if args.duration is not None:
            duration = parse_duration(args.duration)
            if duration is None:
                return _error(f"--duration: not a duration: {args.duration!r}")
            settings["duration"] = duration
        if "vehicle" in settings:
            settings["vin"] = settings.pop("vehicle")
        config = VehicleConfig(**settings)
        drive = simulate(
            config, file.scenarios if file else (), source=str(args.scenarios) if file else None
        )
        traffic = TrafficGenerator(
            drive.trace, demo_catalogue().database, channel=args.channel or "can0"
        )
        if args.labels is not None:
            write_labels(args.labels, drive.labels)
        if args.output is not None:
            frames = write_log(args.output, traffic.batches())
            print(f"{frames:,} frames written to {args.output}")
        else:
            import can

            with can.Bus(interface=args.interface, channel=args.channel) as bus:
                stats = send_frames(
                    bus, traffic.batches(), speed=None if args.full_speed else args.speed
                )
            print(f"{stats.frames:,} frames sent in {stats.seconds:.1f} s")
    except SimulatorError as exc:
        return _error(exc)
    for label in drive.labels:
        print(f"{label.offset_s:10.2f} s  {label.label:8}  {label.kind}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    import can

    from simulators import SimulatorError, replay_log

    if args.interface is None:
        return _error("give a bus: --interface (and --channel)")
    bar = None
    if not args.no_progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=100, unit="%", desc="replaying", file=sys.stderr)

    def progress(fraction: float) -> None:
        if bar is not None:
            bar.n = round(100 * fraction)
            bar.refresh()

    try:
        with can.Bus(interface=args.interface, channel=args.channel) as bus:
            stats = replay_log(
                args.log, bus, speed=None if args.full_speed else args.speed, progress=progress
            )
    except (SimulatorError, can.CanError) as exc:
        return _error(exc)
    finally:
        if bar is not None:
            bar.close()
    print(
        f"{stats.frames:,} frames replayed in {stats.seconds:.1f} s "
        f"({stats.log_seconds:.1f} s of log)"
    )
    return 0


def _fleet(args: argparse.Namespace) -> int:
    from simulators import FleetError, parse_duration
    from simulators.fleet import (
        DEFAULT_MIX,
        Fleet,
        FleetConfig,
        FleetStats,
        fleet_credentials,
        parse_mix,
        provision,
        read_credentials,
    )

    try:
        if args.credentials is not None:
            credentials = read_credentials(args.credentials)
        else:
            count = 10 if args.vehicles is None else args.vehicles
            if count < 1:
                return _error("--vehicles must be positive")
            credentials = fleet_credentials(args.id_prefix, count, seed=args.password_seed)
        if args.provision is not None:
            done = provision(args.provision, credentials[: args.vehicles])
            print(
                f"provisioned {len(credentials[: args.vehicles]):,} vehicles: "
                f"{done.password_file}, {done.acl_file}, {done.ingest_password_file} "
                f"(user {done.ingest_user}), {done.credentials_file}"
            )
            return 0
        duration = parse_duration(args.duration)
        if duration is None or duration <= 0:
            return _error(f"--duration: not a duration: {args.duration!r}")
        vehicles = len(credentials) if args.vehicles is None else args.vehicles
        anonymous = args.credentials is None and args.password_seed is None
        config = FleetConfig(
            vehicles=vehicles,
            host=args.host,
            port=args.port,
            credentials=() if anonymous else tuple(credentials),
            id_prefix=args.id_prefix,
            samples_per_s=args.rate,
            batch_interval_s=args.batch_interval,
            connect_rate=args.connect_rate,
            mix=DEFAULT_MIX if args.mix is None else parse_mix(args.mix),
            seed=args.seed,
            max_inflight=args.max_inflight,
        )
        fleet = Fleet(config)
        previous: list[FleetStats] = []

        def progress(stats: FleetStats) -> bool:
            last = previous[-1] if previous else None
            previous.append(stats)
            seconds = stats.elapsed_s - (last.elapsed_s if last else 0.0)
            samples = stats.samples_acked - (last.samples_acked if last else 0)
            print(
                f"{stats.elapsed_s:7.1f} s  connected {stats.connected:,}/{stats.vehicles:,}  "
                f"lost {stats.connection_losses:,}  refused {stats.refused:,}  "
                f"acked {stats.acked:,}  {samples / max(seconds, 1e-9):,.0f} samples/s",
                flush=True,
            )
            # every vehicle refused and none connected: the logins are wrong, stop here
            return len(stats.refused_vehicles) == stats.vehicles and stats.connects == 0

        stats = fleet.run(duration, progress=progress, progress_every_s=args.progress_every)
    except FleetError as exc:
        return _error(exc)
    _summary(stats)
    if stats.connects == 0:
        reasons = ", ".join(f"{k} ({n}x)" for k, n in stats.refusals.items()) or "none"
        return _error(f"no vehicle could connect (refusals: {reasons})")
    return 0


def _summary(stats: Any) -> None:
    seconds = max(stats.elapsed_s, 1e-9)
    print(
        f"vehicles {stats.vehicles:,}: {stats.connected:,} connected at the end, "
        f"{stats.connection_losses:,} connections lost, {stats.reconnects:,} reconnects, "
        f"{stats.refused:,} refusals"
        + "".join(f"\n  refused: {k}: {n:,}" for k, n in stats.refusals.items())
    )
    print(
        f"batches {stats.published:,} published, {stats.acked:,} acked, "
        f"{stats.unacked:,} unacked, {stats.dropped:,} dropped; "
        f"{stats.acked / seconds:,.1f} messages/s, {stats.samples_acked / seconds:,.0f} "
        f"samples/s, {stats.payload_bytes:,} payload bytes"
    )
    print(f"CPU {stats.cpu_s:.1f} s in {stats.elapsed_s:.1f} s ({stats.cpu_s / seconds:.0%})")
