"""The outbox's SQLite file: opening and checking it, its schema, moving a damaged file aside.

Everything here works on one :class:`sqlite3.Connection` and knows nothing of budgets or
threads; :mod:`edge_agent.outbox.outbox` holds the lock and the accounting.
"""

from __future__ import annotations

import os
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import (
    OutboxCorruptError,
    OutboxError,
    OutboxSchemaError,
    OutboxUnavailableError,
)

#: The schema this code reads and writes, kept in ``PRAGMA user_version``.
SCHEMA_VERSION = 1

#: How long an open waits for another process to let go of the file before giving up.
LOCK_TIMEOUT_S = 2.0

#: The WAL file is cut back to this size after a checkpoint.
JOURNAL_SIZE_LIMIT = 4 * 2**20

_SCHEMA = (
    """
    CREATE TABLE records (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        topic      TEXT    NOT NULL,
        payload    BLOB    NOT NULL,
        priority   INTEGER NOT NULL CHECK (priority IN (0, 1, 2)),
        qos        INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
        created_ms INTEGER NOT NULL,
        size       INTEGER NOT NULL,
        crc32      INTEGER NOT NULL
    )
    """,
    "CREATE INDEX records_drain ON records (priority, id)",
)

# Primary result codes (the low byte of an extended code).
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


def translate(path: Path, exc: sqlite3.Error, doing: str) -> OutboxError:
    """The outbox error for an SQLite error met while ``doing`` something (chain ``exc``)."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return OutboxCorruptError(path, f"{doing}: {exc}")
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return OutboxUnavailableError(path, f"{doing}: in use by another process ({exc})")
    return OutboxUnavailableError(path, f"{doing}: {exc}")


@contextmanager
def transaction(conn: sqlite3.Connection, path: Path, doing: str) -> Iterator[None]:
    """A write transaction, committed (and, with ``synchronous=FULL``, synced) on success."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            # SQLite rolls back by itself when it cannot; the first error is the news.
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise translate(path, exc, doing) from exc
        raise


