"""The MQTT side of the ingest service: a persistent MQTT 5 session in a shared group.

paho-mqtt 2 runs its own network thread (``loop_start``) with ``manual_ack``: a message is
handed to ``deliver`` as a `Received` and acknowledged (`Subscriber.ack`) only after its data
is committed. The session is persistent (clean start off, a session expiry), so messages
delivered but not acknowledged when the process dies are delivered again when it comes back,
and the broker keeps queuing this member's share while it is away. ``receive_maximum`` bounds
how many unacknowledged messages the broker sends, and so the service's memory.

Each connection is numbered; an acknowledgement is sent only on the connection its message
came on (after a reconnect the broker re-sends the unacknowledged messages, and those copies
are the ones acknowledged: the database drops the duplicate batch).

Retiring a member for good (`Subscriber.start` with ``leave=True``, then `end_session`):
it resumes the session without subscribing, unsubscribes from the group's filters (the
broker still delivers what it had queued for the session, and gives it no new share), and
finally disconnects with a session expiry of 0, which makes the broker discard the session.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .batcher import Received
from .classify import TOPIC_KINDS
from .config import MqttConfig
from .errors import IngestStartError

__all__ = ["Subscriber", "topic_filters"]

log = logging.getLogger(__name__)

# Reason codes of a refusal that retrying will not cure.
_FATAL_CONNACK = {134, 135, 138, 140}  # bad user name or password, not authorised, banned, auth


def topic_filters(group: str, prefix: str) -> list[str]:
    """The shared-subscription filters of the group: telemetry, events and status."""
    return [f"$share/{group}/{prefix}/+/{kind}" for kind in TOPIC_KINDS]


class Subscriber:
    """Receives the fleet's messages in a shared group and acknowledges them on request."""

    def __init__(
        self,
        config: MqttConfig,
        deliver: Callable[[Received], None],
        *,
        on_connection: Callable[[bool], None] | None = None,
        clock_ms: Callable[[], int],
    ) -> None:
        self.config = config
        self._deliver = deliver
        self._on_connection = on_connection or (lambda _up: None)
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._connection = 0
        self._connected = False
        self._first = threading.Event()
        self._gone = threading.Event()  # disconnected after stop or end_session
        self._ended = False  # ... by this client's DISCONNECT
        self._refusal: str | None = None
        self._stopping = False
        self._leave = False
        self._session_present: bool | None = None
        self._client = self._make_client()

    # -- set-up ----------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        c = self.config
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=c.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if c.username is not None:
            client.username_pw_set(c.username, c.secret())
        if c.tls is not None:
            client.tls_set(
                ca_certs=None if c.tls.ca_file is None else str(c.tls.ca_file),
                certfile=None if c.tls.cert_file is None else str(c.tls.cert_file),
                keyfile=None if c.tls.key_file is None else str(c.tls.key_file),
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._connected_cb
        client.on_disconnect = self._disconnected_cb
        client.on_message = self._message_cb
        client.on_subscribe = self._subscribed_cb
        client.on_unsubscribe = self._unsubscribed_cb
        return client

    def _connect_properties(self) -> Properties:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.config.session_expiry_s
        properties.ReceiveMaximum = self.config.receive_maximum
        return properties

    def start(self, timeout: float = 30.0, *, leave: bool = False) -> None:
        """Connect and subscribe; `IngestStartError` if the broker refuses or is unreachable.

        With ``leave``, resume the session and unsubscribe from the group instead (retiring
        this member); the broker must answer at once (no waiting for it to come up).
        """
        c = self.config
        self._leave = leave
        connect = self._client.connect if leave else self._client.connect_async
        try:
            connect(
                c.host,
                c.port,
                keepalive=c.keepalive_s,
                clean_start=False,
                properties=self._connect_properties(),
            )
        except (OSError, ValueError) as exc:
            raise IngestStartError(f"cannot connect to {c.host}:{c.port}: {exc}") from exc
        self._client.loop_start()
        if not self._first.wait(timeout) or self._refusal is not None:
            self._client.loop_stop()
            why = self._refusal or f"no answer within {timeout:.0f} s"
            raise IngestStartError(f"broker {c.host}:{c.port} refused the ingest client: {why}")

    def stop(self) -> None:
        """Disconnect (the session stays with the broker) and stop the network thread."""
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    def end_session(self, timeout: float = 10.0) -> bool:
        """Disconnect with a session expiry of 0, so the broker discards the session (and
        anything still in it); whether the DISCONNECT went out. Stops the network thread."""
        self._stopping = True
        properties = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 0
        rc = self._client.disconnect(properties=properties)
        # The network thread may send the packet and close the socket before disconnect()
        # returns, which then says "no connection": on_disconnect tells what happened.
        if rc is MQTTErrorCode.MQTT_ERR_SUCCESS or self._gone.is_set():
            self._gone.wait(timeout)
        self._client.loop_stop()
        return self._gone.is_set() and self._ended

    # -- state -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def connection(self) -> int:
        return self._connection

    @property
    def session_present(self) -> bool | None:
        """Whether the broker had a session for this client id at the first connection."""
        return self._session_present

    def ack(self, message: Received) -> bool:
        """Acknowledge ``message`` if its connection is the current one; whether it was sent."""
        if message.qos == 0:
            return True
        with self._lock:
            if not self._connected or message.connection != self._connection:
                return False
            return self._client.ack(message.mid, message.qos) is MQTTErrorCode.MQTT_ERR_SUCCESS

    # -- callbacks (paho's network thread) ---------------------------------------------------

    def _connected_cb(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Any,
    ) -> None:
        if reason.is_failure:
            log.error(
                "broker %s:%d refused the connection: %s",
                self.config.host, self.config.port, reason,
            )  # fmt: skip
            if reason.value in _FATAL_CONNACK and not self._first.is_set():
                self._refusal = str(reason)
                self._first.set()
            return
        with self._lock:
            self._connection += 1
            self._connected = True
            if self._session_present is None:
                self._session_present = bool(flags.session_present)
        filters = topic_filters(self.config.group, self.config.topic_prefix)
        if self._leave:
            client.unsubscribe(filters)
        else:
            client.subscribe([(f, 1) for f in filters])
        log.info(
            "connected to %s:%d (session %s), %s %s", self.config.host, self.config.port,
            "resumed" if flags.session_present else "new",
            "unsubscribing from" if self._leave else "subscribing to", filters,
        )  # fmt: skip
        self._on_connection(True)

    def _subscribed_cb(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[ReasonCode], _p: Any
    ) -> None:
        self._answered(reasons, "the subscriptions", "subscription")

    def _unsubscribed_cb(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[ReasonCode], _p: Any
    ) -> None:
        self._answered(reasons, "to unsubscribe", "unsubscribe")

    def _answered(self, reasons: list[ReasonCode], what: str, request: str) -> None:
        """The broker's answer to the group's (un)subscription: `start` returns once it came
        (with the refusal, if the broker refused any filter)."""
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("the broker refused %s: %s", what, ", ".join(refused))
            if not self._first.is_set():
                self._refusal = f"{request} refused: {', '.join(refused)}"
        self._first.set()

    def _disconnected_cb(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _p: Any,
    ) -> None:
        with self._lock:
            was = self._connected
            self._connected = False
        if self._stopping:  # our DISCONNECT went out, or the connection broke meanwhile
            self._ended = not reason.is_failure and not flags.is_disconnect_packet_from_server
            self._gone.set()
        if was and not self._stopping:
            log.warning("disconnected from the broker (%s); reconnecting", reason)
            self._on_connection(False)

    def _message_cb(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        client_id = None
        properties = getattr(msg, "properties", None)
        for key, value in getattr(properties, "UserProperty", None) or ():
            if key == "client_id":
                client_id = value
        self._deliver(
            Received(
                topic=msg.topic,
                payload=bytes(msg.payload),
                received_ms=self._clock_ms(),
                mid=msg.mid,
                qos=msg.qos,
                connection=self._connection,
                client_id=client_id,
            )
        )
