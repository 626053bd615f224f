"""One simulated vehicle's MQTT session: a paho client driven by the fleet's loop.

The client runs under paho's external-loop API (``socket``, ``loop_read``, ``loop_write``,
``loop_misc``, ``want_write``) as the edge agent's link does, but the select loop is the
fleet's (`simulators.fleet._runner`), shared by every vehicle. The callbacks here only record
what happened in the vehicle and the fleet's counters; the loop decides what to do next.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.mqtt import sender_properties

from ._config import FleetConfig
from ._playback import Playback

__all__ = ["Counters", "Vehicle"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Counters:
    """The fleet's running totals, written by the loop thread only."""

    connected: int = 0
    connects: int = 0
    reconnects: int = 0
    losses: int = 0
    connect_errors: int = 0
    published: int = 0
    acked: int = 0
    publish_failures: int = 0
    dropped: int = 0
    samples_published: int = 0
    samples_acked: int = 0
    payload_bytes: int = 0
    status_published: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards ``refusals``
    stopping: bool = False
    started: list[int] = field(default_factory=list)  # vehicles connected for the first time


class Vehicle:
    """A vehicle of the fleet: its client, its place in its drive and its batches in flight."""

    __slots__ = (
        "attempt",
        "client",
        "connected",
        "counters",
        "events",
        "ever_connected",
        "fd",
        "index",
        "inflight",
        "next_batch",
        "next_status",
        "origin_ms",
        "phase",
        "playback",
        "properties",
        "refused",
        "sent_batches",
        "sock",
        "status_topic",
        "telemetry_topic",
        "vehicle_id",
    )

    def __init__(
        self,
        index: int,
        config: FleetConfig,
        playback: Playback,
        phase: int,
        counters: Counters,
    ) -> None:
        self.index = index
        self.vehicle_id = vehicle_id = config.ids[index]
        self.playback = playback
        self.phase = phase
        self.counters = counters
        prefix = config.topic_prefix
        self.telemetry_topic = f"{prefix}/{vehicle_id}/telemetry"
        self.status_topic = f"{prefix}/{vehicle_id}/status"
        self.connected = self.refused = self.ever_connected = False
        self.attempt = 0
        self.sock: Any = None
        self.fd = -1
        self.events = 0
        self.inflight: dict[int, int] = {}  # mid -> samples of the batch
        self.next_batch: float | None = None  # monotonic time of the next batch, once started
        self.next_status = 0.0
        self.origin_ms = 0  # wall-clock ms at which the vehicle's first batch window starts
        self.sent_batches = 0
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"can2care-{vehicle_id}", protocol=mqtt.MQTTv5
        )
        client.max_inflight_messages_set(config.max_inflight)
        # status messages share the queue: leave them room beside the batches
        client.max_queued_messages_set(config.max_inflight + config.max_queued + 2)
        client.connect_timeout = config.connect_timeout_s
        client.username_pw_set(vehicle_id, config.password(index))
        client.will_set(self.status_topic, self.status_payload(False), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self.client = client
        self.properties = sender_properties(f"can2care-{vehicle_id}")

    def status_payload(self, online: bool) -> bytes:
        """The retained status document (docs/mqtt-topics.md)."""
        document: dict[str, Any] = {
            "state": "online" if online else "offline",
            "vehicle_id": self.vehicle_id,
            "time_ms": int(time.time() * 1000),
        }
        if online:
            document |= {
                "catalogue_id": self.playback.catalogue_id,
                "drive": self.playback.name,
                "batches": self.sent_batches,
                "outbox_records": len(self.inflight),
                "connected": True,
            }
        return json.dumps(document, separators=(",", ":")).encode("utf-8")

    def publish_status(self, online: bool) -> None:
        self.client.publish(self.status_topic, self.status_payload(online), qos=1, retain=True)
        self.counters.status_published += 1

    # -- paho callbacks (in the fleet's loop thread) --------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        counters = self.counters
        if reason.is_failure:
            self.refused = True
            with counters.lock:
                counters.refusals[f"{reason.value} {reason}"] += 1
            log.debug("vehicle %s refused: %s", self.vehicle_id, reason)
            client.disconnect()
            return
        self.refused = False
        self.connected = True
        self.attempt = 0
        counters.connected += 1
        counters.connects += 1
        if self.ever_connected:
            counters.reconnects += 1
        else:
            counters.started.append(self.index)
        self.ever_connected = True
        self.publish_status(True)

    def closed(self, reason: object = "the socket closed") -> None:
        """The connection is gone: count a loss unless the fleet is stopping."""
        if self.connected:
            self.connected = False
            self.counters.connected -= 1
            if not self.counters.stopping:
                self.counters.losses += 1
                log.debug("vehicle %s lost its connection: %s", self.vehicle_id, reason)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        self.closed(reason)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        samples = self.inflight.pop(mid, None)
        if samples is None:
            return  # a status message
        if reason.is_failure:
            self.counters.publish_failures += 1
            log.debug("vehicle %s: the broker refused a batch: %s", self.vehicle_id, reason)
            return
        self.counters.acked += 1
        self.counters.samples_acked += samples
