"""The durable store-and-forward outbox: records wait here until the broker acknowledges them."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Literal, Self

from . import _store
from .errors import OutboxCorruptError, OutboxError, OutboxFullError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "RECORD_OVERHEAD",
    "Outbox",
    "OutboxStats",
    "Priority",
    "Record",
]

log = logging.getLogger(__name__)

#: The default disk budget.
DEFAULT_MAX_BYTES = 256 * 2**20

#: Bytes counted for each record on top of its payload and topic (row, index entry, page slack).
RECORD_OVERHEAD = 64

#: A put that must make room drops this share of the budget beyond what it needs (low-water
#: mark), so a full outbox sheds old records in batches, with one log line per batch.
EVICT_SLACK = 0.1

#: Free pages worth this many bytes are given back to the file system after a delete.
VACUUM_FREE_BYTES = 2**20

_ID_CHUNK = 500  # ids per ``IN (...)`` list, well under SQLite's parameter limit


class Priority(IntEnum):
    """How urgent a record is: lower values drain first and are evicted last."""

    EVENT = 0  # urgent events (crash): drained first, evicted last
    STATUS = 1
    TELEMETRY = 2  # evicted first


_EVICTION_ORDER = (Priority.TELEMETRY, Priority.STATUS, Priority.EVENT)


@dataclass(frozen=True, slots=True)
class Record:
    """One stored message, as :meth:`Outbox.pending` hands it to the publisher."""

    id: int
    topic: str
    payload: bytes
    priority: Priority
    qos: int
    created_ms: int  # wall-clock milliseconds since the Unix epoch when it was put


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """The outbox's contents and budget; ``by_priority`` counts records of each priority."""

    records: int
    bytes: int  # as counted against the budget: payload + topic + RECORD_OVERHEAD each
    by_priority: Mapping[Priority, int]
    budget: int
    evicted_records: int  # since open
    evicted_bytes: int  # since open


@dataclass(slots=True)
class _Tally:
    """Records and counted bytes per priority; kept in memory, changed only after a commit."""

    count: dict[Priority, int] = field(default_factory=lambda: dict.fromkeys(Priority, 0))
    size: dict[Priority, int] = field(default_factory=lambda: dict.fromkeys(Priority, 0))

    @property
    def bytes(self) -> int:
        return sum(self.size.values())

    def add(self, priority: Priority, records: int, size: int) -> None:
        self.count[priority] += records
        self.size[priority] += size

    def copy(self) -> _Tally:
        return _Tally(dict(self.count), dict(self.size))


@dataclass(slots=True)
class _Dropped:
    """Records of one priority evicted by one put."""

    priority: Priority
    records: int = 0
    bytes: int = 0
    oldest_ms: int | None = None
    newest_ms: int | None = None

    def add(self, records: int, size: int, oldest_ms: int, newest_ms: int) -> None:
        self.records += records
        self.bytes += size
        self.oldest_ms = oldest_ms if self.oldest_ms is None else min(self.oldest_ms, oldest_ms)
        self.newest_ms = newest_ms if self.newest_ms is None else max(self.newest_ms, newest_ms)


@dataclass(frozen=True, slots=True)
class _Row:
    topic: str
    payload: bytes
    priority: Priority
    qos: int
    size: int


