"""The storage package's exceptions.

::

    StorageError                    every error raised by cloud_ingest.storage
    ├── ExtensionMissingError       the database lacks the timescaledb extension (permanent)
    ├── SchemaTooNewError           the database's schema is newer than this code (permanent)
    ├── MigrationError              a migration failed; the database's error is the cause
    │                               (retry only if the cause is a psycopg.OperationalError)
    └── RowError                    a batch or event cannot become rows (permanent: dead-letter
         │                          the payload); defined in ``rows.py``, also a ValueError
         ├── TimeRangeError         a time outside the storable range
         └── VehicleMismatchError   an event or status naming another vehicle than its topic

Database errors (``psycopg.Error``) are chained as ``__cause__``, never swallowed; the writer
lets them through after its transaction rolls back, so their type says whether to retry.
"""

from __future__ import annotations

__all__ = ["ExtensionMissingError", "MigrationError", "SchemaTooNewError", "StorageError"]


class StorageError(Exception):
    """Base of every error raised by ``cloud_ingest.storage``."""


class ExtensionMissingError(StorageError):
    """The database has no timescaledb extension; an administrator must create it."""

    def __init__(self, database: str) -> None:
        super().__init__(
            f"database {database!r} has no timescaledb extension; "
            "run CREATE EXTENSION timescaledb in it first"
        )
        self.database = database


class SchemaTooNewError(StorageError):
    """The database's recorded schema version is newer than the newest this code knows."""

    def __init__(self, database_version: int, code_version: int) -> None:
        super().__init__(
            f"the database schema is at version {database_version}, newer than version "
            f"{code_version}, the newest this code knows; upgrade can2care"
        )
        self.database_version = database_version
        self.code_version = code_version


class MigrationError(StorageError):
    """A migration failed and was rolled back; ``__cause__`` is the database's error."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"migration {name} failed: {message}")
        self.name = name
