"""The fleet on the broker: each vehicle its own MQTT client, its agent's messages paced.

Every vehicle connects with its own client id (``can2care-<vehicle_id>``), a retained
``online`` status and an ``offline`` last will, as the edge agent's link does. The messages
its agent put in the outbox are published with QoS 1 in the agent's drain order, each when
the demo clock reaches the drive time at which the agent had it ready: the demo clock runs
``speed`` times faster than the wall clock from the start of the fleet's window.

One thread drives every vehicle's session with paho's external-loop API on one ``selectors``
loop (as `simulators.fleet` does): a network thread per client would need ``select()`` on
descriptors past 1024 with a few hundred vehicles.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import resource
import selectors
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from edge_agent.mqtt import sender_properties

from ._prepare import Prepared

__all__ = ["FleetPublisher", "PublishStats"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PublishStats:
    vehicles: int
    connected: int
    messages: int  # telemetry batches and events to publish
    published: int
    acked: int
    drive_clock: float  # the demo clock (epoch seconds of drive time) now
    done: bool


class _Client:
    def __init__(self, vehicle_id: str, host: str, port: int, counts: _Counts) -> None:
        self.vehicle_id = vehicle_id
        self.status_topic = f"v1/{vehicle_id}/status"
        self.counts = counts
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"can2care-{vehicle_id}", protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(50)
        self.client.will_set(self.status_topic, self.status(False), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.properties = sender_properties(f"can2care-{vehicle_id}")
        self.client.connect_timeout = 30.0
        self.host, self.port = host, port
        self.sock: Any = None
        self.client.connect(host, port, keepalive=60)  # TCP and CONNECT; CONNACK comes later

    def status(self, online: bool) -> bytes:
        document = {
            "state": "online" if online else "offline",
            "vehicle_id": self.vehicle_id,
            "time_ms": int(time.time() * 1000),
        }
        return json.dumps(document, separators=(",", ":")).encode()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("vehicle %s refused by the broker: %s", self.vehicle_id, reason)
            return
        client.publish(self.status_topic, self.status(True), qos=1, retain=True)
        self.connected.set()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self.counts.lock:
            self.counts.acked += 1

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        self.client.publish(topic, payload, qos=qos, properties=self.properties)

    def reconnect(self) -> None:
        """After a lost connection: connect again (the session's messages are re-sent)."""
        self.connected.clear()
        try:
            self.client.reconnect()
        except OSError as exc:
            log.debug("vehicle %s: reconnect failed: %s", self.vehicle_id, exc)


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked = 0  # PUBACKs, status messages included
        self.published = 0
        self.status = 0


class FleetPublisher:
    """Publishes the prepared fleet from a thread of its own (``start``, ``stats``, ``close``)."""

    def __init__(
        self, fleet: Sequence[Prepared], host: str, port: int, *, speed: float, window_start: float
    ) -> None:
        self.fleet = fleet
        self.host, self.port = host, port
        self.speed = speed
        self.window_start = window_start
        self.messages = sum(len(p.records) for p in fleet)
        self._counts = _Counts()
        self._clients: list[_Client] = []
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._publishing = threading.Event()
        self._closing = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._started = False
        self._thread = threading.Thread(target=self._run, name="demo-publisher", daemon=True)
        self._wall_start = 0.0
        self._done = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float | None = None) -> None:
        """Connect every vehicle (waiting up to ``timeout`` for all, by default a minute and
        a tenth of a second per vehicle), then start publishing."""
        _raise_nofile()
        timeout = 60.0 + 0.1 * len(self.fleet) if timeout is None else timeout
        self._thread.start()  # the loop reads the CONNACKs while the next vehicles connect
        for p in self.fleet:
            client = _Client(p.vehicle_id, self.host, self.port, self._counts)
            with self._lock:
                self._clients.append(client)
        deadline = time.monotonic() + timeout
        for c in list(self._clients):
            if not c.connected.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"vehicle {c.vehicle_id} did not connect to the broker")
        self._wall_start = time.time()
        self._publishing.set()

    def drive_clock(self) -> float:
        if not self._wall_start:
            return self.window_start
        return self.window_start + (time.time() - self._wall_start) * self.speed

    # -- the network thread ---------------------------------------------------------------

    def _follow(self, client: _Client) -> None:
        """Keep the selector in step with the client's socket and its wish to write."""
        sock = client.client.socket()
        if sock is not client.sock:
            if client.sock is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(client.sock)
            client.sock = sock
            if sock is not None:
                self._selector.register(sock, selectors.EVENT_READ, client)
        if sock is not None and client.client.want_write():
            client.client.loop_write()

    def _run(self) -> None:
        try:
            heap: list[tuple[float, int, int]] = []
            next_misc = 0.0
            while not self._stop.is_set():
                with self._lock:
                    clients = list(self._clients)
                for client in clients:
                    self._follow(client)
                if self._publishing.is_set() and not heap and not self._closing.is_set():
                    heap = [
                        (p.records[0].ready_s, i, 0) for i, p in enumerate(self.fleet) if p.records
                    ]
                    heapq.heapify(heap)
                    self._publishing.clear()
                    self._started = True
                timeout = 0.05
                while heap:
                    ready_s, i, k = heap[0]
                    wait = (ready_s - self.drive_clock()) / self.speed
                    if wait > 0:
                        timeout = min(timeout, wait)
                        break
                    heapq.heappop(heap)
                    record = self.fleet[i].records[k]
                    clients[i].publish(record.topic, record.payload, record.qos)
                    with self._counts.lock:
                        self._counts.published += 1
                    if k + 1 < len(self.fleet[i].records):
                        heapq.heappush(heap, (self.fleet[i].records[k + 1].ready_s, i, k + 1))
                if self._started and not heap and not self._done.is_set():
                    self._done.set()
                for key, _mask in (
                    self._selector.select(timeout) if self._selector.get_map() else []
                ):
                    key.data.client.loop_read()
                if time.monotonic() >= next_misc:
                    next_misc = time.monotonic() + 1.0
                    for client in clients:
                        if client.client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                            client.reconnect()
                if not self._selector.get_map():
                    self._stop.wait(timeout)
                if self._closing.is_set() and not self._closed.is_set():
                    self._goodbye(clients)
        except BaseException as exc:  # pragma: no cover - reported by stats' caller
            self._error = exc
            log.exception("the publisher failed")
        finally:
            self._done.set()

    def stats(self) -> PublishStats:
        with self._counts.lock:
            published, acked = self._counts.published, self._counts.acked
        return PublishStats(
            vehicles=len(self.fleet),
            connected=sum(c.connected.is_set() for c in self._clients),
            messages=self.messages,
            published=published,
            acked=acked,
            drive_clock=self.drive_clock(),
            done=self._done.is_set() and self._started,
        )

    def wait_acked(self, timeout: float) -> bool:
        """Wait until every message published so far has its PUBACK (statuses included)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._counts.lock:
                if self._counts.acked >= self._counts.published + len(self._clients):
                    return True
            time.sleep(0.1)
        return False

    def _goodbye(self, clients: Sequence[_Client]) -> None:
        """On the network thread: each vehicle's ``offline`` status, then its disconnect."""
        for client in clients:
            if client.connected.is_set():
                client.client.publish(client.status_topic, client.status(False), qos=1, retain=True)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(c.client.want_write() for c in clients):
            for client in clients:
                self._follow(client)
            for key, _mask in self._selector.select(0.05):
                key.data.client.loop_read()
        for client in clients:
            client.client.disconnect()
            self._follow(client)
        self._closed.set()
        self._stop.set()

    def close(self) -> None:
        """Stop publishing, send each vehicle's ``offline`` status and disconnect."""
        self._closing.set()
        if self._thread.is_alive():
            self._closed.wait(15.0)
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._selector.close()
        if self._error is not None:
            raise RuntimeError(f"the publisher failed: {self._error}") from self._error


def _raise_nofile() -> None:
    """Raise the open-files limit to the hard limit: a connection is a descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
