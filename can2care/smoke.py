"""Prove that a broker and a database are real and usable.

Two checks, used by ``can2care smoke`` and by the test suite's service tests:

* an MQTT 5 QoS 1 publish/subscribe round trip (PUBACK received, message delivered);
* a TimescaleDB hypertable: ``create_hypertable``, rows in, a ``time_bucket`` query out.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class RoundTrip:
    topic: str
    payload: bytes
    qos: int
    seconds: float


@dataclass(frozen=True, slots=True)
class BucketRow:
    bucket: datetime
    samples: int
    mean: float


class SmokeError(Exception):
    """A smoke check failed; the message says which and why."""


def mqtt_round_trip(host: str, port: int, *, timeout: float = 10.0) -> RoundTrip:
    """Publish one QoS 1 message to a fresh topic and receive it back on a subscription."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    topic = f"can2care/smoke/{uuid.uuid4().hex}"
    payload = uuid.uuid4().bytes
    subscribed = threading.Event()
    received: list[mqtt.MQTTMessage] = []
    arrived = threading.Event()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"can2care-smoke-{topic[-8:]}", protocol=mqtt.MQTTv5
    )

    def on_subscribe(*_: object) -> None:
        subscribed.set()

    def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        received.append(message)
        arrived.set()

    client.on_subscribe = on_subscribe
    client.on_message = on_message
    start = time.monotonic()
    try:
        client.connect(host, port, keepalive=10)
    except OSError as exc:
        raise SmokeError(f"cannot connect to the MQTT broker at {host}:{port}: {exc}") from exc
    client.loop_start()
    try:
        client.subscribe(topic, qos=1)
        if not subscribed.wait(timeout):
            raise SmokeError(f"no SUBACK from {host}:{port} within {timeout} s")
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise SmokeError(f"no PUBACK from {host}:{port} within {timeout} s")
        if not arrived.wait(timeout):
            raise SmokeError(f"the message on {topic} did not come back within {timeout} s")
    finally:
        client.disconnect()
        client.loop_stop()
    message = received[0]
    if message.payload != payload:
        raise SmokeError("the message came back with a different payload")
    return RoundTrip(message.topic, bytes(message.payload), message.qos, time.monotonic() - start)


def timescale_check(conninfo: str) -> list[BucketRow]:
    """Create a hypertable, insert an hour of minute rows, and read them in 15-minute buckets."""
    import psycopg

    table = f"smoke_{uuid.uuid4().hex[:12]}"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [(start + timedelta(minutes=i), float(i)) for i in range(60)]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (time timestamptz NOT NULL, value double precision)")
        try:
            conn.execute(
                "SELECT create_hypertable(%s, 'time', chunk_time_interval => interval '1 day')",
                (table,),
            )
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", rows)
                cur.execute(
                    f"SELECT time_bucket('15 minutes', time) AS bucket, count(*), avg(value) "
                    f"FROM {table} GROUP BY bucket ORDER BY bucket"
                )
                result = [BucketRow(b, int(n), float(m)) for b, n, m in cur.fetchall()]
        finally:
            conn.execute(f"DROP TABLE {table}")
    return result
