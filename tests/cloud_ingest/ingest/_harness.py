"""What the ingest tests share: payloads, a QoS 1 publisher, a configured service, queries."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from cloud_ingest.ingest import IngestConfig, IngestService, load_ingest_config
from cloud_ingest.storage import Vehicle, migrate, register_vehicles
from dbc import demo_catalogue
from edge_agent.mqtt import sender_properties
from edge_agent.wire import Series, TelemetryBatch, WireSchema, encode_telemetry
from tests.edge_agent._drive import wait_until

__all__ = [
    "Publisher",
    "batch_payload",
    "count",
    "ingest_config",
    "prepare_database",
    "running_service",
    "schema",
    "topic_prefix",
    "wait_until",
]

NOW_MS = time.time_ns() // 1_000_000 - 3_600_000  # an hour ago: plausible, never "future"
SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"

_schema: WireSchema | None = None


def schema() -> WireSchema:
    global _schema
    if _schema is None:
        _schema = WireSchema.from_catalogue(demo_catalogue())
    return _schema


def topic_prefix() -> str:
    """A topic prefix of this test's own on the shared broker."""
    return f"t{uuid.uuid4().hex[:12]}"


def batch_payload(sequence: int, *, samples: int = 50, start_ms: int | None = None) -> bytes:
    """A telemetry payload of the demo catalogue: speed at 10 Hz, ``samples`` samples."""
    s = schema()
    start = NOW_MS + sequence * samples * 100 if start_ms is None else start_ms
    times = start + np.arange(samples, dtype=np.int64) * 100
    raw = (1000 + (np.arange(samples) * 7 + sequence) % 5000).astype(np.int64)
    series = (Series(s.spec(SPEED).number, times, raw),)
    return encode_telemetry(TelemetryBatch(s.catalogue_id, sequence, series), s)


def prepare_database(url: str, vehicles: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        register_vehicles(conn, [Vehicle(v, catalogues=(schema().catalogue_id,)) for v in vehicles])


def ingest_config(db_url: str, port: int, prefix: str, **overrides: Any) -> IngestConfig:
    values: dict[str, Any] = {
        "database.url": db_url,
        "mqtt.host": "127.0.0.1",
        "mqtt.port": port,
        "mqtt.username": None,
        "mqtt.topic_prefix": prefix,
        "mqtt.group": f"g{prefix}",
        "mqtt.client_id": f"ingest-{prefix}",
        "http.port": 0,
        "batching.max_latency_ms": 50,
        "retry.min_s": 0.1,
        "retry.max_s": 1.0,
    }
    values.update(overrides)
    return load_ingest_config(None, env={}, overrides=values)


@contextlib.contextmanager
def running_service(config: IngestConfig) -> Iterator[IngestService]:
    service = IngestService(config)
    service.start(timeout=30)
    try:
        yield service
    finally:
        service.stop(timeout=30)


class Publisher:
    """A QoS 1 publisher that waits for each PUBACK and keeps its reason code."""

    def __init__(
        self, port: int, *, client_id: str | None = None, username: str | None = None,
        password: str | None = None, max_inflight: int = 20,
    ) -> None:  # fmt: skip
        self.client_id = client_id or f"pub-{uuid.uuid4().hex[:8]}"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
        )
        self.properties = sender_properties(self.client_id)  # as the edge agent sends them
        if username is not None:
            self.client.username_pw_set(username, password)
        self.acks: dict[int, int] = {}
        self._acked = threading.Condition()
        self.client.on_publish = self._on_publish
        self.client.max_inflight_messages_set(max_inflight)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self._acked:
            self.acks[mid] = int(getattr(reason, "value", 0))
            self._acked.notify_all()

    def publish(self, topic: str, payload: bytes, *, wait: bool = True) -> int:
        """Publish at QoS 1; the PUBACK's reason code (0: accepted) when waiting."""
        info = self.client.publish(topic, payload, qos=1, properties=self.properties)
        if not wait:
            return 0
        with self._acked:
            assert self._acked.wait_for(lambda: info.mid in self.acks, 30), "no PUBACK"
            return self.acks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def count(url: str, sql: str, *params: object) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])
