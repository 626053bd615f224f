"""The live stream of alert changes: one LISTEN for the whole process, fanned out to clients.

A `Broadcaster` holds two connections: one waits on ``LISTEN alert_changes`` (the NOTIFY of
`rules.store`), the other reads the change feed after the last entry it passed on, so a lost
or coalesced notification loses nothing. Each client has a bounded queue; a client too slow to
drain it is disconnected, and resumes with ``Last-Event-ID`` (the feed id) where it left.

Feed ids are committed in increasing order (the store serialises its writers), so a client
that subscribes, then replays the feed after its Last-Event-ID from the database, then takes
its queue while skipping ids it has sent, misses nothing and sends nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from rules.store import CHANNEL

from .metrics import Metrics
from .settings import Settings

__all__ = ["Broadcaster", "StreamFilter", "Subscription", "format_event"]

log = logging.getLogger(__name__)

_QUEUE = 10_000
_FEED = (
    "SELECT feed_id, at, alert_id, sequence, kind, alert FROM alert_feed"
    " WHERE feed_id > %s ORDER BY feed_id LIMIT %s"
)


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """Which changes a client wants; an empty criterion accepts every value."""

    status: frozenset[str] = frozenset()
    severity: frozenset[str] = frozenset()
    category: frozenset[str] = frozenset()
    rule_id: frozenset[str] = frozenset()
    vehicle_id: frozenset[str] = frozenset()

    def accepts(self, alert: Mapping[str, Any]) -> bool:
        return all(
            not wanted or alert.get(name) in wanted
            for name, wanted in (
                ("status", self.status),
                ("severity", self.severity),
                ("category", self.category),
                ("rule_id", self.rule_id),
                ("vehicle_id", self.vehicle_id),
            )
        )


def format_event(entry: Mapping[str, Any]) -> str:
    """One server-sent event: the feed id as its id, the change as JSON data."""
    data = {
        "feed_id": entry["feed_id"],
        "at": entry["at"].isoformat(),
        "alert_id": entry["alert_id"],
        "sequence": entry["sequence"],
        "kind": entry["kind"],
        "alert": entry["alert"],
    }
    return f"id: {entry['feed_id']}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass(eq=False, slots=True)
class Subscription:
    """A client's place: the feed position when it subscribed, and its queue."""

    start: int
    closed: bool = False  # fell too far behind: the client should reconnect
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(_QUEUE)
    )


class Broadcaster:
    """Passes every committed alert change to each subscribed client's queue."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._url = settings.database_url
        self._max_clients = settings.stream_max_clients
        self._metrics = metrics
        self._subscribers: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.position = 0

    async def start(self) -> None:
        """Connects and starts passing changes on; returns once it listens."""
        self._tasks = [asyncio.create_task(self._run(), name="can2care-api-broadcaster")]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 10.0)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sub in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)

    def subscribe(self) -> Subscription | None:
        """A new subscription from the current position, or None when too many are open."""
        if len(self._subscribers) >= self._max_clients:
            return None
        sub = Subscription(self.position)
        self._subscribers.add(sub)
        self._metrics.stream_clients.inc()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.discard(sub)
            self._metrics.stream_clients.dec()

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    async def _run(self) -> None:
        first = True
        while True:
            try:
                async with (
                    await psycopg.AsyncConnection.connect(self._url, autocommit=True) as listen,
                    await psycopg.AsyncConnection.connect(self._url, autocommit=True) as read,
                ):
                    await listen.execute(f"LISTEN {CHANNEL}")
                    if first:
                        cur = await read.execute("SELECT coalesce(max(feed_id), 0) FROM alert_feed")
                        row = await cur.fetchone()
                        self.position = int(row[0]) if row is not None else 0
                        first = False
                    self._wake.set()  # catch up on what came while not listening
                    self._ready.set()
                    waiter = asyncio.create_task(self._listen(listen, self._wake.set))
                    try:
                        await self._pass_on(read, waiter)
                    finally:
                        waiter.cancel()
                        with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                            await waiter
            except psycopg.OperationalError as exc:
                log.warning("alert stream: database unavailable (%s); retrying", exc)
                await asyncio.sleep(1.0)

    @staticmethod
    async def _listen(conn: psycopg.AsyncConnection[Any], wake: Callable[[], None]) -> None:
        async for _ in conn.notifies():
            wake()

    async def _pass_on(
        self, conn: psycopg.AsyncConnection[Any], waiter: asyncio.Task[None]
    ) -> None:
        while not waiter.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 5.0)
            self._wake.clear()
            while True:
                async with conn.cursor(row_factory=dict_row) as cur:
                    await cur.execute(_FEED, (self.position, 500))
                    rows = await cur.fetchall()
                for row in rows:
                    self._dispatch(row)
                if len(rows) < 500:
                    break
        waiter.result()  # the listener's error, if it failed

    def _dispatch(self, entry: dict[str, Any]) -> None:
        self.position = int(entry["feed_id"])
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait(entry)
            except asyncio.QueueFull:
                log.warning("alert stream: a client fell %d changes behind; closing it", _QUEUE)
                sub.closed = True
                self.unsubscribe(sub)
