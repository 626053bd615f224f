"""The fleet's loop: every vehicle's MQTT session in one thread, on one ``selectors`` loop.

A thread per vehicle would not hold ten thousand vehicles; here one thread waits on every
socket at once and drives each paho client through its external-loop API. Three timers feed
the loop: connection attempts (at most ``connect_rate`` per second, first connections and
reconnections alike, so neither a start nor a broker restart storms the broker), batches
(each vehicle every ``batch_interval_s`` once it first connected, at an offset within the
interval that grows with its index, so the fleet's publishes are spread evenly over it), and
paho's keepalive checks (``loop_misc``, each vehicle a few times per keepalive).

A vehicle's batches are published whether it is connected or not: paho keeps QoS 1 messages
until their PUBACK, sends what waits once connected, and re-sends what was in flight when a
connection dropped (at least once; the cloud drops duplicates by sequence). Up to
``max_queued`` batches wait per vehicle; newer ones are dropped and counted. Sequence numbers
start at the fleet's start time in ms times 1000 and count up by one per batch, so they are
strictly increasing per vehicle and a later run never reuses an earlier run's numbers.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
import resource
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from paho.mqtt.enums import MQTTErrorCode

from edge_agent.wire import WireSchema, encode_telemetry

from ..errors import FleetError
from ._config import FleetConfig
from ._playback import Playback, build_playbacks
from ._vehicle import Counters, Vehicle

__all__ = ["Fleet", "FleetStats"]

log = logging.getLogger(__name__)

_MAX_WAIT = 0.1  # longest select wait: timers are checked at least this often
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


@dataclass(frozen=True, slots=True)
class FleetStats:
    """The fleet's totals since it started.

    ``refusals`` counts refused connection attempts by the broker's reason code (e.g.
    ``"135 Not authorized"``); ``refused_vehicles`` are the vehicles whose last attempt was
    refused. ``published`` counts telemetry batches handed to MQTT (status messages are
    ``status_published``), ``acked`` those whose PUBACK arrived, ``unacked`` those in flight
    or waiting now. ``cpu_s`` is the process's CPU time since the fleet started.
    """

    vehicles: int
    connected: int
    connects: int
    reconnects: int
    connection_losses: int
    connect_errors: int
    refusals: Mapping[str, int]
    refused_vehicles: tuple[str, ...]
    published: int
    acked: int
    unacked: int
    publish_failures: int
    dropped: int
    samples_published: int
    samples_acked: int
    payload_bytes: int
    status_published: int
    elapsed_s: float
    cpu_s: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "refusals", MappingProxyType(dict(self.refusals)))

    @property
    def refused(self) -> int:
        return sum(self.refusals.values())


@dataclass(slots=True)
class _Clock:
    started: float = field(default_factory=time.monotonic)
    cpu: float = field(default_factory=time.process_time)


class Fleet:
    """N simulated vehicles publishing telemetry to one broker (see the module docstring).

    ``start`` simulates the mix's drives, checks that the broker's port answers and starts
    the loop thread; ``stop`` waits for batches in flight, publishes each vehicle's offline
    status and disconnects; ``run`` does both around a duration.
    """

    def __init__(self, config: FleetConfig, schema: WireSchema | None = None) -> None:
        self.config = config
        if schema is None:
            from dbc import demo_catalogue

            schema = WireSchema.from_catalogue(demo_catalogue())
        self.schema = schema
        self._counters = Counters()
        self._vehicles: list[Vehicle] = []
        self._selector: selectors.BaseSelector | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._draining = threading.Event()
        self._quiet = threading.Event()  # the loop saw _draining: it publishes no more batches
        self._attempts: list[tuple[float, int]] = []  # (due, vehicle index)
        self._batches: list[tuple[float, int]] = []
        self._connect_gate = 0.0
        self._misc_cursor = 0
        self._misc_at = 0.0
        self._sequence_base = 0
        self._clock = _Clock()
        self._error: BaseException | None = None
        self._rng = random.Random(config.seed)

    # -- public ---------------------------------------------------------------------------

    def start(self) -> None:
        """Prepare the drives and vehicles and start connecting (`FleetError` if the broker's
        port does not answer)."""
        c = self.config
        _ensure_descriptors(c.vehicles + 64)
        self._probe()
        slot_ms = max(1, round(c.batch_interval_s * 1000))
        playbacks = build_playbacks(
            c.mix,
            self.schema,
            samples_per_s=c.samples_per_s,
            slot_ms=slot_ms,
            trace_s=c.trace_s,
            seed=c.seed,
        )
        weights = [e.weight for e in c.mix]
        self._vehicles = [self._vehicle(i, playbacks, weights) for i in range(c.vehicles)]
        self._selector = selectors.DefaultSelector()
        self._clock = _Clock()
        self._sequence_base = int(time.time() * 1000) * 1000
        now = time.monotonic()
        self._attempts = [(now + i / c.connect_rate, i) for i in range(c.vehicles)]
        self._misc_at = now
        self._thread = threading.Thread(target=self._run, name="can2care-fleet", daemon=True)
        self._thread.start()
        log.info("fleet of %d vehicles started against %s:%d", c.vehicles, c.host, c.port)

    def stop(self, drain_s: float = 5.0) -> FleetStats:
        """Stop publishing, wait up to ``drain_s`` for PUBACKs, go offline and disconnect."""
        self._draining.set()
        deadline = time.monotonic() + drain_s
        # A batch being published when draining starts is counted before the wait below.
        while self._alive() and not self._quiet.wait(0.05) and time.monotonic() < deadline:
            pass
        while time.monotonic() < deadline and self._unacked() and self._alive():
            time.sleep(0.02)
        stats = self.stats()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise FleetError(f"the fleet's loop failed: {self._error}") from self._error
        return stats

    def run(
        self,
        duration_s: float | None = None,
        *,
        progress: Callable[[FleetStats], bool | None] | None = None,
        progress_every_s: float = 5.0,
        drain_s: float = 5.0,
    ) -> FleetStats:
        """Start, run for ``duration_s`` (the configuration's when None), stop; the totals.

        ``progress`` gets the totals every ``progress_every_s``; returning True ends the run
        early.
        """
        duration = self.config.duration_s if duration_s is None else duration_s
        if duration is None:
            raise FleetError("give the run a duration")
        self.start()
        try:
            end = time.monotonic() + duration
            while (left := end - time.monotonic()) > 0 and self._alive():
                time.sleep(min(left, progress_every_s))
                if progress is not None and time.monotonic() < end and progress(self.stats()):
                    break
        finally:
            stats = self.stop(drain_s)
        return stats

    def stats(self) -> FleetStats:
        c = self._counters
        with c.lock:
            refusals = dict(c.refusals)
        vehicles = list(self._vehicles)
        return FleetStats(
            vehicles=self.config.vehicles,
            connected=c.connected,
            connects=c.connects,
            reconnects=c.reconnects,
            connection_losses=c.losses,
            connect_errors=c.connect_errors,
            refusals=refusals,
            refused_vehicles=tuple(v.vehicle_id for v in vehicles if v.refused),
            published=c.published,
            acked=c.acked,
            unacked=self._unacked(),
            publish_failures=c.publish_failures,
            dropped=c.dropped,
            samples_published=c.samples_published,
            samples_acked=c.samples_acked,
            payload_bytes=c.payload_bytes,
            status_published=c.status_published,
            elapsed_s=time.monotonic() - self._clock.started,
            cpu_s=time.process_time() - self._clock.cpu,
        )

    # -- set-up ---------------------------------------------------------------------------

    def _probe(self) -> None:
        c = self.config
        try:
            with socket.create_connection((c.host, c.port), timeout=c.connect_timeout_s):
                pass
        except OSError as exc:
            raise FleetError(
                f"cannot reach the broker at {c.host}:{c.port}: {exc.strerror or exc}"
            ) from exc

    def _vehicle(self, index: int, playbacks: list[Playback], weights: list[float]) -> Vehicle:
        playback = self._rng.choices(playbacks, weights)[0]
        phase = self._rng.randrange(playback.slots)
        return Vehicle(index, self.config, playback, phase, self._counters)

    def _alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _unacked(self) -> int:
        return self._counters.published - self._counters.acked - self._counters.publish_failures

    # -- the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        assert self._selector is not None
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                self._connect_due(now)
                if self._draining.is_set():
                    self._quiet.set()
                else:
                    self._publish_due(now)
                self._misc(now)
                self._select(self._wait(now))
            self._close()
        except BaseException as exc:
            self._error = exc
            log.exception("the fleet's loop failed")
        finally:
            self._selector.close()

    def _wait(self, now: float) -> float:
        due = now + _MAX_WAIT
        if self._attempts:
            due = min(due, max(self._attempts[0][0], self._connect_gate))
        if self._batches:
            due = min(due, self._batches[0][0])
        return max(0.0, due - now)

    def _select(self, timeout: float) -> None:
        assert self._selector is not None
        for key, mask in self._selector.select(timeout):
            vehicle: Vehicle = key.data
            client = vehicle.client
            if mask & _READ:
                client.loop_read()
            if mask & _WRITE and client.socket() is not None:
                client.loop_write()
            self._touch(vehicle)

    def _touch(self, v: Vehicle) -> None:
        """After paho ran for ``v``: follow its socket (closed, or wanting to write)."""
        assert self._selector is not None
        sock = v.client.socket()
        if v.sock is not None and sock is not v.sock:
            self._selector.unregister(v.fd)
            v.sock, v.fd, v.events = None, -1, 0
            v.closed()
            self._retry(v)
            return
        if sock is None:
            return
        events = _READ | (_WRITE if v.client.want_write() else 0)
        if v.sock is None:
            v.sock, v.fd, v.events = sock, sock.fileno(), events
            self._selector.register(v.fd, events, v)
        elif events != v.events:
            v.events = events
            self._selector.modify(v.fd, events, v)

    def _retry(self, v: Vehicle) -> None:
        """Schedule ``v``'s next attempt: exponential backoff with equal jitter."""
        c = self.config
        v.attempt += 1
        ceiling = min(c.reconnect_max_s, c.reconnect_min_s * 2 ** min(v.attempt - 1, 30))
        delay = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        heapq.heappush(self._attempts, (time.monotonic() + delay, v.index))

    def _connect_due(self, now: float) -> None:
        c = self.config
        interval = 1.0 / c.connect_rate
        # allow a burst of a tenth of a second's worth, not more
        self._connect_gate = max(self._connect_gate, now - max(interval, 0.1))
        while self._attempts and self._attempts[0][0] <= now and self._connect_gate <= now:
            _due, index = heapq.heappop(self._attempts)
            self._connect_gate += interval
            self._connect(self._vehicles[index])

    def _connect(self, v: Vehicle) -> None:
        c = self.config
        try:
            v.client.connect(c.host, c.port, keepalive=c.keepalive_s, clean_start=True)
        except OSError as exc:
            self._counters.connect_errors += 1
            log.debug("vehicle %s cannot connect: %s", v.vehicle_id, exc)
            self._retry(v)
            return
        self._touch(v)

    def _publish_due(self, now: float) -> None:
        c = self.config
        interval = c.batch_interval_s
        # a vehicle starts publishing once it is connected for the first time
        started, self._counters.started = self._counters.started, []
        for index in started:
            v = self._vehicles[index]
            # vehicle i's batches fall due at start + (k + i / N) * interval, which spreads
            # the fleet's publishes evenly; the first window may begin before the connection
            offset = self._clock.started + interval * index / len(self._vehicles)
            v.next_batch = offset + (math.floor((now - offset) / interval) + 1) * interval
            v.origin_ms = int((time.time() + v.next_batch - now - interval) * 1000)
            v.next_status = now + (c.status_interval_s or math.inf)
            heapq.heappush(self._batches, (v.next_batch, v.index))
        while self._batches and self._batches[0][0] <= now:
            due, index = heapq.heappop(self._batches)
            v = self._vehicles[index]
            self._publish_batch(v)
            v.next_batch = due + interval
            heapq.heappush(self._batches, (v.next_batch, index))
            if v.connected and now >= v.next_status:
                v.next_status = now + c.status_interval_s
                v.publish_status(True)
                self._touch(v)

    def _publish_batch(self, v: Vehicle) -> None:
        counters = self._counters
        k = v.sent_batches
        v.sent_batches += 1
        playback = v.playback
        base_ms = v.origin_ms + k * playback.slot_ms
        batch = playback.batch(v.phase + k, base_ms, self._sequence_base + k)
        payload = encode_telemetry(batch, self.schema)
        info = v.client.publish(v.telemetry_topic, payload, qos=1, properties=v.properties)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            counters.dropped += 1
            return
        samples = batch.samples
        v.inflight[info.mid] = samples
        counters.published += 1
        counters.samples_published += samples
        counters.payload_bytes += len(payload)
        self._touch(v)

    def _misc(self, now: float) -> None:
        """``loop_misc`` for each vehicle about every quarter keepalive (pings, timeouts)."""
        period = max(1.0, self.config.keepalive_s / 4)
        share = (now - self._misc_at) / period
        count = min(len(self._vehicles), int(share * len(self._vehicles)))
        if count == 0:
            return
        self._misc_at = now
        n = len(self._vehicles)
        for _ in range(count):
            v = self._vehicles[self._misc_cursor]
            self._misc_cursor = (self._misc_cursor + 1) % n
            if v.sock is not None:
                v.client.loop_misc()
                self._touch(v)

    def _close(self) -> None:
        """Publish the offline status of connected vehicles, then disconnect every one."""
        assert self._selector is not None
        self._counters.stopping = True
        online = [v for v in self._vehicles if v.connected]
        for v in online:
            v.publish_status(False)
            self._touch(v)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and any(v.client.want_write() for v in online):
            self._select(0.05)
        for v in self._vehicles:
            if v.sock is not None:
                v.client.disconnect()
                self._touch(v)
                if v.sock is not None:
                    self._selector.unregister(v.fd)
                    v.sock = None
            v.client.on_connect = v.client.on_disconnect = v.client.on_publish = None


def _ensure_descriptors(needed: int) -> None:
    """Raise this process's soft limit of open files to ``needed`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        top = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
        soft = top
        log.info("raised the open files limit to %d", top)
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise FleetError(
            f"the fleet needs about {needed} open files but the limit is {soft} "
            "(raise it: ulimit -n)"
        )
