"""The ingest pipeline's two stages after the subscriber, each a thread of its own.

::

    subscriber --Received--> inbox --> Formatter --Flush--> (bounded queue) --> Writer
        ^                    (decode, classify, rows)          (one transaction, then ack) |
        +--------------------------------- ack -------------------------------------------+

The formatter does the CPU work (decompress, decode, rows) while the writer waits on the
database, so both overlap. The inbox is bounded by the broker's receive maximum (nothing is
acknowledged before it is committed), the queue of flushes by its size: while the database is
down, the writer retries with backoff, the queue fills, the formatter waits, and memory stays
bounded. A flush the database refuses for good is split to find the message it refuses, which
becomes a dead letter (`Reason.STORAGE_REFUSED`); the others are stored.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import psycopg

from edge_agent.wire import WireSchema

from ..storage import StatusRow, StoreResult, TelemetryRows, store_all
from .batcher import Batcher, Flush, Received
from .classify import Limits, Outcome, Reason, Rejected, classify, split_topic
from .metrics import Metrics
from .registry import RegistryCache, RegistryUnavailable

__all__ = ["Backoff", "Formatter", "Writer", "now_ms"]

log = logging.getLogger(__name__)

_TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError)


def now_ms() -> int:
    """Wall-clock ms since the Unix epoch (receipt times, flush ages, lag)."""
    return time.time_ns() // 1_000_000


class Backoff:
    """Exponential backoff with equal jitter, interruptible by ``stop``."""

    def __init__(self, min_s: float, max_s: float, stop: threading.Event) -> None:
        self.min_s, self.max_s, self._stop = min_s, max_s, stop
        self._delay = min_s

    def wait(self) -> bool:
        """Sleep the next delay; False if ``stop`` was set meanwhile."""
        delay = self._delay / 2 + random.uniform(0, self._delay / 2)
        self._delay = min(self.max_s, self._delay * 2)
        return not self._stop.wait(delay)

    def reset(self) -> None:
        self._delay = self.min_s


class Formatter(threading.Thread):
    """Classifies received messages into rows and hands flushes to the writer."""

    def __init__(
        self,
        inbox: queue.SimpleQueue[Received | None],
        flushes: queue.Queue[Flush | None],
        *,
        registry: RegistryCache,
        schemas: Mapping[str, WireSchema],
        limits: Limits,
        batcher: Batcher,
        backoff: Backoff,
        abandon: threading.Event,
    ) -> None:
        super().__init__(name="ingest-format", daemon=True)
        self._inbox = inbox
        self._flushes = flushes
        self._registry = registry
        self._schemas = schemas
        self._limits = limits
        self._batcher = batcher
        self._backoff = backoff
        self._abandon = abandon

    def run(self) -> None:
        batcher = self._batcher
        while True:
            wait = batcher.wait_ms(now_ms())
            try:
                message = self._inbox.get(timeout=None if wait is None else wait / 1000)
            except queue.Empty:
                message = None
            else:
                if message is None:  # the end: flush what is left and tell the writer
                    if len(batcher):
                        self._flushes.put(batcher.take())
                    self._flushes.put(None)
                    return
            if message is not None:
                outcome = self._classify(message)
                if outcome is None:  # abandoned while the registry was unreachable
                    self._flushes.put(None)
                    return
                batcher.add(message, outcome, now_ms())
            if batcher.due(now_ms()):
                self._flushes.put(batcher.take())

    def _classify(self, message: Received) -> Outcome | None:
        while True:
            try:
                outcome = classify(
                    message.topic,
                    message.payload,
                    received_ms=message.received_ms,
                    registry=self._registry,
                    schemas=self._schemas,
                    limits=self._limits,
                )
            except RegistryUnavailable as exc:
                log.warning("%s; retrying", exc)
                if not self._backoff.wait() or self._abandon.is_set():
                    return None
                continue
            except Exception as exc:  # a bug must not stop the service: dead-letter, log it
                log.exception("cannot classify a message on %s", message.topic)
                outcome = Rejected(Reason.MALFORMED, f"{type(exc).__name__}: {exc}")
            self._backoff.reset()
            return outcome


class Writer(threading.Thread):
    """Stores each flush in one transaction, then acknowledges its messages."""

    def __init__(
        self,
        flushes: queue.Queue[Flush | None],
        *,
        connect: Callable[[], psycopg.Connection[Any]],
        ack: Callable[[Received], bool],
        metrics: Metrics,
        backoff: Backoff,
        abandon: threading.Event,
        prefix: str,
        on_done: Callable[[Flush], None],
    ) -> None:
        super().__init__(name="ingest-write", daemon=True)
        self._flushes = flushes
        self._connect = connect
        self._ack = ack
        self._metrics = metrics
        self._backoff = backoff
        self._abandon = abandon
        self._prefix = prefix
        self._on_done = on_done
        self._conn: psycopg.Connection[Any] | None = None
        self.healthy = False
        self.last_error: str | None = None

    def run(self) -> None:
        try:
            while True:
                flush = self._flushes.get()
                if flush is None:
                    return
                if not self._store(flush):
                    return  # abandoned: the rest stays unacknowledged, the broker keeps it
                for message in flush.messages:
                    self._ack(message)
                self._on_done(flush)
        finally:
            self._close()

    def _store(self, flush: Flush) -> bool:
        """Store ``flush``, retrying while the database is unreachable; False if abandoned."""
        while True:
            try:
                conn = self._connection()
                started = time.perf_counter()
                result = store_all(conn, flush.writes())
            except _TRANSIENT as exc:
                self._failed(exc)
                if not self._backoff.wait() or self._abandon.is_set():
                    return False
                continue
            except psycopg.Error as exc:
                return self._refused(flush, exc)
            except Exception as exc:  # a bug must not stop the writer: find the message
                log.exception("storing a flush of %d messages failed", len(flush))
                return self._refused(flush, exc)
            self._metrics.commit_seconds.observe(time.perf_counter() - started)
            self._backoff.reset()
            self._record(flush, result)
            return True

    def _refused(self, flush: Flush, exc: Exception) -> bool:
        """The database refused ``flush`` for good: find the message, dead-letter it."""
        if len(flush) > 1:
            log.warning("the database refused a flush of %d messages (%s); storing them one "
                        "by one", len(flush), exc)  # fmt: skip
            return all(self._store(part) for part in flush.split())
        log.error("the database refused the message on %s: %s", flush.messages[0].topic, exc)
        detail = f"{type(exc).__name__}: {str(exc).strip()}"
        flush.outcomes[0] = Rejected(Reason.STORAGE_REFUSED, detail)
        return self._store(flush)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def _failed(self, exc: Exception) -> None:
        if self.healthy or self.last_error is None:
            log.warning("database unavailable (%s); holding acknowledgements and retrying",
                        str(exc).strip())  # fmt: skip
        self.healthy = False
        self.last_error = str(exc).strip()
        self._metrics.db_up.set(0)
        self._metrics.db_retries.inc()
        self._close()

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def _record(self, flush: Flush, result: StoreResult) -> None:
        if not self.healthy and self.last_error is not None:
            log.warning("database available again")
        self.healthy = True
        self.last_error = None
        m = self._metrics
        m.db_up.set(1)
        m.samples.inc(result.samples)
        m.rows.inc(result.series_rows)
        fresh = set(result.stored)  # a batch given twice in one flush is new only once
        now = now_ms()
        for message, outcome in zip(flush.messages, flush.outcomes, strict=True):
            m.lag_seconds.observe(max(0, now - message.received_ms) / 1000)
            parts = split_topic(message.topic, self._prefix)
            kind = parts[1] if parts else "unknown"
            if isinstance(outcome, Rejected):
                m.messages.labels(kind, "dead_letter").inc()
                m.dead_letters.labels(outcome.reason.value).inc()
            elif isinstance(outcome, TelemetryRows):
                new = outcome.key in fresh
                fresh.discard(outcome.key)
                m.messages.labels(kind, "stored" if new else "duplicate").inc()
            elif isinstance(outcome, StatusRow):
                m.messages.labels(kind, "stored").inc()
        m.messages.labels("events", "stored").inc(result.events_stored)
        m.messages.labels("events", "duplicate").inc(result.event_duplicates)
