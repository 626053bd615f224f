"""Retiring an ingest process for good (`IngestService.retire`, ``can2care ingest --retire``).

Mosquitto keeps an offline member's persistent session in the group's rotation and queues its
share; retiring stores that share once, takes the member out of the group and ends its session.
"""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from can2care.cli import main
from can2care.devservices import MqttEndpoint
from can2care.devservices._proc import free_port
from cloud_ingest.ingest import IngestConfig, IngestRetireError, IngestService, IngestStartError

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

SAMPLES = 50
BATCHES = "SELECT count(*) FROM telemetry_batch"


def _member(db_url: str, port: int, prefix: str, name: str) -> IngestConfig:
    return ingest_config(db_url, port, prefix, **{"mqtt.client_id": f"{prefix}-{name}"})


def _joined_and_stopped(config: IngestConfig) -> None:
    """The member joins the group with its persistent session, then its process stops."""
    with running_service(config):
        pass


def _publish(port: int, prefix: str, vehicles: list[str], sequences: range) -> int:
    publisher = Publisher(port)
    for sequence in sequences:
        for vehicle in vehicles:
            assert publisher.publish(f"{prefix}/{vehicle}/telemetry", batch_payload(sequence)) == 0
    publisher.close()
    return len(sequences) * len(vehicles)


def _session_present(port: int, client_id: str) -> bool:
    """Whether the broker has a session for ``client_id`` (the probe leaves none behind)."""
    present: list[bool] = []
    answered = threading.Event()

    def on_connect(_c: Any, _u: Any, flags: mqtt.ConnectFlags, _r: Any, _p: Any) -> None:
        present.append(bool(flags.session_present))
        answered.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_connect = on_connect
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 0
    client.connect("127.0.0.1", port, clean_start=False, properties=properties)
    client.loop_start()
    try:
        assert answered.wait(10), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return present[0]


def test_a_retired_member_stores_its_queued_share_once_and_leaves_the_group(
    db_url: str, mqtt_broker: MqttEndpoint
) -> None:
    port, prefix = mqtt_broker.port, topic_prefix()
    vehicles = ["veh-1", "veh-2"]
    prepare_database(db_url, vehicles)
    a, b = (_member(db_url, port, prefix, name) for name in ("a", "b"))
    with running_service(a):
        _joined_and_stopped(b)
        sent = _publish(port, prefix, vehicles, range(20))
        # A stores its half; the broker queues B's half in B's session.
        assert wait_until(lambda: count(db_url, BATCHES) >= sent // 2)
        assert not wait_until(lambda: count(db_url, BATCHES) > sent // 2, 2)
        stored_by_a = count(db_url, BATCHES)

        retired = IngestService(b).retire(quiet_s=1.0)

        assert retired.session_found and retired.client_id == b.mqtt.client_id
        assert retired.messages == sent - stored_by_a
        assert count(db_url, BATCHES) == sent
        # B is out of the group: A alone gets every new message.
        sent += _publish(port, prefix, vehicles, range(20, 25))
        assert wait_until(lambda: count(db_url, BATCHES) == sent)
    assert not _session_present(port, b.mqtt.client_id)
    assert count(db_url, "SELECT sum(n) FROM telemetry_series") == sent * SAMPLES
    assert count(db_url, "SELECT count(*) FROM dead_letter") == 0
    with psycopg.connect(db_url) as conn:
        per_vehicle = conn.execute("SELECT vehicle_id, count(*) FROM telemetry_batch GROUP BY 1")
        assert dict(per_vehicle.fetchall()) == dict.fromkeys(vehicles, sent // 2)


def test_a_retire_that_cannot_store_keeps_the_session_and_acknowledges_nothing(
    db_url: str, mqtt_broker: MqttEndpoint
) -> None:
    port, prefix = mqtt_broker.port, topic_prefix()
    prepare_database(db_url, ["veh-1"])
    b = _member(db_url, port, prefix, "b")
    _joined_and_stopped(b)
    sent = _publish(port, prefix, ["veh-1"], range(6))  # all of it queued for B, the only member

    # The database cannot be reached: nothing happens to the session.
    unreachable = f"postgresql://127.0.0.1:{free_port()}/nowhere"
    with pytest.raises(IngestStartError, match="database unavailable"):
        IngestService(_member(unreachable, port, prefix, "b")).retire(quiet_s=0.5, timeout=1)

    # The database stops taking rows while B drains: nothing is acknowledged, the session stays.
    with psycopg.connect(db_url) as blocker:
        blocker.execute("LOCK TABLE telemetry_batch IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(IngestRetireError, match=r"session of .* is kept"):
            IngestService(b).retire(quiet_s=0.5, timeout=3)
    # (leaving the block releases the lock; the abandoned writer's late commit is not acknowledged)

    retired = IngestService(b).retire(quiet_s=1.0)
    assert retired.session_found and retired.messages == sent
    assert count(db_url, BATCHES) == sent
    assert count(db_url, "SELECT sum(n) FROM telemetry_series") == sent * SAMPLES
    assert not _session_present(port, b.mqtt.client_id)


# -- can2care ingest --retire --------------------------------------------------------------


def _cli(db_url: str, port: int, prefix: str, client_id: str, *more: str) -> int:
    broker = f"127.0.0.1:{port}"
    return main(["ingest", "--retire", "--database", db_url, "--broker", broker,
                 "--group", f"g{prefix}", "--client-id", client_id, "--http-port", "0",
                 *more])  # fmt: skip


def test_cli_retire_prints_what_it_stored(
    db_url: str, mqtt_broker: MqttEndpoint, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    port, prefix = mqtt_broker.port, topic_prefix()
    monkeypatch.setenv("CAN2CARE_INGEST__MQTT__TOPIC_PREFIX", prefix)
    prepare_database(db_url, ["veh-1"])
    b = _member(db_url, port, prefix, "b")
    _joined_and_stopped(b)
    sent = _publish(port, prefix, ["veh-1"], range(4))
    assert _cli(db_url, port, prefix, b.mqtt.client_id, "--quiet-s", "0.5") == 0
    line = f"retired {b.mqtt.client_id}: {sent} messages stored, session ended"
    assert capsys.readouterr().out == f"can2care ingest: {line}\n"
    assert count(db_url, BATCHES) == sent
    # Again: there is nothing left to retire.
    assert _cli(db_url, port, prefix, b.mqtt.client_id, "--quiet-s", "0.5") == 0
    assert "0 messages stored, the broker had no session for it" in capsys.readouterr().out


def test_cli_retire_with_a_wrong_broker_exits_1_with_one_line(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # nothing listens there
    assert _cli(db_url, port, "v1", "ingest-gone") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"can2care: error: cannot connect to 127.0.0.1:{port}:")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--retire", "--check"], "--retire and --check exclude each other"),
        (["--quiet-s", "3"], "--quiet-s goes with --retire"),
        (["--retire", "--quiet-s", "0"], "--quiet-s 0 is not a positive number of seconds"),
    ],
)
def test_cli_retire_refuses_conflicting_options(
    options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", "--database", "postgresql://db/x", *options]) == 1
    assert capsys.readouterr().err == f"can2care: error: {message}\n"
