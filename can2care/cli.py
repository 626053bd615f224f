"""The ``can2care`` command.

Each subcommand lives in a ``can2care._cli_<name>`` module with ``register(subparsers)``;
those modules import only the standard library at module level, so ``can2care --help`` is
fast and works on an edge install without the cloud's dependencies.

`main` turns the errors a user can act on into one line ``can2care: error: ...`` and exit
status 1: the services' `ServiceError`, the catalogue's `CatalogueError` and, for every
command that migrates the database, the storage package's `StorageError` (a database without
the timescaledb extension, a schema newer than the code, a failed migration).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from dbc import CatalogueError

from . import __version__
from .devservices import ServiceError

# Subcommand modules, in the order ``--help`` lists them.
_COMMANDS = (
    "demo",
    "services",
    "smoke",
    "dbc",
    "decode",
    "sim",
    "edge",
    "ingest",
    "vehicles",
    "rules",
    "api",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="can2care",
        description="Connected-vehicle telematics and proactive care.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v: info, -vv: debug)"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        module = importlib.import_module(f"can2care._cli_{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
    except (ServiceError, CatalogueError) as exc:
        print(f"can2care: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("can2care: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`can2care dbc show | head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # last: the clauses above catch some Exceptions
        if not _is_storage_error(exc):
            raise
        print(f"can2care: error: {exc}", file=sys.stderr)
        return 1
    return code


def _is_storage_error(exc: Exception) -> bool:
    """Whether ``exc`` is a `cloud_ingest.storage.StorageError`. The package is looked up, not
    imported: a command that raised one has loaded it, and an edge install has no psycopg."""
    errors = sys.modules.get("cloud_ingest.storage.errors")
    return errors is not None and isinstance(exc, errors.StorageError)


if __name__ == "__main__":
    sys.exit(main())
