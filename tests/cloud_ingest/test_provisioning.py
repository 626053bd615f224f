"""Broker credentials and ACL against mosquitto_passwd and a real Mosquitto: a vehicle publishes
under its own topics only, the ingest user reads them (also through a shared subscription),
and a wrong password is refused at CONNECT."""

from __future__ import annotations

import base64
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from can2care.devservices import _proc
from can2care.devservices._proc import free_port
from cloud_ingest.provisioning import (
    VehicleCredential,
    acl_text,
    mosquitto_password_line,
    new_password,
    verify_password_line,
    write_broker_files,
)
from tests.fixtures.fix_dirs import make_service_dir
from tests.fixtures.fix_mqtt import configured_broker

INGEST = "can2care-ingest"
NOT_AUTHORIZED = 135


def test_a_line_from_mosquitto_passwd_verifies_and_is_reproduced(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(path), "car-a", "s3cret"],
        check=True,
        capture_output=True,
    )
    line = path.read_text().strip()
    assert verify_password_line(line, "s3cret")
    assert not verify_password_line(line, "s3cret ")
    _user, _empty, _kind, iterations, salt, _hash = line.replace(":", "$", 1).split("$")
    ours = mosquitto_password_line(
        "car-a", "s3cret", salt=base64.b64decode(salt), iterations=int(iterations)
    )
    assert ours == line


def test_our_lines_use_a_fresh_salt_and_verify() -> None:
    first = mosquitto_password_line("car-a", "pw")
    second = mosquitto_password_line("car-a", "pw")
    assert first != second
    assert first.startswith("car-a:$7$101$")
    assert verify_password_line(first, "pw")
    assert not verify_password_line(first, "PW")


@pytest.mark.parametrize("line", ["car", "car:$6$abc$def", "car:$7$x$AAAA$AAAA", "car:$7$1$@@$AA"])
def test_a_malformed_password_line_is_a_value_error(line: str) -> None:
    with pytest.raises(ValueError, match="password line"):
        verify_password_line(line, "pw")


