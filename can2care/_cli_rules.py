"""``can2care rules``: check rule files, list the catalogue, run a rules worker."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rules",
        help="care rules: check rule files, list them, run a rules worker",
        description="Care triggers evaluated on the fleet's data (docs/rules.md).",
    )
    commands = parser.add_subparsers(title="rules commands", metavar="COMMAND", required=True)
    check = commands.add_parser(
        "check", help="validate rule files", description="Validate rule files (and the "
        "built-in catalogue with them); every problem with its file, line, rule and field.",
    )  # fmt: skip
    check.add_argument("files", type=Path, nargs="*", metavar="TOML")
    check.add_argument("--no-builtin", action="store_true", help="without the built-in catalogue")
    check.set_defaults(func=_check)
    show = commands.add_parser("list", help="list the rules")
    show.add_argument("files", type=Path, nargs="*", metavar="TOML")
    show.add_argument("--no-builtin", action="store_true")
    show.set_defaults(func=_list)
    run = commands.add_parser(
        "run", help="run a rules worker",
        description="Evaluate the rules on every vehicle's new data as the ingest service "
        "stores it, store alerts, deliver webhooks. SIGHUP reloads the rule files.",
    )  # fmt: skip
    run.add_argument("files", type=Path, nargs="*", metavar="TOML")
    run.add_argument("--no-builtin", action="store_true")
    run.add_argument(
        "--database", metavar="URL", default=os.environ.get("CAN2CARE_DATABASE_URL"),
        help="database URL (default: $CAN2CARE_DATABASE_URL)",
    )  # fmt: skip
    run.add_argument("--worker", type=int, default=0, help="this worker's number (from 0)")
    run.add_argument("--workers", type=int, default=1, help="how many workers share the fleet")
    run.add_argument("--no-delivery", action="store_true", help="do not deliver webhooks here")
    run.set_defaults(func=_run)


def _load(args: argparse.Namespace) -> Any:
    from rules.loader import load_rules

    return load_rules(args.files, builtin=not args.no_builtin)


def _check(args: argparse.Namespace) -> int:
    from rules.loader import RuleFileError

    try:
        rules = _load(args)
    except RuleFileError as exc:
        print(exc, file=sys.stderr)
        print(f"can2care: error: {len(exc.problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{len(rules)} rules, no problems")
    return 0


def _list(args: argparse.Namespace) -> int:
    from rules.loader import RuleFileError

    try:
        rules = _load(args)
    except RuleFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    for rule in rules:
        trigger = f"event {rule.event}" if rule.event else " ".join((rule.when or "").split())
        print(f"{rule.id:<28} {rule.category:<8} {rule.severity:<9} {trigger}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from rules.delivery import DeliveryWorker
    from rules.loader import RuleFileError
    from rules.worker import RulesWorker, WorkerConfig

    if not args.database:
        print("can2care: error: give --database or set CAN2CARE_DATABASE_URL", file=sys.stderr)
        return 1
    if not 0 <= args.worker < args.workers:
        print(f"can2care: error: --worker must be 0 to {args.workers - 1}", file=sys.stderr)
        return 1
    config = WorkerConfig(
        database_url=args.database, rule_files=tuple(args.files),
        builtin=not args.no_builtin, worker=args.worker, workers=args.workers,
    )  # fmt: skip
    try:
        worker = RulesWorker(config)
    except RuleFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    stop, reload = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reload.set())
    delivery = None if args.no_delivery else DeliveryWorker(args.database)
    if delivery is not None:
        delivery.start()
    print(f"can2care rules: worker {args.worker} of {args.workers}, {len(worker.rules)} rules; "
          "Ctrl-C stops, SIGHUP reloads", file=sys.stderr)  # fmt: skip
    try:
        worker.run(stop, reload=reload)
    finally:
        if delivery is not None:
            delivery.stop(30)
    return 0
