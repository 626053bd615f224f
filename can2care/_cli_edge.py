"""``can2care edge``: run the edge agent, show its effective configuration or its status."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "edge",
        help="run the edge agent (CAN in, MQTT telemetry out)",
        description="The edge agent: reads CAN from a python-can bus or a log, decodes, samples "
        "and publishes telemetry and urgent events over MQTT through a durable outbox "
        "(docs/edge-agent.md).",
    )
    commands = parser.add_subparsers(title="edge commands", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run",
        help="run the agent until stopped (SIGTERM, Ctrl-C) or its log ends",
        description="Run the agent with a configuration file (docs/edge-agent-config.md).",
    )
    run.add_argument("--config", type=Path, required=True, metavar="TOML")
    run.add_argument(
        "--drain",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on stop, wait this long for the outbox to drain (default 10)",
    )
    run.set_defaults(func=_run)
    config = commands.add_parser(
        "config",
        help="check a configuration and print it as the agent sees it",
        description="Load and validate a configuration (file, then environment overrides), "
        "load its catalogue and check the VSS paths it names against it, as the agent does "
        "at start, and print the effective settings as JSON, passwords hidden.",
    )
    config.add_argument("--config", type=Path, metavar="TOML")
    config.set_defaults(func=_config)
    status = commands.add_parser(
        "status",
        help="print the running agent's status file",
        description="Print the status file the agent rewrites (status.file in the configuration).",
    )
    status.add_argument("--config", type=Path, required=True, metavar="TOML")
    status.set_defaults(func=_status)


def _error(message: object) -> int:
    print(f"can2care edge: error: {message}", file=sys.stderr)
    return 1


def _agent_errors() -> tuple[type[BaseException], ...]:
    from edge_agent.agent import SourceError
    from edge_agent.config import ConfigError
    from edge_agent.events import EventConfigError
    from edge_agent.mqtt import MqttError
    from edge_agent.outbox import OutboxError
    from edge_agent.sampling import SamplingError
    from edge_agent.wire import WireError

    return (
        ConfigError,
        SourceError,
        SamplingError,
        EventConfigError,
        MqttError,
        OutboxError,
        WireError,
    )


def _run(args: argparse.Namespace) -> int:
    from edge_agent.agent import Agent
    from edge_agent.config import load_config

    errors = _agent_errors()
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    try:
        config = load_config(args.config)
        agent = Agent(config)
    except errors as exc:
        return _error(exc)
    try:
        agent.run(stop=stop)
    except KeyboardInterrupt:
        pass
    except errors as exc:
        agent.close(drain_s=0)
        return _error(exc)
    agent.close(drain_s=args.drain)
    status = agent.status()
    print(
        f"can2care edge: {status.frames_in} frames, {status.samples_sent} samples in "
        f"{status.batches} batches, {status.events} events; "
        f"{status.outbox_records} records left in the outbox",
        file=sys.stderr,
    )
    return 0


def _config(args: argparse.Namespace) -> int:
    from dbc import CatalogueError
    from edge_agent.agent import check_catalogue
    from edge_agent.config import ConfigError, load_config
    from edge_agent.wire import WireError, WireSchema

    try:
        config = load_config(args.config)
        check_catalogue(config, WireSchema.from_catalogue(config.catalogue.load()))
    except (ConfigError, CatalogueError, WireError) as exc:
        return _error(exc)
    print(json.dumps(config.to_dict(), indent=2, default=str))
    return 0


def _status(args: argparse.Namespace) -> int:
    from edge_agent.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _error(exc)
    if config.status.file is None:
        return _error(f"{args.config}: status.file is not set, so the agent writes no status")
    try:
        print(config.status.file.read_text(encoding="utf-8"), end="")
    except OSError as exc:
        return _error(f"{config.status.file}: {exc.strerror or exc} (is the agent running?)")
    return 0
