"""The ingest service against the private Mosquitto and TimescaleDB."""

from __future__ import annotations

import json
import urllib.request

from can2care.devservices import MqttEndpoint
from edge_agent.wire import encode_event
from tests.cloud_ingest.storage._samples import crash

from ._harness import (
    Publisher,
    batch_payload,
    count,
    ingest_config,
    prepare_database,
    running_service,
    topic_prefix,
    wait_until,
)


def test_telemetry_events_and_status_are_stored(db_url: str, mqtt_broker: MqttEndpoint) -> None:
    prefix = topic_prefix()
    prepare_database(db_url, ["veh-1", "veh-2"])
    config = ingest_config(db_url, mqtt_broker.port, prefix)
    publisher = Publisher(mqtt_broker.port)
    with running_service(config):
        for sequence in range(10):
            for vehicle in ("veh-1", "veh-2"):
                publisher.publish(f"{prefix}/{vehicle}/telemetry", batch_payload(sequence))
        event = crash("veh-1", sequence=3)
        publisher.publish(f"{prefix}/veh-1/events", encode_event(event))
        status = {"state": "online", "vehicle_id": "veh-2", "time_ms": event.time_ms}
        publisher.publish(f"{prefix}/veh-2/status", json.dumps(status).encode())
        assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry_batch") == 20)
        assert wait_until(lambda: count(db_url, "SELECT count(*) FROM event") == 1)
        assert wait_until(lambda: count(db_url, "SELECT count(*) FROM vehicle_status") == 1)
    publisher.close()
    assert count(db_url, "SELECT sum(n) FROM telemetry_series") == 20 * 50
    assert count(db_url, "SELECT count(*) FROM dead_letter") == 0
    assert count(db_url, "SELECT count(*) FROM latest_state") == 2


def test_a_batch_published_three_times_is_stored_once(
    db_url: str, mqtt_broker: MqttEndpoint
) -> None:
    prefix = topic_prefix()
    prepare_database(db_url, ["veh-1"])
    publisher = Publisher(mqtt_broker.port)
    with running_service(ingest_config(db_url, mqtt_broker.port, prefix)) as service:
        payload = batch_payload(7)
        for _ in range(3):
            publisher.publish(f"{prefix}/veh-1/telemetry", payload)
        publisher.publish(f"{prefix}/veh-1/telemetry", batch_payload(8))
        assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry_batch") == 2)
        duplicates = service.metrics.messages.labels("telemetry", "duplicate")
        assert wait_until(lambda: duplicates._value.get() == 2)
    publisher.close()
    assert count(db_url, "SELECT sum(n) FROM telemetry_series") == 2 * 50
    assert count(db_url, "SELECT count(*) FROM telemetry_series WHERE sequence = 7") == 1


def test_bad_messages_become_dead_letters_and_the_rest_is_stored(
    db_url: str, mqtt_broker: MqttEndpoint
) -> None:
    prefix = topic_prefix()
    prepare_database(db_url, ["veh-1", "veh-2"])
    publisher = Publisher(mqtt_broker.port, client_id="can2care-veh-1")
    bad = {
        f"{prefix}/veh-1/telemetry": b"\x01\x01garbage",  # malformed
        f"{prefix}/veh-9/telemetry": batch_payload(1),  # unknown vehicle
        f"{prefix}/veh-2/events": encode_event(crash("veh-1")),  # names another vehicle
        f"{prefix}/veh-2/status": batch_payload(2),  # not a status document
    }
    with running_service(ingest_config(db_url, mqtt_broker.port, prefix)) as service:
        publisher.publish(f"{prefix}/veh-1/telemetry", batch_payload(0))
        for topic, payload in bad.items():
            publisher.publish(topic, payload)
        publisher.publish(f"{prefix}/veh-1/telemetry", batch_payload(1))
        publisher.publish(f"{prefix}/veh-1/telemetry", b"\x09" + batch_payload(2)[1:])
        assert wait_until(lambda: count(db_url, "SELECT count(*) FROM dead_letter") == 5)
        assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry_batch") == 2)
        health = service.health()
    publisher.close()
    with __import__("psycopg").connect(db_url) as conn:
        rows = conn.execute(
            "SELECT topic, reason, detail, payload, client_id FROM dead_letter ORDER BY id"
        ).fetchall()
    reasons = {topic: reason for topic, reason, _d, _p, _c in rows[:4]}
    assert reasons == {
        f"{prefix}/veh-1/telemetry": "malformed",
        f"{prefix}/veh-9/telemetry": "unknown_vehicle",
        f"{prefix}/veh-2/events": "topic_mismatch",
        f"{prefix}/veh-2/status": "malformed",
    }
    assert rows[4][1] == "unsupported_version"
    assert [bytes(r[3]) for r in rows[:4]] == list(bad.values())  # the bytes as received
    assert all(r[2] for r in rows)  # each says what is wrong
    assert {r[4] for r in rows} == {"can2care-veh-1"}  # and who sent it
    assert health["healthy"] and health["pending_messages"] == 0


def test_metrics_and_health_over_http(db_url: str, mqtt_broker: MqttEndpoint) -> None:
    from can2care.devservices._proc import free_port

    prefix = topic_prefix()
    prepare_database(db_url, ["veh-1"])
    port = free_port()
    config = ingest_config(db_url, mqtt_broker.port, prefix, **{"http.port": port})
    publisher = Publisher(mqtt_broker.port)
    with running_service(config):
        publisher.publish(f"{prefix}/veh-1/telemetry", batch_payload(0))
        assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry_batch") == 1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as response:
            health = json.load(response)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
            metrics = response.read().decode()
    publisher.close()
    assert health["healthy"] is True and health["mqtt_connected"] is True
    assert 'can2care_ingest_messages_total{kind="telemetry",outcome="stored"} 1.0' in metrics
    assert "can2care_ingest_samples_total 50.0" in metrics
    assert "can2care_ingest_commit_seconds_count" in metrics
