"""The schema's migrations: numbered SQL files applied in order, each in its own transaction.

The migrations are the package's ``sql/NNNN_name.sql`` files, numbered from 1 without gaps.
``schema_migrations`` records each applied version. `migrate` applies the pending ones and then
the optional TimescaleDB features the server offers (`features.apply_optional`); a second run
changes nothing. Concurrent runs are serialised by an advisory lock held in each migration's
transaction.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import psycopg

from .errors import ExtensionMissingError, MigrationError, SchemaTooNewError
from .features import apply_optional, detect_features

__all__ = ["Migration", "database_version", "migrate", "migrations"]

log = logging.getLogger(__name__)

_PACKAGE = "cloud_ingest.storage"
_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
# Any constant shared by every process that migrates a can2care database ("c2c" in ASCII).
_LOCK_KEY = 0x633263

_CREATE_TABLE = b"""
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY CHECK (version > 0),
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered SQL file of the package."""

    version: int
    name: str
    sql: str


@cache
def migrations() -> tuple[Migration, ...]:
    """The package's migrations in version order (read once)."""
    found = []
    for entry in files(_PACKAGE).joinpath("sql").iterdir():
        match = _FILE_NAME.fullmatch(entry.name)
        if match is not None:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError("sql", f"migration versions must run 1, 2, 3, ... not {versions}")
    return tuple(found)


def database_version(conn: psycopg.Connection[Any]) -> int:
    """The newest version applied to the database, 0 when none (or no migrations table)."""
    with conn.transaction():
        row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        if row is None or not row[0]:
            return 0
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row is not None else 0


def migrate(conn: psycopg.Connection[Any]) -> list[int]:
    """Applies the pending migrations and the optional features present; returns the versions.

    Raises `ExtensionMissingError` when the database lacks timescaledb, `SchemaTooNewError` when
    it was migrated by newer code, and `MigrationError` (the database's error chained) when a
    migration fails; that migration is rolled back and the ones before it stay.
    """
    known = migrations()
    newest = known[-1].version if known else 0
    _require_timescaledb(conn)
    with conn.transaction():
        _lock(conn)
        conn.execute(_CREATE_TABLE)
    applied = []
    for migration in known:
        with conn.transaction():
            _lock(conn)
            current = _current_version(conn)
            if current > newest:
                raise SchemaTooNewError(current, newest)
            if migration.version <= current:
                continue
            _apply(conn, migration)
        log.info("applied migration %04d_%s", migration.version, migration.name)
        applied.append(migration.version)
    current = database_version(conn)
    if current > newest:
        raise SchemaTooNewError(current, newest)
    apply_optional(conn, detect_features(conn))
    return applied


def _require_timescaledb(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        row = conn.execute(
            "SELECT current_database(), "
            "EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
        ).fetchone()
    if row is None or not row[1]:
        raise ExtensionMissingError(str(row[0]) if row is not None else "?")


def _lock(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))


def _current_version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row is not None else 0


def _apply(conn: psycopg.Connection[Any], migration: Migration) -> None:
    label = f"{migration.version:04d}_{migration.name}"
    try:
        with conn.transaction():
            conn.execute(migration.sql.encode("utf-8"))
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
    except psycopg.Error as exc:
        raise MigrationError(label, str(exc).splitlines()[0]) from exc
