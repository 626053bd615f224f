"""``can2care demo``: a simulated fleet through the edge agents, ingest, rules and the API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .durations import parse_duration


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a simulated fleet through the whole chain and show the care team's alerts",
        description="Starts the private Mosquitto and TimescaleDB (reusing running ones), "
        "the ingest service, the rules worker and the API; runs a fleet with labelled "
        "crashes, breakdowns, EVs out of charge, punctures, weak 12 V batteries, services "
        "coming due and hard negatives through an edge agent per vehicle, published at a "
        "speed-up; ends with the alerts the care team received and keeps the API running "
        "until Ctrl-C (docs/getting-started.md).",
    )
    parser.add_argument("--vehicles", type=_positive_int, default=50, help="fleet size (50)")
    parser.add_argument(
        "--duration", type=_duration, default=3600.0, metavar="DURATION",
        help="the fleet's window of drive time, e.g. 90m, 2h (default and least 1h)",
    )  # fmt: skip
    parser.add_argument(
        "--speed", type=float, default=60.0,
        help="drive seconds per wall-clock second (default 60: an hour in a minute)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="the fleet's seed (0)")
    parser.add_argument(
        "--keep-running", action=argparse.BooleanOptionalAction, default=True,
        help="after the table, keep the API running until Ctrl-C (default), or exit",
    )  # fmt: skip
    parser.add_argument("--api-port", type=int, default=8080, help="API port (8080, or a free one)")
    parser.add_argument("--jobs", type=int, default=0, help="agent processes (0: one per core)")
    parser.add_argument(
        "--scale", type=_positive_int, default=1, metavar="N",
        help="N ingest processes in one group and N rules workers sharing the fleet (1)",
    )  # fmt: skip
    parser.add_argument(
        "--run-dir", type=Path, default=None,
        help="the services' run directory (default: $CAN2CARE_RUN_DIR or ./.run)",
    )  # fmt: skip
    parser.set_defaults(func=_run)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _duration(text: str) -> float:
    seconds = parse_duration(text)
    if seconds is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30m or 2h")
    if seconds < 3600:
        raise argparse.ArgumentTypeError("must be at least 1h")
    return seconds


def _run(args: argparse.Namespace) -> int:
    from .demo import DemoConfig, DemoError, run_demo

    if args.speed <= 0:
        print("can2care: error: --speed must be positive", file=sys.stderr)
        return 2
    config = DemoConfig(
        vehicles=args.vehicles, duration_s=args.duration, speed=args.speed, seed=args.seed,
        keep_running=args.keep_running, run_dir=args.run_dir, api_port=args.api_port,
        jobs=args.jobs, scale=args.scale,
    )  # fmt: skip
    shown: list[Any] = []  # the result, once the table is out

    def serving(result: Any) -> None:
        shown.append(result)
        print("\nThe API keeps running; Ctrl-C stops everything.", flush=True)

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        result = run_demo(config, say, serving=serving)
    except DemoError as exc:
        print(f"can2care: demo failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if not shown:
            print("can2care demo: interrupted", file=sys.stderr)
            return 130
        print("can2care demo: stopped", file=sys.stderr)
        return 1 if shown[0].problems else 0
    return 1 if result.problems else 0
