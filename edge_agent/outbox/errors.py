"""The exceptions of :mod:`edge_agent.outbox`::

    OutboxError                   the outbox cannot do what was asked (names the file)
    ├── OutboxUnavailableError    the file cannot be opened, read or written: its directory is
    │                             missing, it is a directory, no permission, disk full, an I/O
    │                             error, or another process holds it (also an OSError)
    ├── OutboxCorruptError        the file fails SQLite's integrity check or is not a database
    ├── OutboxSchemaError         the file holds a schema this version does not know: a newer
    │                             outbox, or a database that is not an outbox
    └── OutboxFullError           a record cannot be stored: it is larger than the whole budget,
                                  or the budget is taken by records more urgent than it

Retry or not:

* :class:`OutboxUnavailableError` may go away (space freed, a disk back, the other process
  gone): retry later.
* :class:`OutboxCorruptError` raised by an open outbox (SQLite found damage while working):
  close it and open it again, which moves the damaged file aside and salvages what it can.
* :class:`OutboxSchemaError` is permanent: the file belongs to a newer agent or to something
  else; the outbox never changes or moves such a file.
* :class:`OutboxFullError` is permanent for an oversized record; for a record refused because
  more urgent records fill the budget, a later put succeeds once those records are sent.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "OutboxCorruptError",
    "OutboxError",
    "OutboxFullError",
    "OutboxSchemaError",
    "OutboxUnavailableError",
]


class OutboxError(Exception):
    """The outbox cannot do what was asked.  ``path`` names the outbox file."""

    def __init__(self, path: str | os.PathLike[str], message: str) -> None:
        super().__init__(f"outbox {os.fspath(path)}: {message}")
        self.path = Path(path)


class OutboxUnavailableError(OutboxError, OSError):
    """The file cannot be opened, read or written (the cause is chained when SQLite gave one)."""


class OutboxCorruptError(OutboxError):
    """The file fails SQLite's integrity check, or is not an SQLite database at all."""


class OutboxSchemaError(OutboxError):
    """The file's schema version is newer than this code, or the database is not an outbox."""


class OutboxFullError(OutboxError):
    """A record cannot be stored within the disk budget; nothing was written."""
