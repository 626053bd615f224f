"""TimescaleDB storage: the schema, its migrations and the optional TimescaleDB features.

``migrate(conn)`` brings a database with the timescaledb extension to the newest schema
(docs/schema.md describes the tables); it is safe to run at every start of the ingest service.
"""

from .errors import ExtensionMissingError, MigrationError, SchemaTooNewError, StorageError
from .features import Features, apply_optional, detect_features
from .migrations import Migration, database_version, migrate, migrations

__all__ = [
    "ExtensionMissingError",
    "Features",
    "Migration",
    "MigrationError",
    "SchemaTooNewError",
    "StorageError",
    "apply_optional",
    "database_version",
    "detect_features",
    "migrate",
    "migrations",
]
