"""Optional TimescaleDB features and their detection.

Compression, continuous aggregates and the job scheduler (``add_job``, ``add_*_policy``) are
in TimescaleDB's community-licensed (TSL) part. An Apache-only build, or a server whose
``timescaledb.license`` setting is ``apache``, refuses them with ``FeatureNotSupported``. The
schema works without them; `detect_features` tells which are present and `apply_optional`
applies the SQL of those that are (``sql/tsl/*.sql``, each safe to run again).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import psycopg
from psycopg import sql

from .errors import MigrationError

__all__ = ["Features", "apply_optional", "detect_features"]

log = logging.getLogger(__name__)

_PACKAGE = "cloud_ingest.storage"
_PROBE_SAVEPOINT = "can2care_feature_probe"


@dataclass(frozen=True, slots=True)
class Features:
    """Which optional TimescaleDB features the connected server offers."""

    license: str
    compression: bool
    continuous_aggregates: bool
    jobs: bool

    def optional_sql(self) -> tuple[str, ...]:
        """The names of the ``sql/tsl`` files to apply on this server, in order."""
        names = []
        if self.compression:
            names.append("compression")
        if self.continuous_aggregates:
            names.append("continuous_aggregates")
        if self.jobs:
            names.append("retention_job")
        return tuple(names)


def detect_features(conn: psycopg.Connection[Any]) -> Features:
    """Asks the server which TSL features it offers, changing nothing.

    The ``timescaledb.license`` setting says whether the TSL module is loaded; a license of
    ``timescale`` is then confirmed by calling a TSL-only function in a savepoint that is rolled
    back (an unusable TSL module fails there, not in a migration).
    """
    with conn.transaction():
        row = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
        license = str(row[0]) if row is not None and row[0] is not None else ""
        tsl = license == "timescale" and _tsl_callable(conn)
    features = Features(license, compression=tsl, continuous_aggregates=tsl, jobs=tsl)
    log.debug("timescaledb features: %s", features)
    return features


def _tsl_callable(conn: psycopg.Connection[Any]) -> bool:
    """Whether a TSL-only function runs; it is called in a savepoint rolled back at once."""
    conn.execute(sql.SQL("SAVEPOINT {}").format(sql.Identifier(_PROBE_SAVEPOINT)))
    try:
        conn.execute("SELECT alter_job(-1)")
    except psycopg.errors.FeatureNotSupported:
        ok = False
    except psycopg.Error:
        ok = True  # refused for the job id, so the TSL function itself is there
    else:
        ok = True
    conn.execute(sql.SQL("ROLLBACK TO SAVEPOINT {}").format(sql.Identifier(_PROBE_SAVEPOINT)))
    return ok


def apply_optional(conn: psycopg.Connection[Any], features: Features) -> list[str]:
    """Applies the SQL of every optional feature present, each in its own transaction.

    Returns the names applied. Safe to call again: every file checks before it creates.
    """
    applied = []
    for name in features.optional_sql():
        text = files(_PACKAGE).joinpath("sql", "tsl", f"{name}.sql").read_text("utf-8")
        try:
            with conn.transaction():
                conn.execute(text.encode("utf-8"))
        except psycopg.Error as exc:
            raise MigrationError(f"tsl/{name}", str(exc).splitlines()[0]) from exc
        log.info("applied optional TimescaleDB feature %s", name)
        applied.append(name)
    return applied
