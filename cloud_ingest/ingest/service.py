"""The ingest service: subscriber, formatter and writer wired together (docs/ingest.md).

::

    service = IngestService(load_ingest_config(Path("ingest.toml")))
    service.start()      # migrates the database, connects, subscribes
    ...
    service.stop()       # stores and acknowledges what it received, then disconnects

Several processes with the same ``mqtt.group`` share the fleet's messages; each needs its own
``mqtt.client_id``, which names its persistent session. A process removed for good leaves its
session in the group, where the broker goes on queuing its share; retire it::

    retired = IngestService(config).retire(quiet_s=5)   # with the removed process's client id

which stores what was queued for it through the same pipeline, leaves the group and ends the
session (`IngestService.retire`).
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from dbc import demo_catalogue, load_catalogue
from edge_agent.wire import WireSchema

from ..storage import StorageError, migrate
from .batcher import Batcher, Flush, Received
from .classify import Limits
from .config import IngestConfig
from .errors import IngestRetireError, IngestStartError
from .metrics import HttpServer, Metrics
from .pipeline import Backoff, Formatter, Writer, now_ms
from .registry import RegistryCache, RegistryUnavailable
from .subscriber import Subscriber

__all__ = ["IngestService", "Retired", "load_schemas"]

log = logging.getLogger(__name__)


def load_schemas(config: IngestConfig) -> dict[str, WireSchema]:
    """The wire schemas of the configured catalogues, by catalogue id."""
    catalogues = [demo_catalogue()] if config.demo_catalogue else []
    catalogues += [load_catalogue(c.dbc, c.map) for c in config.catalogues]
    return {c.catalogue_id: WireSchema.from_catalogue(c) for c in catalogues}


@dataclass(frozen=True, slots=True)
class Retired:
    """What retiring a member of the group did."""

    client_id: str
    messages: int  # received, committed (stored, duplicate or dead letter) and acknowledged
    session_found: bool  # whether the broker still had a session for the client id


class IngestService:
    """One ingest process."""

    def __init__(self, config: IngestConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.schemas = load_schemas(config)
        self._inbox: queue.SimpleQueue[Received | None] = queue.SimpleQueue()
        self._flushes: queue.Queue[Flush | None] = queue.Queue(config.batching.queue_flushes)
        self._abandon = threading.Event()
        self._pending: collections.deque[int] = collections.deque()  # received_ms, in order
        self._pending_lock = threading.Lock()
        self._activity = time.monotonic()  # the last receipt or commit
        self._committed = 0  # messages committed and acknowledged
        self.registry = RegistryCache(
            self._connect,
            refresh_s=config.validation.registry_refresh_s,
            miss_refresh_s=config.validation.registry_miss_refresh_s,
        )
        retry = config.retry
        self.writer = Writer(
            self._flushes,
            connect=self._connect,
            ack=self._ack,
            metrics=self.metrics,
            backoff=Backoff(retry.min_s, retry.max_s, self._abandon),
            abandon=self._abandon,
            prefix=config.mqtt.topic_prefix,
            on_done=self._done,
        )
        b = config.batching
        self.formatter = Formatter(
            self._inbox,
            self._flushes,
            registry=self.registry,
            schemas=self.schemas,
            limits=Limits(
                prefix=config.mqtt.topic_prefix,
                max_future_ms=config.validation.max_future_s * 1000,
                min_year=config.validation.min_year,
            ),
            batcher=Batcher(
                max_messages=b.max_messages,
                max_samples=b.max_samples,
                max_latency_ms=b.max_latency_ms,
            ),
            backoff=Backoff(retry.min_s, retry.max_s, self._abandon),
            abandon=self._abandon,
        )
        self.subscriber = Subscriber(
            config.mqtt, self._deliver, on_connection=self._connection_changed, clock_ms=now_ms
        )
        self.http: HttpServer | None = None
        self._started = False

    # -- life cycle ------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.config.database.url,
            autocommit=True,
            connect_timeout=max(1, round(self.config.database.connect_timeout_s)),
        )

    def start(self, timeout: float = 60.0) -> None:
        """Migrate the database, read the registry, then connect and subscribe."""
        self._prepare_database(timeout)
        if self.config.http.port:
            self.http = HttpServer(
                self.config.http.host, self.config.http.port, self.metrics, self.health
            )
            self.http.start()
        self.writer.start()
        self.formatter.start()
        self.subscriber.start(timeout)
        self._started = True
        log.info(
            "ingest %s in group %s: %d vehicles, catalogues %s",
            self.config.mqtt.client_id, self.config.mqtt.group, len(self.registry),
            ", ".join(sorted(self.schemas)),
        )  # fmt: skip

    def _prepare_database(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        backoff = Backoff(self.config.retry.min_s, self.config.retry.max_s, threading.Event())
        while True:
            try:
                with self._connect() as conn:
                    migrate(conn)
                self.registry.refresh()
                return
            except (psycopg.OperationalError, RegistryUnavailable) as exc:
                if time.monotonic() >= deadline:
                    raise IngestStartError(f"database unavailable: {exc}") from exc
                log.warning("database unavailable (%s); retrying", str(exc).strip())
                backoff.wait()
            except (StorageError, psycopg.Error) as exc:
                raise IngestStartError(f"cannot prepare the database: {exc}") from exc

    def stop(self, timeout: float = 30.0) -> None:
        """Store and acknowledge what was received, then disconnect (the session stays).

        If the database does not take it within ``timeout``, it is left unacknowledged: the
        broker delivers it again when this client reconnects.
        """
        if self._started:
            self._stop_pipeline(timeout)
            self.subscriber.stop()
            self._started = False
        self.registry.close()
        if self.http is not None:
            self.http.stop()
            self.http = None

    def _stop_pipeline(self, timeout: float) -> bool:
        """Let the formatter and the writer finish what was received; whether they did."""
        self._inbox.put(None)
        self.formatter.join(timeout)
        self.writer.join(max(0.0, timeout))
        if self.writer.is_alive() or self.formatter.is_alive():
            log.warning("stopping with unstored messages: they stay with the broker")
            self._abandon.set()
            self.writer.join(5)
            return False
        return True

    # -- retiring a member for good --------------------------------------------------------

    def retire(self, *, quiet_s: float = 5.0, timeout: float = 60.0) -> Retired:
        """Retire this client id from the group, after its process stopped for good.

        Resumes the session without subscribing and unsubscribes from the group (the broker
        gives it no new share), stores and acknowledges what the broker had queued for it
        through the same pipeline as `start`, and once nothing has arrived for ``quiet_s``
        and everything received is acknowledged, ends the session (DISCONNECT with a session
        expiry of 0). `IngestStartError` if the database or the broker cannot be reached;
        `IngestRetireError` if nothing could be stored for ``timeout`` or the broker went
        away: the session is then kept, with what was not stored, for another try.
        """
        c = self.config.mqtt
        try:
            self._prepare_database(timeout)
            self.writer.start()
            self.formatter.start()
            self._started = True
            self._activity = time.monotonic()
            self.subscriber.start(min(timeout, 30.0), leave=True)
            self._drain(quiet_s, timeout)
            finished = self._stop_pipeline(timeout)
            with self._pending_lock:
                finished = finished and not self._pending
            if not finished:
                raise IngestRetireError(f"messages for {c.client_id} arrived while finishing; "
                                        "its session is kept: retire it again")  # fmt: skip
            if not self.subscriber.end_session():
                raise IngestRetireError(f"the broker went away before the session of "
                                        f"{c.client_id} was ended: retire it again")  # fmt: skip
        except BaseException:
            self.stop(timeout=5)
            raise
        self._started = False
        self.registry.close()
        found = bool(self.subscriber.session_present)
        log.info("retired %s from group %s: %d messages stored, session %s", c.client_id,
                 c.group, self._committed, "ended" if found else "not found")  # fmt: skip
        return Retired(c.client_id, self._committed, found)

    def _drain(self, quiet_s: float, timeout: float) -> None:
        """Wait until nothing arrived for ``quiet_s`` and everything received is committed
        and acknowledged; `IngestRetireError` if nothing progresses for ``timeout``."""
        while True:
            time.sleep(min(0.1, quiet_s / 4))
            with self._pending_lock:
                pending = len(self._pending)
                idle = time.monotonic() - self._activity
            if not (self.writer.is_alive() and self.formatter.is_alive()):
                raise IngestRetireError("the ingest pipeline stopped (see the log); the session "
                                        f"of {self.config.mqtt.client_id} is kept")  # fmt: skip
            connected = self.subscriber.connected
            if idle < quiet_s:
                continue
            if pending == 0 and connected:
                return
            if idle >= timeout:
                why = (
                    "not connected to the broker" if not connected
                    else f"database unavailable: {self.writer.last_error}"
                    if self.writer.last_error else f"{pending} messages not stored"
                )  # fmt: skip
                raise IngestRetireError(
                    f"nothing stored for {timeout:.0f} s ({why}); the session of "
                    f"{self.config.mqtt.client_id} is kept with what was not stored: retire "
                    "it again"
                )

    # -- the flow --------------------------------------------------------------------------

    def _deliver(self, message: Received) -> None:
        with self._pending_lock:
            self._pending.append(message.received_ms)
            self._activity = time.monotonic()
            self.metrics.pending.set(len(self._pending))
        self._inbox.put(message)

    def _ack(self, message: Received) -> bool:
        return self.subscriber.ack(message)

    def _done(self, flush: Flush) -> None:
        with self._pending_lock:
            for _ in range(min(len(flush), len(self._pending))):
                self._pending.popleft()
            self._committed += len(flush)
            self._activity = time.monotonic()
            self.metrics.pending.set(len(self._pending))

    def _connection_changed(self, up: bool) -> None:
        self.metrics.mqtt_connected.set(1 if up else 0)
        if up:
            self.metrics.mqtt_connects.inc()

    def health(self) -> dict[str, Any]:
        """The state ``/healthz`` reports: healthy when connected and the database answers."""
        with self._pending_lock:
            pending = len(self._pending)
            oldest = (now_ms() - self._pending[0]) / 1000 if self._pending else 0.0
        self.metrics.oldest_pending_seconds.set(oldest)
        database_ok = self.writer.last_error is None
        running = not self._started or (self.writer.is_alive() and self.formatter.is_alive())
        return {
            "healthy": self.subscriber.connected and database_ok and running,
            "pipeline_running": running,
            "mqtt_connected": self.subscriber.connected,
            "database_ok": database_ok,
            "database_error": self.writer.last_error,
            "pending_messages": pending,
            "oldest_pending_s": round(oldest, 3),
            "vehicles": len(self.registry),
            "client_id": self.config.mqtt.client_id,
            "group": self.config.mqtt.group,
        }
