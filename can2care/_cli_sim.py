"""``can2care sim``: simulate a vehicle's CAN traffic with scenarios, or replay a CAN log."""

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
