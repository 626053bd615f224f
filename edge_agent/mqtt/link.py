"""The MQTT link: one thread that connects, reconnects and drains the outbox.

paho-mqtt runs under our own ``select`` loop (its external-loop API: ``socket``,
``loop_read``, ``loop_write``, ``loop_misc``) so that a wake-up pipe makes an urgent record
go out at once, and so that reconnecting follows our backoff with jitter. Records are
published in the outbox's drain order, at most ``max_inflight`` unacknowledged at a time;
a record is deleted from the outbox only when its PUBACK arrives (STYLE 7: acks are handles,
durability is ours). Messages in flight when a connection drops are re-sent by paho on the
next connection, and the outbox holds them back from a second publish, so nothing is sent
twice by the agent; after a restart of the agent, unacknowledged records are sent again
(at least once: the cloud drops duplicates by sequence number).

The status topic carries a retained JSON document: ``online`` with metrics while connected,
and the last will ``offline``, which the broker publishes if the agent vanishes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .errors import MqttConfigError

if TYPE_CHECKING:
    from ..config import MqttConfig
    from ..outbox import Outbox

__all__ = ["LinkStats", "MqttLink", "sender_properties"]

log = logging.getLogger(__name__)

# Longest wait in select: keepalive checks and the status timer need a tick.
_TICK = 0.5


def sender_properties(client_id: str) -> Properties:
    """The PUBLISH properties of a vehicle's messages: its client id as the ``client_id``
    user property, so the cloud can name the sender of a message it cannot store (MQTT does
    not tell a subscriber who published)."""
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.UserProperty = ("client_id", client_id)
    return properties


@dataclass(frozen=True, slots=True)
class LinkStats:
    connected: bool
    connects: int  # successful connections since start
    published: int  # records handed to the broker
    acked: int  # records acknowledged (and deleted from the outbox)
    inflight: int
    last_publish_ms: int | None  # wall-clock time of the last PUBACK
    last_error: str | None


class MqttLink:
    """Publishes outbox records to the broker from a thread of its own."""

    def __init__(
        self,
        config: MqttConfig,
        outbox: Outbox,
        *,
        client_id: str,
        status_topic: str,
        status_payload: Callable[[bool], bytes],
        status_interval_s: float = 10.0,
    ) -> None:
        self.config = config
        self.outbox = outbox
        self.status_topic = status_topic
        self._status_payload = status_payload
        self._status_interval = status_interval_s
        self._client = self._make_client(client_id)
        self._properties = sender_properties(client_id)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._connected = False
        self._socket_open = False
        self._attempt = 0
        self._next_attempt = 0.0
        self._inflight: dict[int, int] = {}  # paho mid -> outbox record id
        self._acked: list[int] = []
        self._dirty = True
        self._connects = self._published = self._acked_count = 0
        self._last_publish_ms: int | None = None
        self._last_error: str | None = None
        self._next_status = 0.0
        self._first_connected = threading.Event()
        self._refused = False
        self._socket_error: str | None = None
        self._closing = False  # our own disconnect at stop

    # -- set-up -------------------------------------------------------------------------

    def _make_client(self, client_id: str) -> mqtt.Client:
        c = self.config
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.enable_logger(logging.getLogger(__name__ + ".paho"))
        client.max_inflight_messages_set(max(c.max_inflight, 1))
        client.max_queued_messages_set(0)
        client.connect_timeout = c.connect_timeout_s
        password = c.password
        if c.password_file is not None:
            try:
                password = c.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise MqttConfigError(
                    f"mqtt.password_file: cannot read {c.password_file}: {exc.strerror or exc}"
                ) from exc
        if c.username is not None:
            client.username_pw_set(c.username, password)
        if c.tls is not None:
            tls = c.tls
            try:
                client.tls_set(
                    ca_certs=None if tls.ca_file is None else os.fspath(tls.ca_file),
                    certfile=None if tls.cert_file is None else os.fspath(tls.cert_file),
                    keyfile=None if tls.key_file is None else os.fspath(tls.key_file),
                    cert_reqs=ssl.CERT_REQUIRED,
                    ciphers=tls.ciphers,
                )
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise MqttConfigError(f"mqtt.tls: cannot load the certificates: {exc}") from exc
            if tls.insecure:
                log.warning("mqtt.tls.insecure: the broker's host name is not checked")
                client.tls_insecure_set(True)
        client.will_set(self.status_topic, self._status_payload(False), qos=1, retain=True)
        client.on_log = self._on_log
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    # -- public -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="can2care-mqtt", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Something was put in the outbox: publish it now if connected."""
        with self._lock:
            self._dirty = True
        with contextlib.suppress(OSError):  # full (already woken) or closed
            self._wake_w.send(b"\0")

    def wait_connected(self, timeout: float) -> bool:
        return self._first_connected.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Publish the offline status, disconnect and end the thread.

        Waits up to ``timeout`` for records in flight to be acknowledged first.
        """
        deadline = time.monotonic() + timeout
        while self._connected and self._inflight and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(max(0.1, deadline - time.monotonic()) + 2.0)
        self._wake_r.close()
        self._wake_w.close()

    @property
    def stats(self) -> LinkStats:
        return LinkStats(
            connected=self._connected,
            connects=self._connects,
            published=self._published,
            acked=self._acked_count,
            inflight=len(self._inflight),
            last_publish_ms=self._last_publish_ms,
            last_error=self._last_error,
        )

    # -- paho callbacks (run in the link thread) ------------------------------------------

    def _on_log(self, client: mqtt.Client, userdata: Any, level: int, message: str) -> None:
        # paho says why a socket failed (a TLS alert, a reset) only in its log
        if level == mqtt.MQTT_LOG_ERR:
            self._socket_error = message

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            self._refused = True
            self._last_error = f"the broker refused the connection: {reason}"
            log.error("mqtt %s:%d: %s", self.config.host, self.config.port, self._last_error)
            client.disconnect()
            return
        self._connected = True
        self._attempt = 0
        self._connects += 1
        self._dirty = True
        self._last_error = None
        log.info("mqtt connected to %s:%d", self.config.host, self.config.port)
        self._publish_status(online=True)
        self._first_connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if self._connected:
            log.log(
                logging.INFO if self._closing else logging.WARNING,
                "mqtt disconnected from %s:%d: %s",
                self.config.host,
                self.config.port,
                reason,
            )
        self._connected = False
        self._socket_open = False

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        record = self._inflight.pop(mid, None)
        if record is None:
            return  # a status message
        if reason.is_failure:
            # The broker took it but refused it (e.g. not authorised for the topic): keep the
            # record and try again later rather than lose it.
            self._last_error = f"the broker refused a publish: {reason}"
            log.error("mqtt: %s (record %d kept)", self._last_error, record)
            return
        self._acked.append(record)
        self._last_publish_ms = int(time.time() * 1000)
        self._dirty = True

    # -- the loop -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._socket_open:
                    self._connect_or_wait()
                    continue
                self._service()
        except Exception:
            log.exception("mqtt link failed")
            raise
        finally:
            self._shutdown()

    def _connect_or_wait(self) -> None:
        delay = self._next_attempt - time.monotonic()
        if delay > 0:
            self._wait_wake(delay)
            return
        c = self.config
        self._refused = False
        self._socket_error = None
        try:
            self._client.connect(c.host, c.port, keepalive=c.keepalive_s)
        except (OSError, ssl.SSLError) as exc:
            self._last_error = f"cannot connect to {c.host}:{c.port}: {exc}"
            self._backoff()
            return
        self._socket_open = True

    def _backoff(self) -> None:
        c = self.config
        self._attempt += 1
        ceiling = min(c.reconnect_max_s, c.reconnect_min_s * 2 ** min(self._attempt - 1, 30))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # equal jitter
        self._next_attempt = time.monotonic() + delay
        log.warning("mqtt: %s; next attempt in %.1f s", self._last_error, delay)

    def _wait_wake(self, timeout: float) -> None:
        select.select([self._wake_r], [], [], min(timeout, _TICK))
        self._drain_wake()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _service(self) -> None:
        client = self._client
        sock = client.socket()
        if sock is None:
            self._lost("the socket closed")
            return
        rc = self._turn(sock, _TICK, wake=True)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._lost(mqtt.error_string(rc))
            return
        if self._acked:
            acked, self._acked = self._acked, []
            self.outbox.ack(acked)
            self._acked_count += len(acked)
        if self._connected:
            self._pump()
            if self._status_interval > 0 and time.monotonic() >= self._next_status:
                self._publish_status(online=True)

    def _turn(self, sock: Any, timeout: float, *, wake: bool) -> MQTTErrorCode:
        """One turn of paho's external loop on ``sock``: wait up to ``timeout`` (or for the
        wake-up pipe), read what arrived, write what waits, keepalive; the first error."""
        client = self._client
        readers = [sock, self._wake_r] if wake else [sock]
        writers = [sock] if client.want_write() else []
        readable, writable, _ = select.select(readers, writers, [], timeout)
        if self._wake_r in readable:
            self._drain_wake()
        if sock in readable:
            rc = client.loop_read(max_packets=100)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return rc
        if client.want_write() or sock in writable:
            rc = client.loop_write()
            if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
                return rc
        return client.loop_misc()

    def _lost(self, why: str) -> None:
        if self._socket_error:
            why = self._socket_error
        if self._connected:
            log.warning(
                "mqtt connection to %s:%d lost: %s", self.config.host, self.config.port, why
            )
        self._connected = False
        self._socket_open = False
        if not self._refused:  # a refusal says more than the connection closing after it
            self._last_error = f"connection lost: {why}"
        self._backoff()

    def _pump(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            self._dirty = False
        room = self.config.max_inflight - len(self._inflight)
        if room <= 0:
            return
        records = self.outbox.pending(room, exclude=set(self._inflight.values()))
        for record in records:
            info = self._client.publish(
                record.topic, record.payload, qos=record.qos, properties=self._properties
            )
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                log.debug(
                    "mqtt publish of record %d deferred: %s", record.id, mqtt.error_string(info.rc)
                )
                self._dirty = True
                break
            self._inflight[info.mid] = record.id
            self._published += 1
        if len(records) == room:
            self._dirty = True  # more may be waiting once acks free the window

    def _publish_status(self, *, online: bool) -> None:
        self._next_status = time.monotonic() + max(self._status_interval, 1.0)
        self._client.publish(self.status_topic, self._status_payload(online), qos=1, retain=True)

    def _shutdown(self) -> None:
        """Publish the offline status and disconnect. paho has no thread of its own here, so
        `disconnect` writes the DISCONNECT at once and closes the socket after it; the
        client is turned only while its socket is open (paho's own `loop` without a socket
        logs "Client is not connected" as an error)."""
        client = self._client
        if self._socket_open and self._connected:
            self._closing = True
            try:
                info = client.publish(
                    self.status_topic, self._status_payload(False), qos=1, retain=True
                )
                deadline = time.monotonic() + 2.0
                while not info.is_published() and self._turn_open(deadline):
                    pass
                if client.socket() is not None:
                    client.disconnect()
                while self._turn_open(deadline + 0.1):  # a DISCONNECT only partly written
                    pass
            except (OSError, ValueError, RuntimeError) as exc:
                log.debug("mqtt: offline status not sent: %s", exc)
        self._connected = False
        self._socket_open = False

    def _turn_open(self, deadline: float) -> bool:
        """A `_turn` if the socket is open and ``deadline`` not passed; whether it went well."""
        sock = self._client.socket()
        if sock is None or time.monotonic() >= deadline:
            return False
        return self._turn(sock, 0.05, wake=False) == MQTTErrorCode.MQTT_ERR_SUCCESS
