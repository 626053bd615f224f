"""The services the tests use are real: a broker that routes QoS 1 and a TimescaleDB."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from can2care.devservices import MqttEndpoint
from can2care.smoke import mqtt_round_trip, timescale_check


def test_mqtt_qos1_round_trip_through_private_broker(mqtt_broker: MqttEndpoint) -> None:
    trip = mqtt_round_trip(mqtt_broker.host, mqtt_broker.port)
    assert trip.qos == 1
    assert trip.topic.startswith("can2care/smoke/")
    assert len(trip.payload) == 16


def test_qos1_message_queued_for_offline_persistent_session(
    mqtt_broker: MqttEndpoint, mqtt_topic_root: str
) -> None:
    """A real broker keeps QoS 1 messages for a subscriber that is away (a mock would not)."""
    topic = f"{mqtt_topic_root}/queued"
    client_id = f"sub-{mqtt_topic_root[-12:]}"

    def subscriber() -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 300
        client.connect(mqtt_broker.host, mqtt_broker.port, clean_start=False, properties=props)
        return client

    first = subscriber()
    first.loop_start()
    first.subscribe(topic, qos=1)[1]
    first.disconnect()
    first.loop_stop()

    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect(mqtt_broker.host, mqtt_broker.port)
    publisher.loop_start()
    infos = [publisher.publish(topic, f"m{i}".encode(), qos=1) for i in range(5)]
    for info in infos:
        info.wait_for_publish(10)
    publisher.disconnect()
    publisher.loop_stop()

    got: list[bytes] = []
    done = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        got.append(bytes(message.payload))
        if len(got) == 5:
            done.set()

    second = subscriber()
    second.on_message = on_message
    second.loop_start()
    try:
        assert done.wait(10), f"only {got} arrived"
    finally:
        second.disconnect()
        second.loop_stop()
    assert got == [f"m{i}".encode() for i in range(5)]


def test_hypertable_and_time_bucket_on_private_timescaledb(
    db_conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    version = db_conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    assert version is not None
    db_conn.execute("CREATE TABLE readings (time timestamptz NOT NULL, vehicle text, v float8)")
    db_conn.execute(
        "SELECT create_hypertable('readings', 'time', chunk_time_interval => interval '1 hour')"
    )
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with db_conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings VALUES (%s, %s, %s)",
            [(start + timedelta(minutes=10 * i), "VIN1", float(i)) for i in range(18)],
        )
    rows = db_conn.execute(
        "SELECT time_bucket('1 hour', time) AS b, count(*), sum(v) FROM readings "
        "GROUP BY b ORDER BY b"
    ).fetchall()
    assert rows == [
        (start, 6, 15.0),
        (start + timedelta(hours=1), 6, 51.0),
        (start + timedelta(hours=2), 6, 87.0),
    ]
    chunks = db_conn.execute(
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'"
    ).fetchone()
    assert chunks == (3,)


def test_timescale_check_reports_buckets(db_url: str) -> None:
    buckets = timescale_check(db_url)
    assert [b.samples for b in buckets] == [15, 15, 15, 15]
    assert [b.mean for b in buckets] == [7.0, 22.0, 37.0, 52.0]


def test_each_test_gets_its_own_database(
    db_url: str, db_conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    tables = db_conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'readings'"
    ).fetchone()
    assert tables == (0,)
    assert db_url.rsplit("/", 1)[1].startswith("test_")
