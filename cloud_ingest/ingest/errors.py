"""The ingest service's exceptions::

    IngestError                 every error raised by cloud_ingest.ingest
     ├── IngestConfigError      the configuration cannot be loaded: the file, the dotted key
     │                          and what is wrong (permanent: fix it and restart)
     ├── IngestStartError       the service cannot start: the broker refused or the database
     │                          cannot be migrated (the cause is chained)
     └── IngestRetireError      retiring a member stopped short (the database stayed down,
                                the broker went away): its session is kept, run it again

Bad input never raises out of the service: each message that cannot be stored becomes a
dead letter with its reason (`cloud_ingest.ingest.classify.Reason`).
"""

from __future__ import annotations

__all__ = ["IngestConfigError", "IngestError", "IngestRetireError", "IngestStartError"]


class IngestError(Exception):
    """Base of every error raised by ``cloud_ingest.ingest``."""


class IngestConfigError(IngestError):
    """The ingest configuration is wrong; ``problems`` lists each ``where: key: reason``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid ingest configuration:\n  " + "\n  ".join(problems))


class IngestStartError(IngestError):
    """The service cannot start (broker refused the connection, database unusable)."""


class IngestRetireError(IngestError):
    """Retiring a member stopped short; its session, and what was not stored, stay with the
    broker (nothing uncommitted was acknowledged): retiring again resumes it."""
