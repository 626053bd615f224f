"""The retained statuses the demo's earlier fleets left on the broker, cleared.

Every demo vehicle leaves its status retained on the broker (``v1/<vehicle_id>/status``,
docs/mqtt-topics.md), ``offline`` when it stops, as an edge agent does. Each run makes a new
database, so a status an earlier fleet left would reach the new run's ingest service as soon
as it subscribes, and be counted as a dead letter of this run (``unknown_vehicle``), or
stored as this run's when the fleets share vehicle ids. `clear_demo_statuses` runs before the
ingest service subscribes: it reads the retained statuses and clears those of demo vehicles
(ids starting with `simulators.demo_fleet.VIN_PREFIX`) with an empty retained message. Other
vehicles' statuses (an edge agent's on the private broker) are left alone, and reach the
ingest service as any message does.

The statuses are cleared when a run starts rather than when it ends: a run that was killed
cannot clear its own, and an empty message sent at the end would reach the ingest service
(or wait in its persistent session for the next run) as a dead letter of its own.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulators.demo_fleet import VIN_PREFIX

__all__ = ["clear_demo_statuses"]

PREFIX = "v1"  # the demo's topic prefix (its agents' and `._publish`'s)


def clear_demo_statuses(host: str, port: int, *, timeout: float = 30.0) -> int:
    """Clear every retained demo vehicle's status on the broker; the number cleared.
    `TimeoutError` or `OSError` when the broker does not answer."""
    deadline = time.monotonic() + timeout
    marker = f"can2care-demo/sweep/{uuid.uuid4().hex}"
    topics: list[str] = []
    subscribed, swept = threading.Event(), threading.Event()

    def on_subscribe(client: Any, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        subscribed.set()

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        if message.topic == marker:
            swept.set()  # the broker sends in order: every retained status came before
        elif message.retain and _is_demo_status(message.topic) and message.payload:
            topics.append(message.topic)

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"can2care-demo-sweep-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )  # fmt: skip
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        client.subscribe([(f"{PREFIX}/+/status", 1), (marker, 1)])
        _wait(subscribed, deadline, "the broker did not acknowledge the subscription")
        client.publish(marker, b"", qos=1)
        _wait(swept, deadline, "the broker did not send the retained statuses")
        client.unsubscribe([f"{PREFIX}/+/status", marker])
        sent = [client.publish(topic, b"", qos=1, retain=True) for topic in topics]
        for info in sent:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                raise TimeoutError("the broker did not acknowledge the cleared statuses")
    finally:
        client.disconnect()
        client.loop_stop()
    return len(topics)


def _is_demo_status(topic: str) -> bool:
    prefix, _, rest = topic.partition("/")
    vehicle_id, _, kind = rest.partition("/")
    return prefix == PREFIX and kind == "status" and vehicle_id.startswith(VIN_PREFIX)


def _wait(event: threading.Event, deadline: float, message: str) -> None:
    if not event.wait(max(0.0, deadline - time.monotonic())):
        raise TimeoutError(message)