def test_the_acl_grants_each_vehicle_its_own_topics_only() -> None:
    assert acl_text(["car-a"]) == (
        "# Written by can2care provisioning; rewritten whenever the fleet changes.\n"
        "# Vehicles may publish only under their own v1/<vehicle_id>/.\n"
        "\n"
        "user can2care-ingest\n"
        "topic read v1/+/telemetry\n"
        "topic read v1/+/events\n"
        "topic read v1/+/status\n"
        "\n"
        "user car-a\n"
        "topic write v1/car-a/telemetry\n"
        "topic write v1/car-a/events\n"
        "topic write v1/car-a/status\n"
    )
    assert "topic write fleet/v2/car-a/events" in acl_text(["car-a"], prefix="fleet/v2")


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "a b", "x" * 65, "caf\u00e9", "a\nuser b"])
def test_a_bad_vehicle_id_raises_naming_it(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vehicle id") as info:
        acl_text(["ok", bad])
    assert repr(bad) in str(info.value)
    with pytest.raises(ValueError, match="vehicle id"):
        write_broker_files(tmp_path, [VehicleCredential(bad, "pw")], ingest_password="pw")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ids", [["car-a", "car-a"], ["car-a", INGEST]])
def test_duplicates_and_the_ingest_user_are_refused(ids: list[str]) -> None:
    with pytest.raises(ValueError, match=r"'car-a'|'can2care-ingest'"):
        acl_text(ids)


def test_a_bad_prefix_or_user_name_raises() -> None:
    with pytest.raises(ValueError, match="prefix"):
        acl_text(["car-a"], prefix="v1/+")
    with pytest.raises(ValueError, match="user name"):
        mosquitto_password_line("car:a", "pw")


def test_the_files_are_written_atomically_with_mode_0640(tmp_path: Path) -> None:
    creds = [VehicleCredential("car-a", new_password())]
    passwords, acl = write_broker_files(tmp_path, creds, ingest_password="in")
    assert (passwords, acl) == (tmp_path / "passwords", tmp_path / "acl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acl", "passwords"]
    for path in (passwords, acl):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    users = [line.split(":")[0] for line in passwords.read_text().splitlines()]
    assert users == [INGEST, "car-a"]
    assert verify_password_line(passwords.read_text().splitlines()[1], creds[0].password)
    write_broker_files(tmp_path, [], ingest_password="in")
    assert "car-a" not in passwords.read_text() + acl.read_text()
    assert "***" in repr(creds[0])
    assert creds[0].password not in repr(creds[0])


# -- against a real broker ---------------------------------------------------------------------


@dataclass(frozen=True)
class AclBroker:
    port: int
    passwords: dict[str, str]


@pytest.fixture(scope="module")
def acl_broker() -> Iterator[AclBroker]:
    root = make_service_dir("can2care-acl-")
    try:
        creds = [VehicleCredential(v, new_password()) for v in ("car-a", "car-b")]
        ingest_password = new_password()
        password_file, acl_file = write_broker_files(root, creds, ingest_password=ingest_password)
        port = free_port()
        settings = [
            "allow_anonymous false",
            f"password_file {password_file}",
            f"acl_file {acl_file}",
        ]
        with configured_broker(root, port, settings):
            passwords = {c.vehicle_id: c.password for c in creds}
            passwords[INGEST] = ingest_password
            yield AclBroker(port, passwords)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Client:
    """A paho client with its callbacks recorded."""

    mqtt: mqtt.Client
    connected: threading.Event = field(default_factory=threading.Event)
    connect_rc: list[ReasonCode] = field(default_factory=list)
    published: dict[int, ReasonCode] = field(default_factory=dict)
    subscribed: dict[int, list[ReasonCode]] = field(default_factory=dict)
    received: list[tuple[str, bytes]] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes) -> int:
        return self.mqtt.publish(topic, payload, qos=1).mid

    def subscribe(self, topic_filter: str) -> int:
        mid = self.mqtt.subscribe(topic_filter, qos=1)[1]
        assert mid is not None
        return mid

    def close(self) -> None:
        self.mqtt.disconnect()
        self.mqtt.loop_stop()
        # The callbacks refer to this object: break the cycle so paho's sockets close now.
        self.mqtt.on_connect = self.mqtt.on_publish = None
        self.mqtt.on_subscribe = self.mqtt.on_message = None


def _connect(broker: AclBroker, user: str, password: str | None = None, v5: bool = True) -> Client:
    protocol = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{user}", protocol=protocol)
    client = Client(paho)

    def on_connect(
        c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: Properties | None
    ) -> None:
        client.connect_rc.append(rc)
        client.connected.set()
        if rc.is_failure:
            c.disconnect()  # no reconnection attempts with a refused login

    def on_publish(
        c: mqtt.Client, u: object, mid: int, rc: ReasonCode, p: Properties | None
    ) -> None:
        client.published[mid] = rc

    def on_subscribe(
        c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode], p: Properties | None
    ) -> None:
        client.subscribed[mid] = rcs

    def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        client.received.append((message.topic, bytes(message.payload)))

    paho.on_connect = on_connect
    paho.on_publish = on_publish
    paho.on_subscribe = on_subscribe
    paho.on_message = on_message
    paho.username_pw_set(user, broker.passwords[user] if password is None else password)
    paho.connect_async("127.0.0.1", broker.port)
    paho.loop_start()
    assert client.connected.wait(10)
    return client


def _ingest(broker: AclBroker, *filters: str) -> Client:
    client = _connect(broker, INGEST)
    assert not client.connect_rc[0].is_failure
    mids = [client.subscribe(f) for f in filters]
    assert _proc.wait_until(lambda: all(m in client.subscribed for m in mids), 10)
    for mid in mids:
        assert not any(rc.is_failure for rc in client.subscribed[mid]), client.subscribed[mid]
    return client