class Outbox:
    """A durable queue of MQTT messages in an SQLite file, bounded by a disk budget.

    :meth:`put` returns only after the record is committed and synced to disk (WAL mode,
    ``synchronous=FULL``); a record leaves only through :meth:`ack`, after the broker's PUBACK,
    or through eviction when the budget is full (telemetry oldest first, events last, each
    eviction logged).  :meth:`pending` lists records in drain order: EVENT, STATUS, TELEMETRY,
    and by id (the order they were put) within each.

    Threads: every method may be called from any thread.  The outbox holds one connection
    (``check_same_thread=False``) behind one lock, so each call runs alone: SQLite allows one
    writer at a time anyway, one connection never meets ``SQLITE_BUSY`` from itself, and the
    in-memory byte counts that decide evictions always match the file.  Calls are short (one
    transaction, one fsync), so a put waits at most for one ack and the other way round.

    Processes: the file is locked exclusively while open (``locking_mode=EXCLUSIVE``); a second
    outbox on the same file, in this process or another, fails with
    :class:`~edge_agent.outbox.OutboxUnavailableError`.

    A damaged file (SQLite's ``quick_check`` fails, or it is not a database) is, by default
    (``on_corrupt="move_aside"``), renamed to ``<path>.corrupt-<UTC time>`` with its WAL, an
    ERROR line names both paths, every record that still reads back intact (CRC checked) is
    copied into a fresh outbox, and the agent goes on; :attr:`moved_aside` names the file kept.
    With ``on_corrupt="raise"`` the file is left alone and
    :class:`~edge_agent.outbox.OutboxCorruptError` is raised.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        on_corrupt: Literal["move_aside", "raise"] = "move_aside",
    ) -> None:
        if max_bytes <= RECORD_OVERHEAD:
            raise ValueError(f"max_bytes must exceed {RECORD_OVERHEAD}, got {max_bytes}")
        if on_corrupt not in ("move_aside", "raise"):
            raise ValueError(f"on_corrupt must be 'move_aside' or 'raise', got {on_corrupt!r}")
        self._path = Path(path)
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._evicted_records = 0
        self._evicted_bytes = 0
        #: Where a damaged file found at open was moved, or None.
        self.moved_aside: Path | None = None
        self._conn: sqlite3.Connection | None = self._open(on_corrupt)
        try:
            self._page_size = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
            self._tally = self._load_tally(self._conn)
            self._trim_to_budget(self._conn)
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    # -- opening ----------------------------------------------------------------------------

    def _open(self, on_corrupt: str) -> sqlite3.Connection:
        try:
            return _store.open_database(self._path)
        except OutboxCorruptError as exc:
            if on_corrupt == "raise":
                raise
            damage = exc
        aside = _store.move_aside(self._path)
        log.error("%s; moved it to %s and started a new outbox there", damage, aside)
        self.moved_aside = aside
        conn = _store.open_database(self._path)
        try:
            self._restore(conn, aside)
        except BaseException:
            conn.close()
            raise
        return conn

    def _restore(self, conn: sqlite3.Connection, aside: Path) -> None:
        found = _store.salvage(aside, conn, self._path, _size)
        if found.stopped is None and not found.rejected:
            log.warning(
                "outbox %s: salvaged all %d records readable in %s",
                self._path,
                found.copied,
                aside,
            )
        else:
            log.error(
                "outbox %s: salvaged %d records from %s; %d failed their check; the scan %s; "
                "the damaged file is kept there",
                self._path,
                found.copied,
                aside,
                found.rejected,
                "ran to the end" if found.stopped is None else f"stopped early ({found.stopped})",
            )

    @staticmethod
    def _load_tally(conn: sqlite3.Connection) -> _Tally:
        tally = _Tally()
        rows = conn.execute(
            "SELECT priority, COUNT(*), SUM(size) FROM records GROUP BY priority"
        ).fetchall()
        for priority, count, size in rows:
            tally.add(Priority(priority), int(count), int(size))
        return tally

    def _trim_to_budget(self, conn: sqlite3.Connection) -> None:
        """Evict down to the budget at open (the budget may have shrunk since the last run)."""
        if self._tally.bytes <= self._max_bytes:
            return
        tally = self._tally.copy()
        with _store.transaction(conn, self._path, "cannot evict"):
            dropped = self._make_room(conn, tally, 0, Priority.EVENT)
        self._commit_tally(tally, dropped)
        self._vacuum(conn)

    # -- the API ----------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The outbox file."""
        return self._path

    @property
    def max_bytes(self) -> int:
        """The disk budget, in counted bytes."""
        return self._max_bytes

    def put(
        self,
        topic: str,
        payload: bytes,
        *,
        priority: Priority = Priority.TELEMETRY,
        qos: int = 1,
    ) -> int:
        """Store one record; durable (committed and synced) when this returns.  Its id.

        Raises :class:`~edge_agent.outbox.OutboxFullError` when the record is larger than the
        whole budget, or when only more urgent records are left to evict; ``ValueError`` for a
        topic MQTT cannot publish to, a QoS outside 0-2 or an unknown priority; ``TypeError``
        for a payload that is not bytes.
        """
        return self._insert([self._row(topic, payload, priority, qos)])[0]

    def put_many(self, items: Sequence[tuple[str, bytes, Priority]]) -> list[int]:
        """Store ``(topic, payload, priority)`` records (QoS 1) in one transaction; their ids.

        All or nothing: if one record cannot be stored, none is.
        """
        return self._insert([self._row(topic, payload, prio, 1) for topic, payload, prio in items])

    def pending(self, limit: int, *, exclude: Collection[int] = ()) -> list[Record]:
        """Up to ``limit`` records to send, in drain order, skipping the ids in ``exclude``.

        Drain order: by priority (EVENT, STATUS, TELEMETRY), then by id.  Pass the ids in
        flight (published, PUBACK not yet received) as ``exclude``.
        """
        if limit <= 0:
            return []
        skip = exclude if isinstance(exclude, set | frozenset) else frozenset(exclude)
        with self._lock:
            conn = self._connection()
            try:
                rows = conn.execute(
                    "SELECT id, topic, payload, priority, qos, created_ms FROM records"
                    " ORDER BY priority, id LIMIT ?",
                    (limit + len(skip),),
                ).fetchall()
            except sqlite3.Error as exc:
                raise _store.translate(self._path, exc, "cannot read records") from exc
        records = [
            Record(id_, topic, bytes(payload), Priority(prio), qos, created)
            for id_, topic, payload, prio, qos, created in rows
            if id_ not in skip
        ]
        return records[:limit]

    def ack(self, ids: Iterable[int]) -> None:
        """Delete records the broker acknowledged (one transaction); unknown ids are ignored."""
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            return
        with self._lock:
            conn = self._connection()
            tally = self._tally.copy()
            with _store.transaction(conn, self._path, "cannot delete acknowledged records"):
                for start in range(0, len(wanted), _ID_CHUNK):
                    chunk = wanted[start : start + _ID_CHUNK]
                    marks = ",".join("?" * len(chunk))
                    for prio, count, size in conn.execute(
                        "SELECT priority, COUNT(*), SUM(size) FROM records"
                        f" WHERE id IN ({marks}) GROUP BY priority",
                        chunk,
                    ).fetchall():
                        tally.add(Priority(prio), -int(count), -int(size))
                    conn.execute(f"DELETE FROM records WHERE id IN ({marks})", chunk)
            self._tally = tally
            self._vacuum(conn)

    def stats(self) -> OutboxStats:
        """What the outbox holds now, its budget, and what it evicted since it was opened."""
        with self._lock:
            self._connection()
            tally = self._tally
            return OutboxStats(
                records=sum(tally.count.values()),
                bytes=tally.bytes,
                by_priority=MappingProxyType(dict(tally.count)),
                budget=self._max_bytes,
                evicted_records=self._evicted_records,
                evicted_bytes=self._evicted_bytes,
            )

    def close(self) -> None:
        """Close the file (SQLite checkpoints the WAL into it); a second close does nothing."""
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Outbox({str(self._path)!r}, max_bytes={self._max_bytes})"

    # -- internals --------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise OutboxError(self._path, "the outbox is closed")
        return self._conn

    def _row(self, topic: str, payload: bytes, priority: Priority | int, qos: int) -> _Row:
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"topic must be a non-empty string, got {topic!r}")
        if any(c in topic for c in "+#\0"):
            raise ValueError(f"topic {topic!r}: MQTT cannot publish to a wildcard or NUL")
        if len(topic.encode()) > 65535:
            raise ValueError("topic longer than MQTT's 65535 bytes")
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {qos!r}")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
        data = bytes(payload)
        row = _Row(topic, data, Priority(priority), qos, _size(topic, data))
        if row.size > self._max_bytes:
            raise OutboxFullError(
                self._path,
                f"a record of {row.size} bytes (payload {len(data)}) on {topic} is larger than "
                f"the whole budget of {self._max_bytes} bytes; refused",
            )
        return row

    def _insert(self, rows: list[_Row]) -> list[int]:
        if not rows:
            return []
        now = time.time_ns() // 1_000_000
        with self._lock:
            conn = self._connection()
            tally = self._tally.copy()
            dropped: list[_Dropped] = []
            ids: list[int] = []
            with _store.transaction(conn, self._path, "cannot store records"):
                for row in rows:
                    dropped += self._make_room(conn, tally, row.size, row.priority)
                    cur = conn.execute(
                        "INSERT INTO records (topic, payload, priority, qos, created_ms, size,"
                        " crc32) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            row.topic,
                            row.payload,
                            row.priority,
                            row.qos,
                            now,
                            row.size,
                            _crc(row.payload),
                        ),
                    )
                    assert cur.lastrowid is not None
                    ids.append(cur.lastrowid)
                    tally.add(row.priority, 1, row.size)
            self._commit_tally(tally, dropped)
            if dropped:
                self._vacuum(conn)
        return ids

    def _make_room(
        self, conn: sqlite3.Connection, tally: _Tally, size: int, incoming: Priority
    ) -> list[_Dropped]:
        """Evict so that ``size`` more bytes fit; never evicts what is more urgent than it."""
        excess = tally.bytes + size - self._max_bytes
        if excess <= 0:
            return []
        slack = int(self._max_bytes * EVICT_SLACK)
        dropped: list[_Dropped] = []
        freed = 0
        for victim in _EVICTION_ORDER:
            if freed >= excess or victim < incoming:
                break
            goal = excess if victim is Priority.EVENT else excess + slack
            gone = self._drop_oldest(conn, victim, goal - freed)
            if gone.records:
                dropped.append(gone)
                freed += gone.bytes
                tally.add(victim, -gone.records, -gone.bytes)
        if freed < excess:
            kept = ", ".join(f"{tally.count[p]} {p.name}" for p in Priority if tally.count[p])
            raise OutboxFullError(
                self._path,
                f"no room for a {incoming.name} record of {size} bytes: the budget of "
                f"{self._max_bytes} bytes is taken by more urgent records ({kept})",
            )
        return dropped

    def _drop_oldest(self, conn: sqlite3.Connection, victim: Priority, want: int) -> _Dropped:
        gone = _Dropped(victim)
        last_id = None
        cur = conn.execute(
            "SELECT id, size, created_ms FROM records WHERE priority = ? ORDER BY id", (victim,)
        )
        try:
            while gone.bytes < want and (batch := cur.fetchmany(256)):
                for id_, size, created in batch:
                    gone.add(1, int(size), int(created), int(created))
                    last_id = id_
                    if gone.bytes >= want:
                        break
        finally:
            cur.close()
        if last_id is not None:
            conn.execute("DELETE FROM records WHERE priority = ? AND id <= ?", (victim, last_id))
        return gone

    def _commit_tally(self, tally: _Tally, dropped: list[_Dropped]) -> None:
        """Adopt the counts of a committed transaction and report what it evicted."""
        self._tally = tally
        merged: dict[Priority, _Dropped] = {}
        for d in dropped:
            into = merged.setdefault(d.priority, _Dropped(d.priority))
            assert d.oldest_ms is not None and d.newest_ms is not None
            into.add(d.records, d.bytes, d.oldest_ms, d.newest_ms)
        for d in merged.values():
            self._evicted_records += d.records
            self._evicted_bytes += d.bytes
            assert d.oldest_ms is not None and d.newest_ms is not None
            urgent = d.priority is Priority.EVENT
            log.log(
                logging.ERROR if urgent else logging.WARNING,
                "outbox %s is over its budget of %d bytes: dropped the %d oldest %s records "
                "(%d bytes), created %s to %s%s",
                self._path,
                self._max_bytes,
                d.records,
                d.priority.name,
                d.bytes,
                _iso(d.oldest_ms),
                _iso(d.newest_ms),
                "; no less urgent records were left" if urgent else "",
            )

    def _vacuum(self, conn: sqlite3.Connection) -> None:
        """Give free pages back to the file system once they add up to VACUUM_FREE_BYTES."""
        try:
            free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
            if free * self._page_size < VACUUM_FREE_BYTES:
                return
            # executescript steps the pragma to the end; execute() would free a single page.
            conn.executescript("PRAGMA incremental_vacuum;")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            # The deletes are committed; a file that stays large is not worth failing for.
            log.warning("outbox %s: cannot give free space back: %s", self._path, exc)
            return
        log.debug("outbox %s: gave %d free pages back", self._path, free)


def _size(topic: str, payload: bytes) -> int:
    return len(payload) + len(topic.encode()) + RECORD_OVERHEAD


def _crc(payload: bytes) -> int:
    return zlib.crc32(payload)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
