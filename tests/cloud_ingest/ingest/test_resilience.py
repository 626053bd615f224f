"""The ingest service when things go wrong: broker ACLs, a database outage, a killed process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from can2care.devservices import MqttEndpoint, Postgres
from can2care.devservices._proc import free_port
from cloud_ingest.provisioning import VehicleCredential, new_password, write_broker_files
from edge_agent.wire import encode_event
from tests.cloud_ingest.storage._samples import crash
from tests.fixtures.fix_dirs import make_service_dir
from tests.fixtures.fix_mqtt import OwnBroker, configured_broker

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

NOT_AUTHORIZED = 135
SAMPLES = 50
# The outage the acceptance names; CAN2CARE_TEST_OUTAGE_S shortens it on a developer's machine.
OUTAGE_S = float(os.environ.get("CAN2CARE_TEST_OUTAGE_S", "120"))


class Load(threading.Thread):
    """Publishes numbered batches of ``vehicles`` round-robin at ``rate`` messages per second."""

    def __init__(self, port: int, prefix: str, vehicles: list[str], rate: float) -> None:
        super().__init__(daemon=True)
        self.publisher = Publisher(port, max_inflight=200)
        self.prefix, self.vehicles, self.rate = prefix, vehicles, rate
        self.sent = 0
        self.stop = threading.Event()

    def run(self) -> None:
        sequence = 0
        started = time.monotonic()
        while not self.stop.is_set():
            for vehicle in self.vehicles:
                self.publisher.publish(
                    f"{self.prefix}/{vehicle}/telemetry", batch_payload(sequence), wait=False
                )
                self.sent += 1
            sequence += 1
            delay = started + self.sent / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def finish(self) -> int:
        """Stop publishing, wait for every PUBACK, and return how many were sent."""
        self.stop.set()
        self.join()
        assert wait_until(lambda: len(self.publisher.acks) == self.sent, 60)
        self.publisher.close()
        return self.sent


def test_the_broker_and_the_ingestor_each_refuse_another_vehicles_data(
    db_url: str, tmp_path: Path
) -> None:
    root = make_service_dir("can2care-ingest-acl-")
    try:
        creds = [VehicleCredential(v, new_password()) for v in ("car-a", "car-b")]
        ingest_password = new_password()
        password_file, acl_file = write_broker_files(root, creds, ingest_password=ingest_password)
        port = free_port()
        settings = ["allow_anonymous false", f"password_file {password_file}",
                    f"acl_file {acl_file}"]  # fmt: skip
        prepare_database(db_url, ["car-a", "car-b"])
        config = ingest_config(
            db_url, port, "v1",
            **{"mqtt.username": "can2care-ingest", "mqtt.password": ingest_password},
        )  # fmt: skip
        with configured_broker(root, port, settings), running_service(config) as service:
            car_a = Publisher(port, client_id="can2care-car-a", username="car-a",
                              password=creds[0].password)  # fmt: skip
            assert car_a.publish("v1/car-a/telemetry", batch_payload(1)) == 0
            # The broker refuses a publish under another vehicle's topic (MQTT 5 PUBACK 135).
            assert car_a.publish("v1/car-b/telemetry", batch_payload(2)) == NOT_AUTHORIZED
            # Under its own topic, a crash naming car-b is the ingestor's to refuse.
            assert car_a.publish("v1/car-a/events", encode_event(crash("car-b"))) == 0
            assert wait_until(lambda: count(db_url, "SELECT count(*) FROM dead_letter") == 1)
            assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry_batch") == 1)
            car_a.close()
            assert service.health()["healthy"]
        with psycopg.connect(db_url) as conn:
            assert conn.execute("SELECT vehicle_id FROM telemetry_batch").fetchall() == [("car-a",)]
            reason, topic = conn.execute("SELECT reason, topic FROM dead_letter").fetchone() or ()
        assert (reason, topic) == ("topic_mismatch", "v1/car-a/events")
        assert count(db_url, "SELECT count(*) FROM event") == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def own_database() -> Iterator[tuple[Postgres, int, str]]:
    """A TimescaleDB of the test's own, which the test may stop and start."""
    root = make_service_dir("can2care-ingest-pg-")
    cluster = Postgres(root, durable=False)
    port = free_port()
    try:
        endpoint = cluster.start(port)
        with psycopg.connect(endpoint.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE fleet")
        with psycopg.connect(endpoint.dsn("fleet"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION timescaledb")
        yield cluster, port, endpoint.dsn("fleet")
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_a_database_outage_under_load_loses_and_repeats_nothing(
    own_database: tuple[Postgres, int, str], mqtt_broker: MqttEndpoint
) -> None:
    cluster, pg_port, url = own_database
    prefix = topic_prefix()
    vehicles = [f"veh-{i}" for i in range(4)]
    prepare_database(url, vehicles)
    receive_maximum = 100
    config = ingest_config(
        url, mqtt_broker.port, prefix,
        **{"mqtt.receive_maximum": receive_maximum, "retry.max_s": 2.0},
    )  # fmt: skip
    with running_service(config) as service:
        load = Load(mqtt_broker.port, prefix, vehicles, rate=40)
        load.start()
        time.sleep(3)
        cluster.stop()
        pending_seen = []
        deadline = time.monotonic() + OUTAGE_S
        while time.monotonic() < deadline:
            health = service.health()
            pending_seen.append(health["pending_messages"])
            time.sleep(0.5)
        assert not health["healthy"] and not health["database_ok"]
        cluster.start(pg_port)
        time.sleep(3)
        sent = load.finish()

        def stored() -> int:
            return count(url, "SELECT count(*) FROM telemetry_batch")

        assert wait_until(lambda: stored() == sent, 120), (stored(), sent)
        assert wait_until(lambda: service.health()["pending_messages"] == 0, 30)
        assert service.health()["healthy"]
    # memory stayed bounded: never more unacknowledged messages than the receive maximum
    assert max(pending_seen) <= receive_maximum
    assert sent >= 40 * (OUTAGE_S + 6) * 0.8
    assert count(url, "SELECT sum(n) FROM telemetry_series") == sent * SAMPLES
    assert count(url, "SELECT count(*) FROM dead_letter") == 0


def _ingest_process(
    db_url: str, port: int, prefix: str, name: str, log: Path
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CAN2CARE_INGEST__MQTT__TOPIC_PREFIX": prefix,
           "CAN2CARE_INGEST__BATCHING__MAX_LATENCY_MS": "50"}  # fmt: skip
    with log.open("ab") as stderr:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "can2care", "ingest", "--database", db_url,
             "--broker", f"127.0.0.1:{port}", "--group", f"g{prefix}",
             "--client-id", f"{prefix}-{name}", "--http-port", "0"],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip


def test_one_of_two_ingest_processes_killed_under_load_loses_and_repeats_nothing(
    db_url: str, mqtt_broker: MqttEndpoint, tmp_path: Path
) -> None:
    prefix = topic_prefix()
    vehicles = [f"veh-{i}" for i in range(6)]
    prepare_database(db_url, vehicles)
    first = _ingest_process(db_url, mqtt_broker.port, prefix, "a", tmp_path / "a.log")
    second = _ingest_process(db_url, mqtt_broker.port, prefix, "b", tmp_path / "b.log")
    processes = [first, second]
    try:
        time.sleep(4)  # both subscribed (start-up migrates and connects)
        load = Load(mqtt_broker.port, prefix, vehicles, rate=120)
        load.start()
        time.sleep(4)
        first.send_signal(signal.SIGKILL)
        first.wait()
        time.sleep(3)  # the broker queues the dead member's share in its session
        restarted = _ingest_process(db_url, mqtt_broker.port, prefix, "a", tmp_path / "a.log")
        processes.append(restarted)
        time.sleep(3)
        sent = load.finish()

        def stored() -> int:
            return count(db_url, "SELECT count(*) FROM telemetry_batch")

        logs = "".join(p.read_text() for p in sorted(tmp_path.glob("*.log")))
        assert wait_until(lambda: stored() == sent, 60), (stored(), sent, logs)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    assert second.returncode == 0 and restarted.returncode == 0
    assert count(db_url, "SELECT sum(n) FROM telemetry_series") == sent * SAMPLES
    with psycopg.connect(db_url) as conn:
        per_vehicle: dict[str, int] = dict(
            conn.execute("SELECT vehicle_id, count(*) FROM telemetry_batch GROUP BY 1").fetchall()
        )
    assert sum(per_vehicle.values()) == sent and len(per_vehicle) == len(vehicles)


def test_the_service_reconnects_after_a_broker_restart_and_resumes(
    db_url: str, own_broker: OwnBroker
) -> None:
    prefix = topic_prefix()
    prepare_database(db_url, ["veh-1"])
    config = ingest_config(db_url, own_broker.port, prefix)
    with running_service(config) as service:
        publisher = Publisher(own_broker.port)
        for sequence in range(5):
            publisher.publish(f"{prefix}/veh-1/telemetry", batch_payload(sequence))
        publisher.close()
        assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry_batch") == 5)
        own_broker.stop()
        assert wait_until(lambda: not service.health()["mqtt_connected"], 30)
        own_broker.start()
        assert wait_until(lambda: service.health()["mqtt_connected"], 60)
        publisher = Publisher(own_broker.port)
        for sequence in range(5, 10):
            publisher.publish(f"{prefix}/veh-1/telemetry", batch_payload(sequence))
        publisher.close()
        assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry_batch") == 10)
        assert service.metrics.mqtt_connects._value.get() == 2
        assert service.health()["healthy"]