@pytest.mark.parametrize(
    "subscription", ["v1/+/telemetry", "$share/ingest/v1/+/telemetry"], ids=["plain", "shared"]
)
def test_a_vehicle_publishes_on_its_own_topic_and_ingest_receives(
    acl_broker: AclBroker, subscription: str
) -> None:
    ingest = _ingest(acl_broker, subscription)
    car = _connect(acl_broker, "car-a")
    try:
        mid = car.publish("v1/car-a/telemetry", b"batch 1")
        assert _proc.wait_until(lambda: mid in car.published, 10)
        assert not car.published[mid].is_failure
        assert _proc.wait_until(lambda: len(ingest.received) == 1, 10)
        assert ingest.received == [("v1/car-a/telemetry", b"batch 1")]
    finally:
        car.close()
        ingest.close()


def test_publishing_on_another_vehicles_topic_is_not_authorized_in_mqtt5(
    acl_broker: AclBroker,
) -> None:
    ingest = _ingest(acl_broker, "v1/+/telemetry", "v1/+/events")
    car = _connect(acl_broker, "car-a")
    try:
        denied = car.publish("v1/car-b/telemetry", b"forged")
        unknown = car.publish("v2/car-a/telemetry", b"elsewhere")
        allowed = car.publish("v1/car-a/events", b"mine")
        assert _proc.wait_until(lambda: len(car.published) == 3, 10)
        assert car.published[denied].value == NOT_AUTHORIZED
        assert car.published[unknown].value == NOT_AUTHORIZED
        assert not car.published[allowed].is_failure
        assert _proc.wait_until(lambda: len(ingest.received) >= 1, 10)
        assert ingest.received == [("v1/car-a/events", b"mine")]
    finally:
        car.close()
        ingest.close()


def test_an_unauthorized_mqtt311_publish_is_dropped_silently(acl_broker: AclBroker) -> None:
    ingest = _ingest(acl_broker, "v1/+/telemetry")
    car = _connect(acl_broker, "car-a", v5=False)
    try:
        denied = car.publish("v1/car-b/telemetry", b"forged")
        car.publish("v1/car-a/telemetry", b"mine")
        assert _proc.wait_until(lambda: len(car.published) == 2, 10)
        assert not car.published[denied].is_failure  # MQTT 3.1.1 PUBACK has no reason code
        assert _proc.wait_until(lambda: len(ingest.received) >= 1, 10)
        assert ingest.received == [("v1/car-a/telemetry", b"mine")]
    finally:
        car.close()
        ingest.close()


def test_a_vehicle_receives_nothing(acl_broker: AclBroker) -> None:
    """Mosquitto 2.0 grants the SUBSCRIBE, but checks ``read`` on every delivery."""
    ingest = _ingest(acl_broker, "v1/+/telemetry", "v1/+/status")
    car = _connect(acl_broker, "car-a")
    other = _connect(acl_broker, "car-b")
    try:
        for topic in ("v1/+/telemetry", "v1/car-a/status", "#"):
            car.subscribe(topic)
        assert _proc.wait_until(lambda: len(car.subscribed) == 3, 10)
        other.publish("v1/car-b/telemetry", b"b's batch")
        car.publish("v1/car-a/status", b'{"state":"online"}')
        assert _proc.wait_until(lambda: len(ingest.received) == 2, 10)
        assert not _proc.wait_until(lambda: bool(car.received), 0.5)
    finally:
        other.close()
        car.close()
        ingest.close()


@pytest.mark.parametrize("user", ["car-a", INGEST, "car-c"])
def test_a_wrong_password_is_refused_at_connect(acl_broker: AclBroker, user: str) -> None:
    client = _connect(acl_broker, user, password="wrong")
    try:
        assert client.connect_rc[0].is_failure
        # Mosquitto 2.0 answers a failed password check with CONNACK 135, not 134.
        assert client.connect_rc[0].value == NOT_AUTHORIZED
    finally:
        client.close()