def open_database(path: Path) -> sqlite3.Connection:
    """The outbox file at ``path``, checked, in WAL mode and held exclusively by this process.

    Creates the file and its schema when it does not exist or is empty.  Raises
    :class:`OutboxCorruptError` (the file untouched) when it is damaged or not a database.
    """
    _check_location(path)
    try:
        conn = sqlite3.connect(
            path, timeout=LOCK_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise translate(path, exc, "cannot open") from exc
    try:
        _prepare(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise translate(path, exc, "cannot open") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _check_location(path: Path) -> None:
    parent = path.parent
    try:
        if not parent.is_dir():
            what = "is not a directory" if parent.exists() else "does not exist"
            raise OutboxUnavailableError(path, f"directory {parent} {what}")
        if path.is_dir():
            raise OutboxUnavailableError(path, "is a directory")
    except OSError as exc:
        if isinstance(exc, OutboxError):
            raise
        raise OutboxUnavailableError(path, f"cannot reach it: {exc}") from exc


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    # One process at a time: the lock is taken by the first write below and held until close,
    # and the WAL index lives in this process's memory (no -shm file).
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    version = int(_one(conn, "PRAGMA user_version"))  # reading the header spots a non-database
    problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        shown = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
        raise OutboxCorruptError(path, f"SQLite's quick_check found damage: {shown}")
    tables = {
        str(row[0])
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not str(row[0]).startswith("sqlite_")
    }
    if version == 0 and not tables:
        _create(conn, path)
    elif version > SCHEMA_VERSION:
        raise OutboxSchemaError(
            path,
            f"schema version {version} is newer than this agent's ({SCHEMA_VERSION}); "
            "it was written by a newer can2care and is left as it is",
        )
    elif version != SCHEMA_VERSION or "records" not in tables:
        listed = ", ".join(sorted(tables)) or "none"
        raise OutboxSchemaError(
            path, f"not an outbox (schema version {version}, tables: {listed}); left as it is"
        )
    mode = str(_one(conn, "PRAGMA journal_mode = WAL"))
    if mode.lower() != "wal":
        raise OutboxUnavailableError(path, f"cannot use WAL mode (journal mode {mode})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
    with transaction(conn, path, "cannot lock"):
        pass  # takes the write lock now, so a second opener fails here rather than later


def _create(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes before the first table
    conn.execute("PRAGMA journal_mode = WAL")
    with transaction(conn, path, "cannot create the schema"):
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    if _one(conn, "PRAGMA auto_vacuum") != 2:
        # A file whose creation was cut short after its header was written: rebuild it empty.
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("VACUUM")
    sync_directory(path.parent)


def _one(conn: sqlite3.Connection, sql: str) -> Any:
    """The first column of the first row of a pragma that always returns one."""
    return conn.execute(sql).fetchone()[0]


def sync_directory(directory: Path) -> None:
    """Make the directory's entries (a new or renamed file) durable; best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; nothing more can be done
    finally:
        os.close(fd)


_SIDE_FILES = ("-wal", "-journal", "-shm")


def move_aside(path: Path) -> Path:
    """Rename a damaged outbox (with its WAL) to ``<path>.corrupt-<UTC time>``; the new name.

    The WAL goes first: a WAL left behind would be replayed into the fresh file.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while any(Path(f"{target}{s}").exists() for s in ("", *_SIDE_FILES)):
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        for suffix in _SIDE_FILES:
            side = Path(f"{path}{suffix}")
            if side.exists():
                side.rename(f"{target}{suffix}")
        path.rename(target)
    except OSError as exc:
        raise OutboxUnavailableError(path, f"cannot move the damaged file aside: {exc}") from exc
    sync_directory(path.parent)
    return target


@dataclass(slots=True)
class Salvage:
    """What was copied out of a damaged outbox."""

    copied: int = 0  # records that read back intact (CRC checked), now in the new file
    rejected: int = 0  # rows read but malformed or failing their CRC
    stopped: str | None = None  # why the scan ended early, if it did


_Row = tuple[int, str, bytes, int, int, int, int, int]  # the columns of an INSERT INTO records


def salvage(
    damaged: Path, conn: sqlite3.Connection, path: Path, size_of: Callable[[str, bytes], int]
) -> Salvage:
    """Copy every record of ``damaged`` that reads back intact into ``conn``, keeping ids.

    Reads the damaged file read-only, in id order, until its end or its first error; writes
    in one transaction on ``conn``.
    """
    report = Salvage()
    try:
        source = sqlite3.connect(f"{damaged.resolve().as_uri()}?mode=ro", uri=True, timeout=0)
    except sqlite3.Error as exc:
        report.stopped = str(exc)
        return report
    try:
        with transaction(conn, path, "cannot store salvaged records"):
            batch: list[_Row] = []
            for row in _intact_rows(source, report, size_of):
                batch.append(row)
                if len(batch) == 256:
                    _insert_rows(conn, batch)
                    report.copied += len(batch)
                    batch = []
            _insert_rows(conn, batch)
            report.copied += len(batch)
    finally:
        source.close()
    return report


def _intact_rows(
    source: sqlite3.Connection, report: Salvage, size_of: Callable[[str, bytes], int]
) -> Iterator[_Row]:
    """The rows that pass their checks, one at a time (a ``fetchmany`` that meets an error
    loses the rows it had read); the first error ends them and is noted in ``report``."""
    try:
        for id_, topic, payload, prio, qos, created, crc in source.execute(
            "SELECT id, topic, payload, priority, qos, created_ms, crc32 FROM records ORDER BY id"
        ):
            if (
                isinstance(id_, int)
                and isinstance(topic, str)
                and isinstance(payload, bytes)
                and prio in (0, 1, 2)
                and qos in (0, 1, 2)
                and isinstance(created, int)
                and crc == zlib.crc32(payload)
            ):
                yield id_, topic, payload, prio, qos, created, size_of(topic, payload), crc
            else:
                report.rejected += 1
    except sqlite3.Error as exc:
        report.stopped = str(exc)


def _insert_rows(conn: sqlite3.Connection, rows: list[_Row]) -> None:
    conn.executemany(
        "INSERT INTO records (id, topic, payload, priority, qos, created_ms, size, crc32)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
