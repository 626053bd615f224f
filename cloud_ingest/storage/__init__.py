"""TimescaleDB storage: the schema, its migrations and the optional TimescaleDB features.

``migrate(conn)`` brings a database with the timescaledb extension to the newest schema
(docs/schema.md describes the tables); it is safe to run at every start of the ingest service.
``telemetry_rows``/``event_row`` turn decoded payloads into rows (pure), and
``store_all`` (one transaction of telemetry, events, statuses and dead letters),
``store_telemetry``, ``store_many``, ``store_event`` and ``dead_letter`` write them.
"""

from .errors import ExtensionMissingError, MigrationError, SchemaTooNewError, StorageError
from .features import Features, apply_optional, detect_features
from .migrations import Migration, database_version, migrate, migrations
from .rows import (
    BatchRow,
    DeadLetterRow,
    EventRow,
    LatestRow,
    RowError,
    SeriesRow,
    StatusRow,
    TelemetryRows,
    TimeRangeError,
    VehicleMismatchError,
    event_row,
    status_row,
    telemetry_rows,
)
from .vehicles import Vehicle, register_vehicles, vehicle_catalogues
from .writer import (
    StoreResult,
    Writes,
    dead_letter,
    store_all,
    store_event,
    store_many,
    store_telemetry,
)

__all__ = [
    "BatchRow",
    "DeadLetterRow",
    "EventRow",
    "ExtensionMissingError",
    "Features",
    "LatestRow",
    "Migration",
    "MigrationError",
    "RowError",
    "SchemaTooNewError",
    "SeriesRow",
    "StatusRow",
    "StorageError",
    "StoreResult",
    "TelemetryRows",
    "TimeRangeError",
    "Vehicle",
    "VehicleMismatchError",
    "Writes",
    "apply_optional",
    "database_version",
    "dead_letter",
    "detect_features",
    "event_row",
    "migrate",
    "migrations",
    "register_vehicles",
    "status_row",
    "store_all",
    "store_event",
    "store_many",
    "store_telemetry",
    "telemetry_rows",
    "vehicle_catalogues",
]
