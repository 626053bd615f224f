"""TimescaleDB storage: the schema, its migrations and the optional TimescaleDB features.

``migrate(conn)`` brings a database with the timescaledb extension to the newest schema
(docs/schema.md describes the tables); it is safe to run at every start of the ingest service.
``telemetry_rows``/``event_row`` turn decoded payloads into rows (pure), and
``store_telemetry``, ``store_many``, ``store_event`` and ``dead_letter`` write them.
"""

from .errors import ExtensionMissingError, MigrationError, SchemaTooNewError, StorageError
from .features import Features, apply_optional, detect_features
from .migrations import Migration, database_version, migrate, migrations
from .rows import (
    BatchRow,
    EventRow,
    LatestRow,
    RowError,
    SeriesRow,
    TelemetryRows,
    event_row,
    telemetry_rows,
)
from .writer import StoreResult, dead_letter, store_event, store_many, store_telemetry

__all__ = [
    "BatchRow",
    "EventRow",
    "ExtensionMissingError",
    "Features",
    "LatestRow",
    "Migration",
    "MigrationError",
    "RowError",
    "SchemaTooNewError",
    "SeriesRow",
    "StorageError",
    "StoreResult",
    "TelemetryRows",
    "apply_optional",
    "database_version",
    "dead_letter",
    "detect_features",
    "event_row",
    "migrate",
    "migrations",
    "store_event",
    "store_many",
    "store_telemetry",
    "telemetry_rows",
]
